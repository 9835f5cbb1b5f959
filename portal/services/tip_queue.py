"""The detectives' tip queue: which tips a user may see, filtered, sorted, searched
and paged by keyset, with per-user read markers.

Every order is a keyset over (sort value, ..., id), each served by an index of
``tips`` (see the model), so page 1,000 costs what page 1 does. The cursor is the
public id of the last tip of a page: no integer key leaves the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, or_, select, tuple_
from sqlalchemy.orm import defer, joinedload, lazyload, load_only

from portal.extensions import db
from portal.models import (
    Agency,
    Appeal,
    Case,
    CaseAssignment,
    Tip,
    TipAttachment,
    TipRead,
    TipStatus,
    User,
)
from portal.models.attachments import AttachmentStatus
from portal.models.base import utcnow
from portal.services.appeals import CHANNEL_LABELS
from portal.services.authz import AGENCY_WIDE_ROLES, ROLE_PERMISSIONS, Permission, can
from portal.services.errors import PermissionDenied, ValidationFailed
from portal.services.text import clean_text
from portal.services.tip_search import matching_tip_ids, search_terms

PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
MAX_NEW_TIPS = 20

#: Each order: its label, and its keyset columns with the direction they run.
SORTS: dict[str, tuple[str, bool]] = {
    "newest": ("Newest first", True),
    "oldest": ("Oldest first", False),
    "priority": ("Priority, then newest", True),
    "waiting": ("Waiting longest for a reply", False),
}
STATUSES = [status.value for status in TipStatus]
CHANNEL_NAMES = ["web", *CHANNEL_LABELS]


def _sort_columns(sort: str) -> list[Any]:
    columns: dict[str, list[Any]] = {
        "newest": [Tip.created_at, Tip.id],
        "oldest": [Tip.created_at, Tip.id],
        "priority": [Tip.priority, Tip.created_at, Tip.id],
        "waiting": [Tip.awaiting_since, Tip.id],
    }
    return columns[sort]


def is_agency_wide_for_tips(user: User) -> bool:
    """Supervisors triage every tip of their agency; detectives those of their cases."""
    return any(
        Permission.TIP_TRIAGE in ROLE_PERMISSIONS.get(role, ()) and role in AGENCY_WIDE_ROLES
        for role in user.roles
    )


def triage_scope(user: User) -> ColumnElement[bool]:
    """The tips ``user`` may handle, as a condition: the same rule as
    :func:`portal.services.tips.may_handle`, for a whole table at once."""
    in_agency = Tip.agency_id == user.agency_id
    if is_agency_wide_for_tips(user):
        return in_agency
    assigned = select(CaseAssignment.case_id).where(CaseAssignment.user_id == user.id)
    created = select(Case.id).where(Case.created_by_id == user.id)
    return sa.and_(
        in_agency,
        or_(Tip.case_id.is_(None), Tip.case_id.in_(assigned), Tip.case_id.in_(created)),
    )


def awaiting_staff(tip: Tip) -> bool:
    """The tipster is waiting for an answer: nothing from staff yet, or they wrote
    again since."""
    return tip.awaiting_since is not None


def reply_waiting(tip: Tip) -> bool:
    """The tipster answered and staff have not written since: the queue's mark."""
    return tip.awaiting_since is not None and tip.last_tipster_message_at is not None


def overdue_since(agency: Agency, now: datetime | None = None) -> datetime:
    """Tips that came before this moment and have no staff reply are overdue."""
    return (now or utcnow()) - timedelta(hours=agency.first_response_hours)


# Statuses in which a tip no longer waits for a first answer: never overdue.
SETTLED = (TipStatus.NO_VALUE.value, TipStatus.DUPLICATE.value, TipStatus.CLOSED.value)


def overdue_condition(agency: Agency, now: datetime | None = None) -> ColumnElement[bool]:
    """No staff reply within the agency's first-response target, and still open."""
    return sa.and_(
        Tip.agency_id == agency.id,
        Tip.last_staff_message_at.is_(None),
        Tip.status.not_in(SETTLED),
        Tip.created_at < overdue_since(agency, now),
    )


def is_overdue(tip: Tip, now: datetime | None = None) -> bool:
    return (
        tip.last_staff_message_at is None
        and tip.status not in SETTLED
        and tip.created_at < overdue_since(tip.agency, now)
    )


@dataclass(frozen=True)
class TipQuery:
    """What the queue is asked for. Ids are public ids; empty means any."""

    case: str = ""
    appeal: str = ""
    status: str = ""
    #: a user's public id, "me", or "none" (nobody assigned)
    assignee: str = ""
    channel: str = ""
    unanswered: bool = False
    overdue: bool = False
    #: only tips with a photo or video a detective can look at (or retry)
    attachments: bool = False
    q: str = ""
    sort: str = "newest"

    def as_args(self) -> dict[str, str]:
        """The query as URL arguments (what links to another page carry)."""
        args = {
            "case": self.case,
            "appeal": self.appeal,
            "status": self.status,
            "assignee": self.assignee,
            "channel": self.channel,
            "unanswered": "1" if self.unanswered else "",
            "overdue": "1" if self.overdue else "",
            "attachments": "1" if self.attachments else "",
            "q": self.q,
            "sort": "" if self.sort == "newest" else self.sort,
        }
        return {key: value for key, value in args.items() if value}


def query_from_args(args: Any) -> TipQuery:
    """A :class:`TipQuery` from URL arguments (the page's filter form, the poll)."""

    def text(name: str, max_length: int = 64) -> str:
        return clean_text(args.get(name, ""), field=name, max_length=max_length)

    return TipQuery(
        case=text("case"),
        appeal=text("appeal"),
        status=text("status"),
        assignee=text("assignee"),
        channel=text("channel"),
        unanswered=args.get("unanswered", "") in ("1", "true", "on"),
        overdue=args.get("overdue", "") in ("1", "true", "on"),
        attachments=args.get("attachments", "") in ("1", "true", "on"),
        q=text("q", 200),
        sort=text("sort") or "newest",
    )


def _public_row(model: Any, public_id: str, agency_id: int, field_name: str) -> int:
    found = db.session.scalar(
        select(model.id).where(model.public_id == public_id, model.agency_id == agency_id)
    )
    if found is None:
        raise ValidationFailed(f"No such {field_name}.", field=field_name)
    return int(found)


def filtered_tips(user: User, query: TipQuery, now: datetime | None = None) -> Select[tuple[Tip]]:
    """Every tip ``user`` may handle that matches ``query``, in no order yet."""
    if not can(user, Permission.TIP_TRIAGE):
        raise PermissionDenied("You may not see tips.")
    statement = select(Tip).where(triage_scope(user))
    if query.case:
        statement = statement.where(
            Tip.case_id == _public_row(Case, query.case, user.agency_id, "case")
        )
    if query.appeal:
        statement = statement.where(
            Tip.appeal_id == _public_row(Appeal, query.appeal, user.agency_id, "appeal")
        )
    if query.status:
        if query.status not in STATUSES:
            raise ValidationFailed(f"Unknown status {query.status!r}.", field="status")
        statement = statement.where(Tip.status == query.status)
    if query.assignee == "none":
        statement = statement.where(Tip.assignee_id.is_(None))
    elif query.assignee == "me":
        statement = statement.where(Tip.assignee_id == user.id)
    elif query.assignee:
        assignee = db.session.scalar(
            select(User.id).where(
                User.public_id == query.assignee, User.agency_id == user.agency_id
            )
        )
        if assignee is None:
            raise ValidationFailed("No such assignee.", field="assignee")
        statement = statement.where(Tip.assignee_id == assignee)
    if query.channel:
        if query.channel not in CHANNEL_NAMES:
            raise ValidationFailed(f"Unknown channel {query.channel!r}.", field="channel")
        statement = statement.where(Tip.channel == query.channel)
    if query.unanswered:
        statement = statement.where(Tip.awaiting_since.is_not(None))
    if query.overdue:
        statement = statement.where(overdue_condition(user.agency, now))
    if query.attachments:
        statement = statement.where(
            select(TipAttachment.id)
            .where(TipAttachment.tip_id == Tip.id, TipAttachment.status.in_(_VIEWABLE))
            .exists()
        )
    if query.sort not in SORTS:
        raise ValidationFailed(f"Unknown order {query.sort!r}.", field="sort")
    if query.sort == "waiting":
        # Only tips whose tipster waits have a place in this order.
        statement = statement.where(Tip.awaiting_since.is_not(None))
    terms = search_terms(query.q)
    if terms:
        statement = statement.where(_matching(terms))
    return statement


#: Attachments a detective has something of: a refused file kept no bytes, a draft
#: belongs to no tip yet.
_VIEWABLE = (
    AttachmentStatus.QUEUED.value,
    AttachmentStatus.READY.value,
    AttachmentStatus.FAILED.value,
)

#: Up to this many matches, a search hands the queue's query the tips' ids.
FEW_MATCHES = 2_000


def _matching(terms: list[str]) -> ColumnElement[bool]:
    """The search as a condition on ``tips``, chosen by how many tips match.

    Measured on PostgreSQL (bench/queue_bench.py): as a subquery, the planner
    misjudges rare words (a plate seen once) and walks the whole queue in date order
    probing each tip's document, which took seconds at a million tips. So the ids
    are read first from the full-text index, at most FEW_MATCHES + 1 of them: a rare
    word gives a short list, which the primary key serves at once; a common one is
    left as a subquery, where the walk in date order finds a page of matches soon.
    """
    matching = matching_tip_ids(db.engine.dialect.name, terms)
    ids = list(db.session.scalars(matching.limit(FEW_MATCHES + 1)))
    if len(ids) <= FEW_MATCHES:
        return Tip.id.in_(ids)
    return Tip.id.in_(matching.scalar_subquery())


#: What a queue row shows, loaded with the page, and nothing else (measured with
#: bench/queue_page_bench.py: the conversation cost a third of a page's time when
#: loaded with it; the tipster's contact, which no row shows, was decrypted for every
#: row; the case's assignments and the assignee's roles were two more queries). What
#: is left out is still there when read (one query for it then).
ROW_LOADING = (
    defer(Tip.contact_name),
    defer(Tip.contact_phone),
    defer(Tip.contact_email),
    joinedload(Tip.case).options(
        load_only(Case.id, Case.public_id, Case.number), lazyload(Case.assignments)
    ),
    joinedload(Tip.assignee).options(
        load_only(User.id, User.public_id, User.display_name), lazyload(User.role_rows)
    ),
    lazyload(Tip.messages),
    lazyload(Tip.attachments),
    lazyload(Tip.public_reply),
)


def _unread_column(user: User) -> ColumnElement[bool]:
    """True for a tip ``user`` has not opened since it came or since the tipster last
    wrote: :func:`unread_among`'s rule, as a column of the page's own query."""
    read = (
        select(TipRead.tip_id)
        .where(
            TipRead.user_id == user.id,
            TipRead.tip_id == Tip.id,
            or_(
                Tip.last_tipster_message_at.is_(None),
                Tip.last_tipster_message_at <= TipRead.read_at,
            ),
        )
        .exists()
    )
    return ~read


#: A tip with any attachment (the row's badge), as a column of the page's query.
_HAS_ATTACHMENTS = select(TipAttachment.id).where(TipAttachment.tip_id == Tip.id).exists()


@dataclass(frozen=True)
class QueuePage:
    tips: list[Tip]
    next_cursor: str | None
    unread: frozenset[int] = field(default_factory=frozenset)
    #: The ids of those of ``tips`` with an attachment.
    with_attachments: frozenset[int] = field(default_factory=frozenset)


def list_queue(
    user: User,
    query: TipQuery,
    *,
    after: str | None = None,
    limit: int = PAGE_SIZE,
    now: datetime | None = None,
) -> QueuePage:
    """One page of the queue. ``after`` is the previous page's ``next_cursor``."""
    statement = filtered_tips(user, query, now)
    columns = _sort_columns(query.sort)
    descending = SORTS[query.sort][1]
    after = clean_text(after, field="after", max_length=64, label="Page cursor") or None
    if after:
        values = db.session.execute(
            select(*columns).where(Tip.public_id == after, Tip.agency_id == user.agency_id)
        ).first()
        if values is None or any(value is None for value in values):
            raise ValidationFailed("That page cursor is not valid any more.", field="after")
        keyset = tuple_(*columns)
        bound = tuple_(
            *[sa.literal(value, type_=col.type) for col, value in zip(columns, values, strict=True)]
        )
        statement = statement.where(keyset < bound if descending else keyset > bound)
    order = [col.desc() if descending else col.asc() for col in columns]
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    # The read markers and the attachments in the same query: one statement a page.
    statement = (
        statement.add_columns(_unread_column(user), _HAS_ATTACHMENTS)
        .options(*ROW_LOADING)
        .order_by(*order)
        .limit(limit + 1)
    )
    fetched = list(db.session.execute(statement))
    more = len(fetched) > limit
    rows = fetched[:limit]
    tips = [row[0] for row in rows]
    return QueuePage(
        tips=tips,
        next_cursor=tips[-1].public_id if more else None,
        unread=frozenset(row[0].id for row in rows if row[1]),
        with_attachments=frozenset(row[0].id for row in rows if row[2]),
    )


def new_tips_since(user: User, query: TipQuery, since: datetime) -> list[Tip]:
    """Tips that came after ``since`` and match ``query``, newest first: what the
    queue's page adds at its top without reloading."""
    statement = filtered_tips(user, query).where(Tip.created_at > since)
    return list(
        db.session.scalars(
            statement.options(*ROW_LOADING)
            .order_by(Tip.created_at.desc(), Tip.id.desc())
            .limit(MAX_NEW_TIPS)
        )
    )


def unread_among(user: User, tips: list[Tip]) -> frozenset[int]:
    """The ids of those of ``tips`` that ``user`` has not opened since they came or
    since the tipster last wrote."""
    if not tips:
        return frozenset()
    rows = db.session.execute(
        select(TipRead.tip_id, TipRead.read_at).where(
            TipRead.user_id == user.id, TipRead.tip_id.in_([tip.id for tip in tips])
        )
    )
    reads: dict[int, datetime] = {tip_id: read_at for tip_id, read_at in rows}
    unread = set()
    for tip in tips:
        read_at = reads.get(tip.id)
        if read_at is None or (
            tip.last_tipster_message_at is not None and tip.last_tipster_message_at > read_at
        ):
            unread.add(tip.id)
    return frozenset(unread)


def mark_read(user: User, tip: Tip) -> None:
    """Record that ``user`` has opened ``tip`` now (one row per user and tip)."""
    now = utcnow()
    values = {"user_id": user.id, "tip_id": tip.id, "read_at": now}
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    statement = upsert(TipRead).values(**values)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[TipRead.user_id, TipRead.tip_id], set_={"read_at": now}
        )
    )
