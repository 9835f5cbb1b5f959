"""The decorator that puts a permission check in front of a staff view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, request
from flask_login import current_user

from portal.extensions import db
from portal.http.edge import staff_client_addr
from portal.models import Outcome
from portal.services.audit import record_event
from portal.services.authz import Permission, can


def deny(permission: Permission, object_type: str = "route", object_id: str = "") -> None:
    """Audit the refusal, then answer 403."""
    record_event(
        "authz.denied",
        agency_id=current_user.agency_id if current_user.is_authenticated else None,
        actor=current_user if current_user.is_authenticated else None,
        object_type=object_type,
        object_id=object_id or request.path,
        outcome=Outcome.DENIED,
        client_addr=staff_client_addr(),
        details={"permission": permission.value},
    )
    db.session.commit()
    abort(403)


def requires(permission: Permission) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not can(current_user, permission):
                deny(permission)
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator
