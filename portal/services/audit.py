"""The one function every feature calls to write the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, Select, func, or_, select
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import AuditEvent, Outcome, User
from portal.services import (
    audit_chain,  # noqa: F401  (chains every entry on flush)
    origin,
)

SYSTEM_ACTOR = "system"
ANONYMOUS_ACTOR = "anonymous"


def record_event(
    action: str,
    *,
    agency_id: int | None,
    actor: User | None = None,
    actor_label: str | None = None,
    object_type: str = "",
    object_id: str = "",
    outcome: Outcome = Outcome.SUCCESS,
    client_addr: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction.

    ``agency_id`` is the agency of the object the event concerns, and decides whose
    admins may read it; it is required so that no caller forgets it. None only for
    what concerns no agency (a sign-in attempt for an address nobody has, a store-wide
    check, key rotation): those are for the operators, through the CLI.

    The client address is the one the staff and API edges bound for this request
    (:mod:`portal.services.origin`), unless given; public requests bind none.

    The event commits with the work it describes, so the log never claims something
    happened that was rolled back. Callers that record a refusal (nothing else to
    commit) commit themselves.
    """
    if client_addr is None:
        client_addr = origin.client_addr()
    label = actor.email if actor is not None else (actor_label or SYSTEM_ACTOR)
    event = AuditEvent(
        agency_id=agency_id,
        actor_id=actor.id if actor is not None else None,
        actor_label=label[:254],
        action=action,
        object_type=object_type,
        object_id=object_id[:64],
        outcome=outcome.value,
        client_addr=client_addr,
        details=details or {},
    )
    db.session.add(event)
    return event


@dataclass(frozen=True)
class AuditFilter:
    """What an admin searches the log for. Empty fields match everything."""

    actor: str = ""
    action: str = ""
    object_id: str = ""
    outcome: str = ""
    since: date | None = None
    until: date | None = None

    def as_details(self) -> dict[str, str]:
        """The filter as recorded in the audit.view / audit.export event."""
        return {
            name: value.isoformat() if isinstance(value, date) else value
            for name, value in vars(self).items()
            if value
        }


def _like_prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def audit_query(agency_id: int | None, search: AuditFilter) -> Select[tuple[AuditEvent]]:
    """Events of ``agency_id`` that match ``search``, newest first.

    An agency's admins read only their agency's events. ``None`` selects the events
    that concern no agency (sign-in attempts for unknown addresses, store-wide
    checks): they may name another agency's staff (a mistyped address) or show one
    agency's attack to another, so only the operators read them, through
    ``flask --app wsgi audit list --unattributed``.
    """
    if agency_id is None:
        query = select(AuditEvent).where(AuditEvent.agency_id.is_(None))
    else:
        query = select(AuditEvent).where(AuditEvent.agency_id == agency_id)
    if search.actor:
        query = query.where(
            func.lower(AuditEvent.actor_label).like(
                _like_prefix(search.actor.strip().lower()), escape="\\"
            )
        )
    if search.action:
        # "auth" finds auth.login, auth.logout, ...; "auth.login" finds just that.
        action = search.action.strip()
        query = query.where(
            or_(
                AuditEvent.action == action,
                AuditEvent.action.like(_like_prefix(action + "."), escape="\\"),
            )
        )
    if search.object_id:
        query = query.where(AuditEvent.object_id == search.object_id.strip())
    if search.outcome:
        query = query.where(AuditEvent.outcome == search.outcome)
    if search.since:
        query = query.where(AuditEvent.occurred_at >= datetime.combine(search.since, time(), UTC))
    if search.until:
        end = datetime.combine(search.until + timedelta(days=1), time(), UTC)
        query = query.where(AuditEvent.occurred_at < end)
    return query.order_by(AuditEvent.id.desc())


def search_events(
    agency_id: int | None, search: AuditFilter, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEvent]:
    """One page, by keyset: the ``limit`` newest events older than ``before_id``.

    Keyset rather than OFFSET: a page deep in a log of millions costs the same as
    the first, and events recorded while paging do not shift the pages."""
    query = audit_query(agency_id, search)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(db.session.scalars(query.limit(limit)))


def iter_events(
    engine: Engine, agency_id: int | None, search: AuditFilter, *, batch: int = 500
) -> Iterator[AuditEvent]:
    """Every matching event, newest first, a batch at a time (for export).

    Reads through a session of its own, cleared after each batch, so memory stays
    flat however long the log, and the caller's session is left alone. Needs no
    app context: a streamed response can iterate it after the view returned.
    """
    with Session(engine) as session:
        before_id: int | None = None
        while True:
            query = audit_query(agency_id, search)
            if before_id is not None:
                query = query.where(AuditEvent.id < before_id)
            rows = list(session.scalars(query.limit(batch)))
            if not rows:
                return
            yield from rows
            before_id = rows[-1].id
            session.expunge_all()
