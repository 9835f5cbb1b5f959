"""The JSON API under /api/v1/. Every operation needs a bearer token, except the
OpenAPI document. Session cookies are ignored here, which is why CSRF does not apply."""

from __future__ import annotations

from flask import Blueprint, g, request

from portal.extensions import db
from portal.http.edge import problem, staff_client_addr
from portal.models import Outcome
from portal.services.audit import ANONYMOUS_ACTOR, record_event
from portal.services.errors import AuthenticationFailed
from portal.services.users import authenticate_token

bp = Blueprint("api", __name__)

ANONYMOUS_ENDPOINTS = frozenset({"api.openapi"})


@bp.before_request
def authenticate_bearer():
    g.api_user = None
    if request.endpoint in ANONYMOUS_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not secret:
            raise AuthenticationFailed("missing_token")
        g.api_user = authenticate_token(secret.strip())
        g.api_user_id = g.api_user.public_id
        db.session.commit()  # last_used_at
    except AuthenticationFailed as exc:
        record_event(
            "api.auth",
            agency_id=None,
            actor_label=ANONYMOUS_ACTOR,
            object_type="route",
            object_id=request.path,
            outcome=Outcome.DENIED,
            client_addr=staff_client_addr(),
            details={"reason": exc.reason},
        )
        db.session.commit()
        response = problem(
            401, "A valid API token is required.", "Send 'Authorization: Bearer <token>'."
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="tattletale"'
        return response
    return None


from portal.api import account_views, footage, views  # noqa: E402,F401
