"""The decorator that puts a permission check in front of an API operation.

The same :func:`portal.services.authz.can` as the staff pages, applied to the
token's user acting with the token's scopes (``User.roles``), so a token scoped to
``officer`` is refused what only an ``admin`` may do, whatever else its user holds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request

from portal.extensions import db
from portal.http.edge import problem, staff_client_addr
from portal.models import Outcome
from portal.services.audit import record_event
from portal.services.authz import Permission, can


def api_requires(permission: Permission) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = g.get("api_user")
            if not can(user, permission):
                record_event(
                    "authz.denied",
                    agency_id=user.agency_id if user else None,
                    actor=user,
                    object_type="route",
                    object_id=request.path,
                    outcome=Outcome.DENIED,
                    client_addr=staff_client_addr(),
                    details={
                        "permission": permission.value,
                        "acting_roles": sorted(r.value for r in user.roles) if user else [],
                    },
                )
                db.session.commit()
                return problem(403, "This token may not do that.")
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator
