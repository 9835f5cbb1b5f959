"""The JSON API under /api/v1/. Every operation needs a bearer token, except the
OpenAPI document. Session cookies are ignored here, which is why CSRF does not apply."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, g, request

from portal.extensions import db
from portal.http import ratelimit
from portal.http.edge import problem, staff_client_addr
from portal.models import Outcome
from portal.services.audit import ANONYMOUS_ACTOR, record_event
from portal.services.errors import AuthenticationFailed
from portal.services.users import authenticate_token

bp = Blueprint("api", __name__)

ANONYMOUS_ENDPOINTS = frozenset({"api.openapi"})
FLOOD_DETAIL = "Too many failed attempts to authenticate."


def _unauthorized() -> Response:
    response = problem(
        401, "A valid API token is required.", "Send 'Authorization: Bearer <token>'."
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="tattletale"'
    return response


def _audit_refusal(reason: str) -> None:
    record_event(
        "api.auth",
        agency_id=None,  # no token, no agency: the operators' to read
        actor_label=ANONYMOUS_ACTOR,
        object_type="route",
        object_id=request.path,
        outcome=Outcome.DENIED,
        client_addr=staff_client_addr(),
        details={"reason": reason},
    )
    db.session.commit()


@bp.before_request
def authenticate_bearer():
    g.api_user = None
    if request.endpoint in ANONYMOUS_ENDPOINTS:
        return None
    # A client that keeps failing is refused before its token is even looked up, and
    # its refusals leave one audit entry a minute, not one each (see ratelimit).
    if (wait := ratelimit.auth_failures_spent()) is not None:
        return ratelimit.refuse_flood(wait, _audit_refusal, FLOOD_DETAIL)
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    try:
        if scheme.lower() != "bearer" or not secret:
            raise AuthenticationFailed("missing_token")
        g.api_user = authenticate_token(secret)
        g.api_user_id = g.api_user.public_id
        db.session.commit()  # last_used_at
    except AuthenticationFailed as exc:
        if (wait := ratelimit.count_auth_failure()) is not None:
            return ratelimit.refuse_flood(wait, _audit_refusal, FLOOD_DETAIL)
        _audit_refusal(exc.reason)
        return _unauthorized()
    token_key = hashlib.sha256(secret.encode()).hexdigest()[:32]
    if (wait := ratelimit.count_token_request(token_key)) is not None:
        return ratelimit.too_many_requests(wait, "Too many requests with this token.")
    return None


from portal.api import account_views, footage, views  # noqa: E402,F401
