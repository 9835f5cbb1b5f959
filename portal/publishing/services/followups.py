"""What happens to a post after it went out: the "SOLVED — thank you" update, and
taking it down (an appeal withdrawn, or the agency's retention of N days).

Each is one job per delivery with a key of its own, so it is queued once. The update
is sent once: an edit (where the network has edits) may be repeated harmlessly, a
reply may not, so before a reply is sent the run marks the row, and a later run that
finds the mark of another run (its worker died mid-call) does not reply again.

Like the engine, these commit: they are called by jobs only.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from portal.extensions import db
from portal.jobs.errors import PermanentJobError, TransientJobError
from portal.jobs.registry import JobContext
from portal.models.base import utcnow
from portal.publishing.channels.base import (
    ChannelError,
    CredentialError,
    OutcomeUnknown,
    Published,
    TransientError,
)
from portal.publishing.channels.registry import adapter_for
from portal.publishing.models import Channel, ChannelStatus, Delivery, DeliveryStatus
from portal.publishing.services.deliveries import (
    SYSTEM,
    alert_coordinators,
    call_keeping_credentials,
)
from portal.services.audit import record_event

log = logging.getLogger(__name__)

SOLVED_TEXT = "SOLVED — thank you. This case was solved; thank you to everyone who shared it."
SOLVING_KEY = "_solving"


def published_of(delivery: Delivery) -> Published:
    """Where a sent delivery is on its network, as its adapter takes it."""
    return Published(
        remote_id=delivery.remote_id, url=delivery.remote_url, extra=dict(delivery.remote_extra)
    )


def _audit(delivery: Delivery, action: str, details: dict[str, object]) -> None:
    record_event(
        action,
        agency_id=delivery.post.agency_id,
        actor_label=SYSTEM,
        object_type="delivery",
        object_id=delivery.public_id,
        details={"network": delivery.channel.network, **details},
    )


def channel_refused(channel_id: int, delivery_id: int, reason: str, attempt: int | str = 0) -> None:
    """The network refused the channel's credentials during a call after sending:
    mark the channel for reconnecting and tell the coordinators (once per attempt)."""
    db.session.execute(
        update(Channel)
        .where(Channel.id == channel_id, Channel.status == ChannelStatus.CONNECTED.value)
        .values(status=ChannelStatus.NEEDS_RECONNECT.value, status_reason=reason[:2000])
        .execution_options(synchronize_session=False)
    )
    alert_coordinators(delivery_id, "credential", attempt)


def _channel_refused(delivery: Delivery, reason: str) -> None:
    channel_refused(delivery.channel_id, delivery.id, reason, delivery.attempts)


def send_solved_update(delivery_id: int, ctx: JobContext) -> str:
    delivery = db.session.get(Delivery, delivery_id)
    if (
        delivery is None
        or delivery.status != DeliveryStatus.SENT.value
        or delivery.solved_at is not None
    ):
        db.session.commit()
        return "skipped"
    channel = delivery.channel
    adapter = adapter_for(channel)
    state = dict(delivery.state or {})
    if not adapter.edits_in_place:
        mark = state.get(SOLVING_KEY)
        if mark and mark != ctx.token:
            # An earlier run died during its reply: it may be there. Not repeated.
            delivery.solved_at = utcnow()
            _audit(delivery, "delivery.solved", {"unknown": True})
            db.session.commit()
            return "unknown"
        state[SOLVING_KEY] = ctx.token
        marked = db.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id, Delivery.solved_at.is_(None))
            .values(state=state)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            return "skipped"
        db.session.commit()
    published = published_of(delivery)
    try:
        landed = call_keeping_credentials(
            adapter, channel.id, adapter.update, published, SOLVED_TEXT
        )
    except TransientError as exc:
        _unmark(delivery_id)
        raise TransientJobError(exc.reason) from exc
    except OutcomeUnknown as exc:
        if adapter.edits_in_place:
            raise TransientJobError(exc.reason) from exc
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery is not None
        delivery.solved_at = utcnow()
        _audit(delivery, "delivery.solved", {"unknown": True, "reason": exc.reason})
        db.session.commit()
        return "unknown"
    except CredentialError as exc:
        _unmark(delivery_id)
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery is not None
        _channel_refused(delivery, exc.reason)
        db.session.commit()
        raise PermanentJobError(exc.reason) from exc
    except ChannelError as exc:
        _unmark(delivery_id)
        raise PermanentJobError(exc.reason) from exc
    delivery = db.session.get(Delivery, delivery_id)
    assert delivery is not None
    delivery.solved_at = utcnow()
    delivery.solved_url = (landed.url or delivery.remote_url)[:2000]
    _audit(delivery, "delivery.solved", {"url": delivery.solved_url})
    db.session.commit()
    return "sent"


def _unmark(delivery_id: int) -> None:
    """The reply certainly did not go out: a later run may send it."""
    db.session.rollback()
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is not None and SOLVING_KEY in (delivery.state or {}):
        delivery.state = {k: v for k, v in delivery.state.items() if k != SOLVING_KEY}
    db.session.commit()


def remove_delivery(delivery_id: int, reason: str = "") -> str:
    """Take a sent post down from its network (deletion is idempotent: a post already
    gone is not an error). A network that cannot delete leaves it to a person."""
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.SENT.value:
        db.session.commit()
        return "skipped"
    adapter = adapter_for(delivery.channel)
    if not adapter.can_delete:
        delivery.status = DeliveryStatus.NEEDS_ATTENTION.value
        delivery.reason = (
            f"{delivery.channel.network} does not let an app delete posts: remove it by hand"
            f" ({delivery.remote_url or delivery.remote_id}). {reason}"
        ).strip()[:4000]
        _audit(delivery, "delivery.needs_attention", {"reason": delivery.reason})
        alert_coordinators(delivery.id, "remove", delivery.attempts)
        db.session.commit()
        return DeliveryStatus.NEEDS_ATTENTION.value
    published = published_of(delivery)
    db.session.commit()
    try:
        call_keeping_credentials(adapter, delivery.channel_id, adapter.delete, published)
    except (TransientError, OutcomeUnknown) as exc:
        raise TransientJobError(exc.reason) from exc
    except CredentialError as exc:
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery is not None
        _channel_refused(delivery, exc.reason)
        db.session.commit()
        raise PermanentJobError(exc.reason) from exc
    except ChannelError as exc:
        raise PermanentJobError(exc.reason) from exc
    moved = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.SENT.value)
        .values(status=DeliveryStatus.REMOVED.value, removed_at=utcnow(), reason=reason[:4000])
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount == 1:  # type: ignore[attr-defined]
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery is not None
        _audit(delivery, "delivery.removed", {"reason": reason})
    db.session.commit()
    return DeliveryStatus.REMOVED.value
