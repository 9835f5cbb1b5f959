"""The exactly-once engine: one delivery (a post on one channel) per job run.

The delivery row is the truth, not the job. A run claims the row with a conditional
UPDATE (queued or retrying, due, its post publishing) and writes the job's own claim
token on it; every later write of the run matches that token, so a worker whose run
was taken from it (it stalled and the reaper gave the job to another) writes nothing.
What the network returns between calls is stored and committed through
:class:`RowSteps` before the adapter's next call, and a retry resumes from it.

What the adapter raises decides what happens next (see channels.base):

* success: sent, with the network's id and link;
* :class:`TransientError`: retrying at a backed-off time (never before the network's
  ``retry_after``), up to :data:`MAX_ATTEMPTS`, then failed with the reason;
* :class:`OutcomeUnknown` (and anything unexpected raised while the adapter worked):
  remembered in the state; the next attempt asks ``find`` before anything else, and
  where the network cannot tell, the delivery waits for a person (``needs_attention``),
  never posted a second time;
* :class:`CredentialError`: failed, the channel marked for reconnecting, the
  coordinators told; the other deliveries of that channel fail at their claim without
  a call, so nothing loops against a refused token;
* :class:`RejectedError`: failed with the network's reason, the coordinators told;
* a daily cap reached at send time, by the portal's own count of what the channel sent
  in the last 24 hours (:func:`cap_reached`, before the adapter posts) or by the
  network's (:class:`CapReached`: Instagram's publishing quota, Bluesky's daily video
  uploads, which count posts made outside the portal too): nothing is sent, the
  delivery waits until the cap frees, the coordinators are told once. Those waits are
  not attempts: a post that waited a day still has all its retries.

Retries are not delayed jobs: the minute's ``publishing.publish_due`` enqueues the
deliveries whose ``next_attempt_at`` has come, each with a key of its own (delivery
and attempt), so however many schedulers tick, an attempt has one job.

This module commits (a step must be stored before the next network call): it is
called by jobs and by the CLI, never inside a request's transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select, update

from media_pipeline.errors import ObjectNotFound
from portal.extensions import db
from portal.jobs.errors import ClaimLost, TransientJobError, classify_error, describe_error
from portal.jobs.registry import JobContext, enqueue
from portal.models import Appeal, Job, JobStatus, Rendition
from portal.models.base import utcnow
from portal.publishing.channels.base import (
    CapReached,
    CredentialError,
    Draft,
    Media,
    OutcomeUnknown,
    Published,
    RejectedError,
    TransientError,
)
from portal.publishing.channels.base import Channel as Adapter
from portal.publishing.channels.registry import adapter_for
from portal.publishing.limits import LIMITS
from portal.publishing.models import (
    Channel,
    ChannelStatus,
    Delivery,
    DeliveryStatus,
    Post,
    PostAppeal,
    PostStatus,
)
from portal.services.audit import record_event

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DELIVER_JOB = "publishing.deliver"
ALERT_JOB = "publishing.alert"
REMOVE_JOB = "publishing.remove"
SOLVED_JOB = "publishing.solved"

QUEUED, SENDING, RETRYING, SENT, FAILED, NEEDS_ATTENTION, CANCELLED, REMOVED = (
    DeliveryStatus.QUEUED.value,
    DeliveryStatus.SENDING.value,
    DeliveryStatus.RETRYING.value,
    DeliveryStatus.SENT.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.NEEDS_ATTENTION.value,
    DeliveryStatus.CANCELLED.value,
    DeliveryStatus.REMOVED.value,
)
#: A delivery in one of these has ended: nothing more happens to it without a person.
ENDED = frozenset({SENT, FAILED, NEEDS_ATTENTION, CANCELLED, REMOVED})
WAITING = (QUEUED, RETRYING)

#: Attempts of one delivery before it fails for good (transient failures), or waits
#: for a person (an outcome still unknown).
MAX_ATTEMPTS = 8
#: Backoff between attempts: 1, 2, 4, ... minutes, at most an hour; never sooner than
#: the network's own reset time.
BACKOFF_BASE_S = 60.0
BACKOFF_CAP_S = 3600.0

#: State key (reserved: adapters' keys never start with "_") holding why the last
#: attempt's outcome is unknown. While set, the next attempt calls ``find`` first.
UNKNOWN_KEY = "_outcome_unknown"
#: State keys of a wait for the daily cap: how many attempts ended waiting for it (they
#: do not count against MAX_ATTEMPTS), and when the current wait began.
CAP_WAITS_KEY = "_cap_waits"
CAP_SINCE_KEY = "_cap_since"

#: When nobody can say when the cap frees (the network gives no reset time, or the
#: channel's other posts are still being sent), look again after this long.
CAP_RECHECK_S = 3600.0
#: A rolling 24-hour cap frees within a day of the last post; a delivery that still
#: cannot go after this long (the account keeps posting by hand) fails for a person.
CAP_WAIT_MAX = timedelta(hours=72)

SYSTEM = "publishing"

CHANNEL_STATES = {
    ChannelStatus.NEEDS_RECONNECT.value: "must be connected again",
    ChannelStatus.DISCONNECTED.value: "was switched off",
}


def backoff_s(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``."""
    delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))
    return max(delay, float(retry_after or 0.0))


def deliver_key(delivery: Delivery) -> str:
    """One job per delivery and attempt, however many schedulers enqueue it."""
    return f"{DELIVER_JOB}:{delivery.id}:{delivery.attempts}"


def enqueue_delivery(delivery: Delivery, *, by_person: str = "") -> Job:
    """The job of the delivery's next attempt. ``by_person`` (the decision's id) keys a
    person's retry on its own: the attempt's key may belong to a job that failed."""
    key = deliver_key(delivery) + (f":retry:{by_person}" if by_person else "")
    return enqueue(
        DELIVER_JOB,
        unique_key=key,
        delivery_id=delivery.id,
        attempt=delivery.attempts + 1,
    )


# -- the steps an adapter stores -------------------------------------------------------


class RowSteps:
    """:class:`~portal.publishing.channels.base.Steps` on the delivery row: each save
    is a fenced UPDATE, committed before the adapter goes on. The state is one flat
    object; each save merges its values into it."""

    def __init__(self, delivery_id: int, token: str, state: Mapping[str, Any]) -> None:
        self._delivery_id = delivery_id
        self._token = token
        self._state: dict[str, Any] = dict(state)

    @property
    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def fence(self) -> tuple[Any, ...]:
        return (
            Delivery.id == self._delivery_id,
            Delivery.status == SENDING,
            Delivery.claim_token == self._token,
        )

    def save(self, step: str, **values: Any) -> None:
        merged = {**self._state, **values}
        result = db.session.execute(
            update(Delivery)
            .where(*self.fence())
            .values(step=step[:64], state=merged, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            raise ClaimLost(f"delivery {self._delivery_id} was taken from this run")
        db.session.commit()
        self._state = merged

    def forget(self, *keys: str) -> None:
        self._state = {k: v for k, v in self._state.items() if k not in keys}


# -- the attempt ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    """What one attempt works with, read once so no transaction stays open while the
    network is called."""

    delivery_id: int
    public_id: str
    post_id: int
    agency_id: int
    channel_id: int
    channel_name: str
    network: str
    attempts: int
    token: str
    text: str
    rendition_id: int | None
    state: Mapping[str, Any]
    appeal_ids: tuple[int, ...]


def _claim(delivery_id: int, token: str, now: datetime) -> tuple[bool, bool]:
    """(claimed, taken over). A row left ``sending`` by a run that no longer runs (its
    worker died; the job was put back and this is its next run) is taken over; its
    last call may have gone out, so the attempt starts with ``find``."""
    seen = db.session.execute(
        select(Delivery.status, Delivery.claim_token).where(Delivery.id == delivery_id)
    ).first()
    if seen is None:
        db.session.commit()
        return False, False
    status, old_token = seen
    publishing = Delivery.post_id.in_(
        select(Post.id).where(Post.status == PostStatus.PUBLISHING.value)
    )
    if status in WAITING:
        condition = and_(
            Delivery.status == status,
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        takeover = False
    elif status == SENDING and old_token != token:
        holder_runs = exists().where(
            Job.status == JobStatus.RUNNING.value, Job.claim_token == Delivery.claim_token
        )
        condition = and_(
            Delivery.status == SENDING, Delivery.claim_token == old_token, ~holder_runs
        )
        takeover = True
    else:
        db.session.commit()
        return False, False
    result = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, condition, publishing)
        .values(
            status=SENDING,
            claim_token=token,
            attempts=Delivery.attempts + (0 if takeover else 1),
            step="",
            next_attempt_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = result.rowcount == 1  # type: ignore[attr-defined]
    if not claimed:
        db.session.commit()
    return claimed, takeover


def _not_due_yet(delivery_id: int, now: datetime) -> None:
    """A job that came before its delivery is due (another machine's clock a little
    ahead) tries again later rather than using up its attempt's key."""
    row = db.session.execute(
        select(Delivery.status, Delivery.next_attempt_at, Post.status)
        .join(Post, Post.id == Delivery.post_id)
        .where(Delivery.id == delivery_id)
    ).first()
    db.session.commit()
    if row is None:
        return
    status, due, post_status = row
    if status in WAITING and post_status == PostStatus.PUBLISHING.value and due and due > now:
        raise TransientJobError(f"delivery not due until {due.isoformat()}")


def run_delivery(delivery_id: int, ctx: JobContext) -> str:
    """One attempt of one delivery. Returns the status it left the delivery in, or
    ``"skipped"`` when there was nothing to claim (sent already, another run has it,
    cancelled). Ends every claimed attempt in a status a person can act on."""
    now = utcnow()
    claimed, takeover = _claim(delivery_id, ctx.token, now)
    if not claimed:
        _not_due_yet(delivery_id, now)
        return "skipped"
    delivery = db.session.get(Delivery, delivery_id)
    assert delivery is not None
    db.session.refresh(delivery)
    state = dict(delivery.state or {})
    if takeover:
        state[UNKNOWN_KEY] = "the worker sending it stopped before it could record the outcome"
        delivery.state = state
    attempt = _Attempt(
        delivery_id=delivery.id,
        public_id=delivery.public_id,
        post_id=delivery.post_id,
        agency_id=delivery.post.agency_id,
        channel_id=delivery.channel_id,
        channel_name=delivery.channel.name,
        network=delivery.channel.network,
        attempts=delivery.attempts,
        token=ctx.token,
        text=delivery.text,
        rendition_id=delivery.rendition_id,
        state=state,
        appeal_ids=tuple(item.appeal_id for item in delivery.post.appeals),
    )
    _audit(attempt, "delivery.sending", {"attempt": attempt.attempts, "takeover": takeover})
    db.session.commit()
    try:
        return _attempt(attempt, delivery.channel, now)
    except ClaimLost:
        raise
    except Exception as exc:
        # The engine's own failure (the database went away between two writes): the
        # row is still ``sending`` under this run's token; the job's retry takes it
        # over and asks ``find`` first. Nothing is lost, nothing is sent twice.
        db.session.rollback()
        raise exc


def _attempt(attempt: _Attempt, channel: Channel, now: datetime) -> str:
    withdrawn = _unpublished_appeals(attempt.appeal_ids)
    if withdrawn:
        return _end(
            attempt, CANCELLED, f"The appeal {withdrawn[0]} is no longer published.", now=now
        )
    solved = _solved_cases(attempt.appeal_ids)
    if solved:
        # "Do you recognize him?" about a solved case would only waste the public's time.
        return _end(
            attempt, CANCELLED, f"Case {solved[0]} was solved before this went out.", now=now
        )
    if channel.status != ChannelStatus.CONNECTED.value:
        state_words = CHANNEL_STATES.get(channel.status, channel.status.replace("_", " "))
        reason = f"The channel {channel.name} {state_words}; nothing was sent."
        if channel.status_reason:
            reason += f" {channel.status_reason}"
        return _end(attempt, FAILED, reason, now=now)
    try:
        adapter = adapter_for(channel)
        media_file = _media_file(attempt.rendition_id)
    except CredentialError as exc:
        return _credential_refused(attempt, exc.reason, now)
    except RejectedError as exc:
        return _end(attempt, FAILED, exc.reason, now=now, alert="rejected")
    except KeyError as exc:
        return _end(attempt, FAILED, str(exc).strip("'\""), now=now, alert="rejected")
    except Exception as exc:
        return _not_prepared(attempt, exc, now)
    steps = RowSteps(attempt.delivery_id, attempt.token, attempt.state)
    stack = ExitStack()
    try:
        media = stack.enter_context(media_file)
        draft = _draft(attempt, media)
    except Exception as exc:
        stack.close()
        return _not_prepared(attempt, exc, now)
    # Whatever escapes from here on (the database failing after the network took the
    # post, say) is not handled as "nothing sent": run_delivery lets the job retry,
    # and the retry takes the row over and looks before it sends.
    stack.callback(adapter.close)
    with stack:
        return _call(attempt, adapter, draft, steps, now)


def call_keeping_credentials(
    adapter: Adapter, channel_id: int, call: Callable[..., _T], *args: Any
) -> _T:
    """``call(*args)``, then store the credentials the network rotated during it, if
    it did, before anything else happens (whatever the call raised): X's refresh token
    is single use, so the old pair no longer works and losing the new one would need
    a person to reconnect the channel."""
    try:
        return call(*args)
    finally:
        rotated = adapter.updated_credentials
        if rotated is not None:
            db.session.execute(
                update(Channel)
                .where(Channel.id == channel_id)
                .values(credentials=json.dumps(rotated))
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            adapter.updated_credentials = None


def _not_prepared(attempt: _Attempt, exc: Exception, now: datetime) -> str:
    """The store could not give the rendition (or the adapter could not be built):
    nothing was called in this attempt. What an earlier attempt left unknown stays
    unknown, so the next attempt still looks first."""
    log.warning("delivery preparation failed", exc_info=exc)
    unknown = attempt.state.get(UNKNOWN_KEY)
    if isinstance(exc, FileNotFoundError | ObjectNotFound) or classify_error(exc) == "permanent":
        status = NEEDS_ATTENTION if unknown else FAILED
        alert = "attention" if unknown else "rejected"
        return _end(attempt, status, describe_error(exc), now=now, alert=alert)
    return _retry(attempt, describe_error(exc), None, now=now, unknown=unknown)


def _call(attempt: _Attempt, adapter: Adapter, draft: Draft, steps: RowSteps, now: datetime) -> str:
    finding = bool(steps.state.get(UNKNOWN_KEY))
    try:
        if finding:
            found = call_keeping_credentials(
                adapter, attempt.channel_id, adapter.find, draft, steps
            )
            if found is not None:
                return _sent(attempt, found, now, found_after_unknown=True)
            # The network says it certainly has no such post: publish it.
            steps.forget(UNKNOWN_KEY)
            steps.save("found nothing")
            finding = False
        capped = cap_reached(attempt.channel_id, attempt.network, attempt.delivery_id, now)
        if capped is not None:
            return _cap_wait(attempt, capped[0], capped[1], now=now, steps=steps)
        published = call_keeping_credentials(
            adapter, attempt.channel_id, adapter.publish, draft, steps
        )
    except ClaimLost:
        raise
    except CapReached as exc:
        wait = exc.retry_after if exc.retry_after is not None else CAP_RECHECK_S
        at = now + timedelta(seconds=max(wait, BACKOFF_BASE_S))
        return _cap_wait(attempt, exc.reason, at, now=now, steps=steps)
    except TransientError as exc:
        # A transient failure of ``find`` leaves the outcome as unknown as before.
        unknown = steps.state.get(UNKNOWN_KEY) if finding else None
        return _retry(attempt, exc.reason, exc.retry_after, now=now, unknown=unknown, steps=steps)
    except OutcomeUnknown as exc:
        if finding:
            reason = (
                f"It is not known whether this was posted ({steps.state.get(UNKNOWN_KEY)}), "
                f"and {attempt.network} cannot tell ({exc.reason}). Look on the account, "
                "then mark it sent or send it again."
            )
            return _end(attempt, NEEDS_ATTENTION, reason, now=now, alert="attention", steps=steps)
        return _retry(attempt, exc.reason, None, now=now, unknown=exc.reason, steps=steps)
    except CredentialError as exc:
        return _credential_refused(attempt, exc.reason, now, steps=steps)
    except RejectedError as exc:
        return _end(attempt, FAILED, exc.reason, now=now, alert="rejected", steps=steps)
    except Exception as exc:
        # A bug in an adapter, or a network answering something it did not expect:
        # the call may have gone out, so it is an unknown outcome, never a blind repeat.
        log.warning("channel adapter raised", exc_info=exc, extra={"network": attempt.network})
        reason = f"{attempt.network} adapter failed: {describe_error(exc)}"
        if finding:
            return _end(attempt, NEEDS_ATTENTION, reason, now=now, alert="attention", steps=steps)
        return _retry(attempt, reason, None, now=now, unknown=reason, steps=steps)
    return _sent(attempt, published, now)


@contextmanager
def _fetched(rendition: Rendition) -> Iterator[Media]:
    from portal.services.storage import local_copy

    with local_copy(rendition.storage_key) as path:
        yield Media(
            path=Path(path),
            content_type=rendition.content_type,
            size=rendition.size,
            duration_s=float(rendition.duration_s or 0.0),
            width=int(rendition.width or 0),
            height=int(rendition.height or 0),
            fps=float(rendition.version.clip.frame_rate or 0.0),
            sha256=rendition.sha256,
        )


def _media_file(rendition_id: int | None) -> Any:
    """A context manager giving the rendition as a local file (or None): fetched from
    the store to the work directory where the store is remote, removed after."""
    if rendition_id is None:
        return nullcontext(None)
    rendition = db.session.get(Rendition, rendition_id)
    if rendition is None:
        raise FileNotFoundError("the rendition chosen for this post no longer exists")
    db.session.commit()
    return _fetched(rendition)


def _draft(attempt: _Attempt, media: Media | None) -> Draft:
    appeals = [db.session.get(Appeal, appeal_id) for appeal_id in attempt.appeal_ids]
    first = appeals[0] if appeals else None
    link = appeal_url(first.public_id) if first is not None else ""
    alt = first.title if first is not None else ""
    db.session.commit()
    return Draft(text=attempt.text, media=media, link=link, alt=alt, key=attempt.public_id)


def appeal_url(appeal_public_id: str) -> str:
    from portal.services.notifications import page_url

    return page_url("public.appeal_page", appeal_id=appeal_public_id)


def _unpublished_appeals(appeal_ids: tuple[int, ...]) -> list[str]:
    rows = db.session.execute(
        select(Appeal.public_id, Appeal.status).where(Appeal.id.in_(appeal_ids))
    ).all()
    db.session.commit()
    return [public_id for public_id, status in rows if status != "published"]


def _solved_cases(appeal_ids: tuple[int, ...]) -> list[str]:
    from portal.models import Case, CaseStatus

    numbers = list(
        db.session.scalars(
            select(Case.number)
            .join(Appeal, Appeal.case_id == Case.id)
            .where(Appeal.id.in_(appeal_ids), Case.status == CaseStatus.SOLVED.value)
        )
    )
    db.session.commit()
    return numbers


# -- writing the outcome -----------------------------------------------------------------


def _fence(attempt: _Attempt) -> tuple[Any, ...]:
    return (
        Delivery.id == attempt.delivery_id,
        Delivery.status == SENDING,
        Delivery.claim_token == attempt.token,
    )


def _write(attempt: _Attempt, **values: Any) -> None:
    result = db.session.execute(
        update(Delivery)
        .where(*_fence(attempt))
        .values(claim_token="", updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise ClaimLost(f"delivery {attempt.delivery_id} was taken from this run")


def _state_of(attempt: _Attempt, steps: RowSteps | None) -> dict[str, Any]:
    return dict(steps.state if steps is not None else attempt.state)


def _sent(
    attempt: _Attempt, published: Published, now: datetime, *, found_after_unknown: bool = False
) -> str:
    _write(
        attempt,
        status=SENT,
        step="",
        reason="",
        remote_id=str(published.remote_id)[:500],
        remote_url=str(published.url)[:2000],
        remote_extra=dict(published.extra),
        sent_at=now,
        next_attempt_at=None,
    )
    _audit(
        attempt,
        "delivery.sent",
        {"remote_id": published.remote_id, "url": published.url, "found": found_after_unknown},
    )
    # Solved while it was being sent: it gets its update like the others.
    if _solved_cases(attempt.appeal_ids):
        enqueue(
            SOLVED_JOB,
            unique_key=f"{SOLVED_JOB}:{attempt.delivery_id}",
            delivery_id=attempt.delivery_id,
        )
    # Withdrawn while it was being sent: taken down again at once.
    if _unpublished_appeals(attempt.appeal_ids):
        enqueue(
            REMOVE_JOB,
            unique_key=f"{REMOVE_JOB}:{attempt.delivery_id}",
            delivery_id=attempt.delivery_id,
        )
    finish_post(attempt.post_id)
    db.session.commit()
    return SENT


def _retry(
    attempt: _Attempt,
    reason: str,
    retry_after: float | None,
    *,
    now: datetime,
    unknown: str | None,
    steps: RowSteps | None = None,
) -> str:
    state = _state_of(attempt, steps)
    if unknown:
        state[UNKNOWN_KEY] = unknown
    else:
        state.pop(UNKNOWN_KEY, None)
    state.pop(CAP_SINCE_KEY, None)  # a wait for the cap, if there was one, is over
    tries = attempt.attempts - int(state.get(CAP_WAITS_KEY) or 0)
    if tries >= MAX_ATTEMPTS:
        if unknown:
            text = (
                f"Gave up after {attempt.attempts} attempts, and it is not known whether the "
                f"last one was posted ({reason}). Look on the account."
            )
            return _end(attempt, NEEDS_ATTENTION, text, now=now, alert="attention", state=state)
        text = f"Gave up after {attempt.attempts} attempts: {reason}"
        return _end(attempt, FAILED, text, now=now, alert="rejected", state=state)
    at = now + timedelta(seconds=backoff_s(tries, retry_after))
    _write(attempt, status=RETRYING, reason=reason[:4000], next_attempt_at=at, state=state)
    _audit(attempt, "delivery.retrying", {"reason": reason, "at": at.isoformat()})
    db.session.commit()
    return RETRYING


#: Deliveries that took one of the channel's daily posts, by when they were sent (a post
#: taken down since still counted against the day it went out).
_SENT_COUNTED = (SENT, REMOVED)


def cap_reached(
    channel_id: int, network: str, delivery_id: int, now: datetime
) -> tuple[str, datetime] | None:
    """Whether sending ``delivery_id`` now would pass the network's daily cap (its
    posts in any 24 hours, portal/publishing/limits.py ``daily_cap``), counting what the
    channel sent in the 24 hours before ``now`` and what it is sending at this moment;
    ``(reason, when it frees)``, or None when it may go.

    Preflight checked the cap against the slots when the post was scheduled; since
    then a "post now", a retry that slid into another post's day or a second post the
    same day may have used the day's posts. Of two deliveries of one channel being
    sent at once, the one made first goes, the other counts it (so both never wait
    for each other)."""
    limits = LIMITS.get(network)
    if limits is None or limits.daily_cap is None:
        return None
    cap = limits.daily_cap.value
    day = timedelta(hours=24)
    sent_at: list[datetime] = [
        at
        for at in db.session.scalars(
            select(Delivery.sent_at)
            .where(
                Delivery.channel_id == channel_id,
                Delivery.id != delivery_id,
                Delivery.status.in_(_SENT_COUNTED),
                Delivery.sent_at > now - day,
            )
            .order_by(Delivery.sent_at)
        )
        if at is not None
    ]
    in_flight = (
        db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.channel_id == channel_id,
                Delivery.id < delivery_id,
                Delivery.status == SENDING,
            )
        )
        or 0
    )
    db.session.commit()
    taken = len(sent_at) + in_flight
    if taken < cap:
        return None
    # The day's posts free one by one as each leaves the 24 hours: the post goes when
    # one fewer than the cap remain.
    index = taken - cap
    frees = sent_at[index] + day if index < len(sent_at) else now + timedelta(seconds=CAP_RECHECK_S)
    reason = (
        f"{limits.label} takes {cap} posts from one account in 24 hours and this account "
        f"has {taken} in the last 24 hours"
    )
    return reason, frees


def _cap_wait(
    attempt: _Attempt,
    reason: str,
    at: datetime,
    *,
    now: datetime,
    steps: RowSteps | None = None,
) -> str:
    """Nothing was sent because the daily cap is reached: wait until ``at`` (when it
    frees), keeping every stored step; the coordinators are told when the wait begins.
    A wait that outlasts :data:`CAP_WAIT_MAX` fails for a person."""
    state = _state_of(attempt, steps)
    began = state.get(CAP_SINCE_KEY)
    since = datetime.fromisoformat(began) if isinstance(began, str) else now
    state[CAP_SINCE_KEY] = since.isoformat()
    state[CAP_WAITS_KEY] = int(state.get(CAP_WAITS_KEY) or 0) + 1
    if now - since >= CAP_WAIT_MAX:
        hours = int(CAP_WAIT_MAX.total_seconds() // 3600)
        text = (
            f"The daily cap is still reached after waiting {hours} hours ({reason}); "
            "nothing was sent. Post fewer times a day on this account, then try again."
        )
        return _end(attempt, FAILED, text, now=now, alert="rejected", state=state)
    at = max(at, now + timedelta(seconds=BACKOFF_BASE_S))
    text = f"The daily cap is reached: {reason}. Nothing was sent; it goes when the cap frees."
    _write(attempt, status=RETRYING, reason=text[:4000], next_attempt_at=at, state=state)
    _audit(attempt, "delivery.cap_wait", {"reason": reason, "at": at.isoformat()})
    if began is None:
        # Once a wait: the key names the wait's start, not the attempt.
        alert_coordinators(attempt.delivery_id, "cap", state[CAP_SINCE_KEY])
    db.session.commit()
    return RETRYING


def _end(
    attempt: _Attempt,
    status: str,
    reason: str,
    *,
    now: datetime,
    alert: str | None = None,
    steps: RowSteps | None = None,
    state: dict[str, Any] | None = None,
) -> str:
    _write(
        attempt,
        status=status,
        reason=reason[:4000],
        next_attempt_at=None,
        state=state if state is not None else _state_of(attempt, steps),
    )
    _audit(attempt, f"delivery.{status}", {"reason": reason})
    if alert:
        alert_coordinators(attempt.delivery_id, alert, attempt.attempts)
    finish_post(attempt.post_id)
    db.session.commit()
    return status


def _credential_refused(
    attempt: _Attempt, reason: str, now: datetime, *, steps: RowSteps | None = None
) -> str:
    marked = db.session.execute(
        update(Channel)
        .where(Channel.id == attempt.channel_id, Channel.status == ChannelStatus.CONNECTED.value)
        .values(status=ChannelStatus.NEEDS_RECONNECT.value, status_reason=reason[:2000])
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount == 1:  # type: ignore[attr-defined]
        channel = db.session.get(Channel, attempt.channel_id)
        record_event(
            "channel.needs_reconnect",
            agency_id=attempt.agency_id,
            actor_label=SYSTEM,
            object_type="channel",
            object_id=channel.public_id if channel else "",
            details={"reason": reason},
        )
    text = f"{reason}. An admin must connect {attempt.channel_name} again."
    return _end(attempt, FAILED, text, now=now, alert="credential", steps=steps)


def _audit(attempt: _Attempt, action: str, details: dict[str, Any]) -> None:
    record_event(
        action,
        agency_id=attempt.agency_id,
        actor_label=SYSTEM,
        object_type="delivery",
        object_id=attempt.public_id,
        details={"channel": attempt.channel_name, "network": attempt.network, **details},
    )


def alert_coordinators(delivery_id: int, kind: str, attempt: int | str) -> None:
    """Tell the agency's coordinators by e-mail: a job per person, after commit."""
    if not current_app.config["TATTLETALE"].sends_mail:
        return
    from portal.models import Role, User, UserRole

    agency_id = db.session.scalar(
        select(Post.agency_id)
        .join(Delivery, Delivery.post_id == Post.id)
        .where(Delivery.id == delivery_id)
    )
    coordinators = db.session.scalars(
        select(User.id)
        .join(UserRole)
        .where(
            User.agency_id == agency_id,
            UserRole.role == Role.COORDINATOR.value,
            User.is_disabled.is_(False),
        )
    ).all()
    for user_id in coordinators:
        enqueue(
            ALERT_JOB,
            unique_key=f"{ALERT_JOB}:{delivery_id}:{kind}:{attempt}:{user_id}",
            delivery_id=delivery_id,
            kind=kind,
            user_id=user_id,
        )


def fail_after_job_gave_up(delivery_id: int, reason: str) -> None:
    """The deliver job failed for good (its own errors, not the network's): the row
    must not stay ``sending`` or waiting. If an attempt was under way, its outcome is
    unknown: a person looks."""
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.status in ENDED:
        return
    was_sending = delivery.status == SENDING or bool((delivery.state or {}).get(UNKNOWN_KEY))
    delivery.status = NEEDS_ATTENTION if was_sending else FAILED
    delivery.reason = f"The delivery job failed: {reason}"[:4000]
    delivery.claim_token = ""
    delivery.next_attempt_at = None
    record_event(
        f"delivery.{delivery.status}",
        agency_id=delivery.post.agency_id,
        actor_label=SYSTEM,
        object_type="delivery",
        object_id=delivery.public_id,
        details={"reason": delivery.reason},
    )
    db.session.flush()


# -- the post as a whole -----------------------------------------------------------------


def finish_post(post_id: int) -> bool:
    """Mark a publishing post done once every delivery of it ended. Flushes."""
    pending = db.session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.post_id == post_id, Delivery.status.not_in(ENDED))
    )
    if pending:
        return False
    counts: dict[str, int] = {
        status: count
        for status, count in db.session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.post_id == post_id)
            .group_by(Delivery.status)
        )
    }
    summary = ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in sorted(counts))
    result = db.session.execute(
        update(Post)
        .where(Post.id == post_id, Post.status == PostStatus.PUBLISHING.value)
        .values(status=PostStatus.DONE.value, status_reason=summary, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DueReport:
    posts_started: int
    deliveries_enqueued: int
    posts_done: int


def publish_due(now: datetime | None = None) -> DueReport:
    """What is due at ``now``: scheduled posts whose slot came start publishing, their
    deliveries and the retries whose time came get a job each, posts whose deliveries
    all ended are done. Safe to call any number of times for one instant (two
    schedulers, a restarted beat, an operator catching up): every change is a
    conditional UPDATE and every job has its attempt's key. Commits."""
    now = now or utcnow()
    started = db.session.execute(
        update(Post)
        .where(Post.status == PostStatus.SCHEDULED.value, Post.slot_at <= now)
        .values(status=PostStatus.PUBLISHING.value, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    db.session.commit()
    due = db.session.scalars(
        select(Delivery)
        .join(Post, Post.id == Delivery.post_id)
        .where(
            Post.status == PostStatus.PUBLISHING.value,
            Delivery.status.in_(WAITING),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .order_by(Post.slot_at, Delivery.id)
    ).all()
    for delivery in due:
        enqueue_delivery(delivery)
    done = 0
    publishing = db.session.scalars(
        select(Post.id).where(Post.status == PostStatus.PUBLISHING.value)
    ).all()
    for post_id in publishing:
        done += finish_post(post_id)
    db.session.commit()
    return DueReport(posts_started=started, deliveries_enqueued=len(due), posts_done=done)


def posts_of_appeal(appeal_id: int) -> list[int]:
    return list(
        db.session.scalars(select(PostAppeal.post_id).where(PostAppeal.appeal_id == appeal_id))
    )
