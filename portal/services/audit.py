"""The one function every feature calls to write the audit log."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.models import AuditEvent, Outcome, User

SYSTEM_ACTOR = "system"
ANONYMOUS_ACTOR = "anonymous"


def record_event(
    action: str,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    object_type: str = "",
    object_id: str = "",
    outcome: Outcome = Outcome.SUCCESS,
    client_addr: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction.

    The event commits with the work it describes, so the log never claims something
    happened that was rolled back. Callers that record a refusal (nothing else to
    commit) commit themselves.
    """
    label = actor.email if actor is not None else (actor_label or SYSTEM_ACTOR)
    event = AuditEvent(
        agency_id=actor.agency_id if actor is not None else None,
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
