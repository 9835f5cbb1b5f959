"""Replies under the agency's posts, filed as tips: nothing said on a network is lost.

Every minute :func:`schedule_fetches` queues a fetch for each live delivery whose
replies are due (sent, not taken down, within ``TATTLETALE_REPLIES_WINDOW_DAYS`` of
going out, on a connected channel whose network lists replies), each with a job key
of its own so that however many schedulers tick, a fetch has one job. A fetch
(:func:`fetch_replies`) asks the adapter for pages from the stored cursor and files
each reply as a tip of the appeal's case, deduplicated by the network's id (a unique
constraint: a reply seen twice, by two fetches at once even, is filed once), storing
the cursor after each page. It takes at most ``TATTLETALE_REPLIES_PAGES_PER_RUN``
pages, then queues the rest behind whatever else waits: a viral post's thousands of
replies are filed in turns, without starving the other jobs. After the listing, up to
:data:`RECHECK_BATCHES` batches of filed replies are looked up again, so a reply its
author edited or deleted afterwards is marked so (the tip keeps what was filed).

What goes wrong is bounded and said on the post page (``Delivery.replies_problem``):
a rate limit waits for the network's reset time; a refused token marks the channel
for reconnecting; a network that pages forever (the same cursor twice) or answers
garbage stops the fetch until the next interval.

A detective who may moderate (``comment.moderate``, on a tip of their own to handle)
can hide, delete or answer a comment where the network's API allows it
(:func:`request_action`); a job does it (:func:`run_action`), never the request. A
public answer is sent at most once: the row is marked before the call and a run that
finds another run's mark does not send again.

Like the delivery engine, these commit: they are called by jobs only (except
:func:`request_action`, which joins the request's transaction).
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.jobs.errors import TransientJobError
from portal.jobs.registry import JobContext, enqueue
from portal.models import Appeal, Tip, User
from portal.models.base import utcnow
from portal.models.tips import TipOrigin
from portal.publishing.captions import tip_url
from portal.publishing.channels.base import Channel as Adapter
from portal.publishing.channels.base import (
    ChannelError,
    CredentialError,
    OutcomeUnknown,
    Published,
    Reply,
    TransientError,
)
from portal.publishing.channels.registry import adapter_class, adapter_for, networks
from portal.publishing.models import (
    Channel,
    ChannelStatus,
    Delivery,
    DeliveryStatus,
    PostAppeal,
    PublicReply,
    ReplyAction,
    ReplyState,
)
from portal.publishing.services.deliveries import SYSTEM, call_keeping_credentials
from portal.publishing.services.followups import channel_refused, published_of
from portal.services.appeals import reply_channel
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.errors import PermissionDenied, ValidationFailed
from portal.services.text import replace_refused
from portal.services.tips import MAX_TIP_CHARS, may_handle, new_tip_number

log = logging.getLogger(__name__)

FETCH_JOB = "publishing.fetch_replies"
ACTION_JOB = "publishing.reply_action"

#: A comment tip has no receipt: nobody can open it as a tipster. Receipt hashes are
#: lowercase hex, so this value matches no passphrase.
NO_RECEIPT = "!" * 64
#: A reply with no text (a photo, a sticker) is filed with this body.
NO_TEXT = "(No text: it holds only media. Open it on the network.)"
MAX_HANDLE_CHARS = 200
#: Filed replies looked up again per fetch: batches of the adapters' 25 ids.
LOOKUP_BATCH = 25
RECHECK_BATCHES = 4
#: The standard public answer: no names in public, and the private way to tell.
ANSWER_TEXT = (
    "Thank you. Please don't name anyone in public: tell the detectives through our tip "
    "form, anonymously if you want: {tip_url}"
)

VERBS = {
    ReplyAction.HIDE.value: ("hide", "can_hide_replies"),
    ReplyAction.DELETE.value: ("delete", "can_delete_replies"),
    ReplyAction.ANSWER.value: ("answer", "can_answer_replies"),
}
#: What an action leaves the reply as on the network.
ACTION_STATES = {
    ReplyAction.HIDE.value: ReplyState.HIDDEN.value,
    ReplyAction.DELETE.value: ReplyState.DELETED.value,
}
GONE = frozenset({ReplyState.REMOVED.value, ReplyState.DELETED.value})


def _settings() -> Any:
    return current_app.config["TATTLETALE"]


def listing_networks() -> list[str]:
    return [network for network in networks() if adapter_class(network).lists_replies]


def _live(now: datetime) -> Any:
    """The deliveries whose replies are still fetched."""
    since = now - timedelta(days=_settings().replies_window_days)
    return (
        Delivery.status == DeliveryStatus.SENT.value,
        Delivery.removed_at.is_(None),
        Delivery.sent_at >= since,
        Channel.status == ChannelStatus.CONNECTED.value,
        Channel.network.in_(listing_networks()),
    )


# -- scheduling ---------------------------------------------------------------------


def _queue_fetch(delivery_id: int, runs: int, next_at: datetime) -> bool:
    """Claim the delivery's next fetch (a conditional update on its run count, so two
    schedulers queue one) and queue it with a key of its own."""
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.replies_runs == runs)
        .values(replies_runs=runs + 1, replies_next_at=next_at)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    enqueue(FETCH_JOB, unique_key=f"{FETCH_JOB}:{delivery_id}:{runs + 1}", delivery_id=delivery_id)
    return True


def schedule_fetches(now: datetime | None = None) -> int:
    """Queue a fetch for every live delivery whose replies are due; return how many."""
    now = now or utcnow()
    due = db.session.execute(
        select(Delivery.id, Delivery.replies_runs)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(
            *_live(now),
            or_(Delivery.replies_next_at.is_(None), Delivery.replies_next_at <= now),
        )
        .order_by(Delivery.replies_next_at.is_not(None), Delivery.replies_next_at, Delivery.id)
    ).all()
    next_at = now + timedelta(seconds=_settings().replies_poll_s)
    queued = sum(_queue_fetch(delivery_id, runs, next_at) for delivery_id, runs in due)
    db.session.commit()
    return queued


# -- fetching and filing --------------------------------------------------------------


def _clean(value: str, *, max_length: int, multiline: bool) -> str:
    """A network's text made safe to store and show: refused characters replaced (a
    comment is filed whatever it holds, never refused), normalised, bounded."""
    text = unicodedata.normalize("NFC", replace_refused(value or "", multiline=multiline))
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text if len(text) <= max_length else text[: max_length - 1] + "…"


def _reply_text(reply: Reply) -> str:
    return _clean(reply.text, max_length=MAX_TIP_CHARS, multiline=True) or NO_TEXT


def _first_appeal(delivery: Delivery) -> Appeal | None:
    """The appeal the post carries first: a post of several appeals files its replies
    under the first one's case (a reply rarely says which appeal it means)."""
    return db.session.scalar(
        select(Appeal)
        .join(PostAppeal, PostAppeal.appeal_id == Appeal.id)
        .where(PostAppeal.post_id == delivery.post_id)
        .order_by(PostAppeal.position, PostAppeal.id)
        .limit(1)
    )


def _unique_number() -> str:
    number = new_tip_number()
    while db.session.scalar(select(Tip.id).where(Tip.number == number)) is not None:
        number = new_tip_number()
    return number


def _mark_edited(row: PublicReply, text: str, now: datetime) -> bool:
    tip = db.session.get(Tip, row.tip_id)
    filed = tip.body if tip is not None else ""
    if row.state in GONE or text in (filed, row.edited_text):
        return False
    row.edited_text = text
    row.changed_at = now
    if row.state == ReplyState.LIVE.value:
        row.state = ReplyState.EDITED.value
    return True


def file_replies(delivery: Delivery, replies: Iterable[Reply], now: datetime) -> int:
    """File each reply not filed yet as a tip; mark known ones whose text changed.
    Return how many tips were filed."""
    replies = [reply for reply in replies if reply.remote_id]
    if not replies:
        return 0
    known = {
        row.remote_id: row
        for row in db.session.scalars(
            select(PublicReply).where(
                PublicReply.channel_id == delivery.channel_id,
                PublicReply.remote_id.in_({reply.remote_id for reply in replies}),
            )
        )
    }
    appeal = _first_appeal(delivery)
    network = delivery.channel.network
    filed = 0
    for reply in replies:
        text = _reply_text(reply)
        row = known.get(reply.remote_id)
        if row is not None:
            _mark_edited(row, text, now)
            continue
        tip = Tip(
            number=_unique_number(),
            agency_id=delivery.post.agency_id,
            appeal_id=appeal.id if appeal is not None else None,
            case_id=appeal.case_id if appeal is not None else None,
            channel=reply_channel(network),
            origin=TipOrigin.COMMENT.value,
            body=text,
            contact_name=_clean(reply.author, max_length=MAX_HANDLE_CHARS, multiline=False) or None,
            receipt_hash=NO_RECEIPT,
            # Nobody waits for an answer through a receipt; triage is what it needs.
            awaiting_since=None,
        )
        row = PublicReply(
            delivery_id=delivery.id,
            channel_id=delivery.channel_id,
            remote_id=reply.remote_id[:500],
            url=reply.url[:2000] if reply.url.startswith(("https://", "http://")) else "",
            posted_at=reply.created_at,
            state=ReplyState.LIVE.value,
            edited_text="",
            pending_action="",
            action_problem="",
            answered_url="",
        )
        try:
            # A savepoint each: another fetch filing the same reply at this moment
            # (the unique constraint) costs this one reply, not the page.
            with db.session.begin_nested():
                db.session.add(tip)
                db.session.flush()
                row.tip_id = tip.id
                db.session.add(row)
                db.session.flush()
        except IntegrityError:
            continue
        known[reply.remote_id] = row
        filed += 1
    return filed


def _stop(delivery_id: int, problem: str, *, wait_s: float | None = None) -> None:
    values: dict[str, Any] = {"replies_problem": problem[:4000], "replies_polled_at": utcnow()}
    if wait_s is not None:
        values["replies_next_at"] = utcnow() + timedelta(seconds=wait_s)
    db.session.rollback()
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _refused(delivery: Delivery, reason: str) -> None:

    channel_id, delivery_id, runs = delivery.channel_id, delivery.id, delivery.replies_runs
    _stop(delivery_id, f"The network refused the channel's credentials: {reason}")
    channel_refused(channel_id, delivery_id, reason, f"replies-{runs}")
    db.session.commit()


def fetch_replies(delivery_id: int, ctx: JobContext | None = None) -> int:
    """One fetch of a delivery's replies (see the module docstring); return how many
    tips it filed."""
    now = utcnow()
    delivery = db.session.scalar(
        select(Delivery)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(Delivery.id == delivery_id, *_live(now))
    )
    if delivery is None:
        db.session.commit()
        return 0
    channel = delivery.channel
    name = channel.network.capitalize()
    published = published_of(delivery)
    cursor = delivery.replies_cursor
    runs = delivery.replies_runs
    filed = 0
    try:
        with closing(adapter_for(channel)) as adapter:
            for _ in range(_settings().replies_pages_per_run):
                page = call_keeping_credentials(
                    adapter, channel.id, adapter.list_replies, published, cursor
                )
                filed += file_replies(delivery, page.replies, utcnow())
                stuck = page.more and page.cursor == cursor
                cursor = page.cursor
                delivery.replies_cursor = cursor
                delivery.replies_polled_at = utcnow()
                delivery.replies_problem = ""
                db.session.commit()
                if stuck:
                    _stop(
                        delivery_id,
                        f"{name} answered the same page of replies twice: fetching "
                        "stopped until the next interval.",
                    )
                    return filed
                if not page.more:
                    break
                if ctx is not None:
                    ctx.heartbeat()
            else:
                # More are waiting: the next pages in a fetch of their own, behind
                # whatever else is queued.
                _queue_fetch(delivery_id, runs, utcnow())
                db.session.commit()
                return filed
            recheck_replies(delivery, adapter, published)
    except TransientError as exc:
        _stop(delivery_id, f"{name}: {exc.reason}", wait_s=exc.retry_after)
    except CredentialError as exc:
        _refused(delivery, exc.reason)
    except ChannelError as exc:
        _stop(delivery_id, f"{name}: {exc.reason}")
    except Exception as exc:  # an adapter's bug, or an answer nobody foresaw
        log.exception("fetching the replies of delivery %s failed", delivery_id)
        _stop(
            delivery_id, f"{name} gave an answer the portal could not read ({type(exc).__name__})."
        )
    return filed


def recheck_replies(delivery: Delivery, adapter: Adapter, published: Published) -> int:
    """Look filed replies up again (least recently checked first); mark the ones edited
    or gone since. Return how many changed."""
    if not adapter.lists_replies:
        return 0
    now = utcnow()
    rows = list(
        db.session.scalars(
            select(PublicReply)
            .where(
                PublicReply.delivery_id == delivery.id,
                PublicReply.state.in_((ReplyState.LIVE.value, ReplyState.EDITED.value)),
                or_(
                    PublicReply.checked_at.is_(None),
                    PublicReply.checked_at <= now - timedelta(seconds=_settings().replies_poll_s),
                ),
            )
            .order_by(PublicReply.checked_at.is_not(None), PublicReply.checked_at, PublicReply.id)
            .limit(LOOKUP_BATCH * RECHECK_BATCHES)
        )
    )
    changed = 0
    for start in range(0, len(rows), LOOKUP_BATCH):
        batch = rows[start : start + LOOKUP_BATCH]
        try:
            found = call_keeping_credentials(
                adapter,
                delivery.channel_id,
                adapter.look_up_replies,
                published,
                [row.remote_id for row in batch],
            )
        except NotImplementedError:
            return changed
        for row in batch:
            row.checked_at = now
            reply = found.get(row.remote_id)
            if reply is None:
                row.state = ReplyState.REMOVED.value
                row.changed_at = now
                changed += 1
            elif _mark_edited(row, _reply_text(reply), now):
                changed += 1
        db.session.commit()
    return changed


# -- what a detective does with a comment ----------------------------------------------


#: Why a user who may not moderate the comment is refused (a PermissionDenied).
NOT_YOURS = "You may not moderate this comment."


def action_problem(user: User, tip: Tip, action: str) -> str | None:
    """Why ``user`` cannot ``action`` the comment of ``tip`` now (None: they can)."""
    row = tip.public_reply
    if row is None or action not in VERBS:
        return "This tip is not a public comment."
    if not (may_handle(user, tip) and can(user, Permission.COMMENT_MODERATE, tip.case)):
        return NOT_YOURS
    verb, flag = VERBS[action]
    network = row.channel.network
    if network not in networks() or not getattr(adapter_class(network), flag):
        return f"{network.capitalize()} does not let an account {verb} replies under its posts."
    if row.pending_action:
        return "A request for this comment is already under way."
    if row.state in GONE:
        return "The comment is no longer on the network."
    if action == ReplyAction.HIDE.value and row.state == ReplyState.HIDDEN.value:
        return "The comment is already hidden."
    if action == ReplyAction.ANSWER.value and row.answered_at is not None:
        return "It was answered already."
    return None


def request_action(user: User, tip: Tip, action: str) -> PublicReply:
    """Ask for the comment to be hidden, deleted or answered on the network (by a
    job, after the request commits)."""
    problem = action_problem(user, tip, action)
    if problem == NOT_YOURS:
        raise PermissionDenied(problem)
    if problem is not None:
        raise ValidationFailed(problem, field="action")
    row = tip.public_reply
    assert row is not None
    claimed = db.session.execute(
        update(PublicReply)
        .where(PublicReply.id == row.id, PublicReply.pending_action == "")
        .values(pending_action=action, action_problem="")
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ValidationFailed("A request for this comment is already under way.", field="action")
    db.session.refresh(row)
    record_event(
        f"reply.{action}_requested",
        agency_id=tip.agency_id,
        actor=user,
        object_type="tip",
        object_id=tip.public_id,
        details={"network": row.channel.network},
    )
    enqueue(
        ACTION_JOB,
        unique_key=f"{ACTION_JOB}:{row.id}:{action}:{secrets.token_hex(8)}",
        reply_id=row.id,
        action=action,
    )
    return row


def answer_text(tip: Tip, network: str) -> str:
    appeal = tip.appeal
    if appeal is None:
        raise ValidationFailed("The comment's appeal is gone: there is no tip form to link.")
    return ANSWER_TEXT.format(tip_url=tip_url(appeal, network))


def _finish(row: PublicReply, action: str, *, problem: str = "") -> None:
    row.pending_action = ""
    row.action_problem = problem[:4000]
    tip = db.session.get(Tip, row.tip_id)
    record_event(
        f"reply.{action}_failed" if problem else f"reply.{action}",
        agency_id=tip.agency_id if tip is not None else None,
        actor_label=SYSTEM,
        object_type="tip",
        object_id=tip.public_id if tip is not None else "",
        details={"network": row.channel.network, **({"reason": problem} if problem else {})},
    )
    db.session.commit()


def run_action(reply_id: int, action: str, ctx: JobContext) -> str:
    """Do what was asked of the comment on the network; say how it ended."""
    row = db.session.get(PublicReply, reply_id)
    if row is None or row.pending_action != action:
        db.session.commit()
        return "skipped"
    tip = db.session.get(Tip, row.tip_id)
    network = row.channel.network
    if action == ReplyAction.ANSWER.value:
        if row.answered_at is not None:
            # An earlier run marked it and died mid-call: it may be there. Not repeated.
            _finish(
                row, action, problem="An earlier attempt may have answered it: look on the network."
            )
            return "unknown"
        try:
            text = answer_text(tip, network) if tip is not None else ""
        except ValidationFailed as exc:
            _finish(row, action, problem=exc.message)
            return "failed"
        row.answered_at = utcnow()
        db.session.commit()
    published = published_of(row.delivery)
    try:
        with closing(adapter_for(row.channel)) as adapter:
            if action == ReplyAction.HIDE.value:
                call_keeping_credentials(
                    adapter, row.channel_id, adapter.hide_reply, published, row.remote_id
                )
            elif action == ReplyAction.DELETE.value:
                call_keeping_credentials(
                    adapter, row.channel_id, adapter.delete_reply, published, row.remote_id
                )
            else:
                landed = call_keeping_credentials(
                    adapter, row.channel_id, adapter.answer_reply, published, row.remote_id, text
                )
                row.answered_url = landed.url[:2000]
    except TransientError as exc:
        if action == ReplyAction.ANSWER.value:
            row.answered_at = None  # nothing was sent: a retry may answer
            db.session.commit()
        raise TransientJobError(exc.reason) from exc
    except OutcomeUnknown as exc:
        _finish(row, action, problem=f"{exc.reason}: look on the network before asking again.")
        return "unknown"
    except CredentialError as exc:
        _finish(row, action, problem=f"The network refused the channel's credentials: {exc.reason}")

        channel_refused(row.channel_id, row.delivery_id, exc.reason, f"reply-{row.id}")
        db.session.commit()
        return "failed"
    except ChannelError as exc:
        if action == ReplyAction.ANSWER.value:
            row.answered_at = None
        _finish(row, action, problem=exc.reason)
        return "failed"
    if action in ACTION_STATES:
        row.state = ACTION_STATES[action]
        row.changed_at = utcnow()
    _finish(row, action)
    return "done"


def action_gave_up(reply_id: int, action: str, reason: str) -> None:
    """The job gave up (attempts spent, or an error it could not place)."""
    row = db.session.get(PublicReply, reply_id)
    if row is None or row.pending_action != action:
        return
    if action == ReplyAction.ANSWER.value and row.answered_at is not None:
        reason = f"{reason} (it may have been answered: look on the network)"
    row.pending_action = ""
    row.action_problem = reason[:4000]
    db.session.flush()
