"""Who a request is for, decided once where it enters, and small helpers shared by
the blueprints."""

from __future__ import annotations

import enum
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, jsonify, request

from portal.services import origin
from portal.services.text import first_refused_char


class Audience(enum.StrEnum):
    STAFF = "staff"
    API = "api"
    PUBLIC = "public"


# By path, not by blueprint: a request that matches no route (a 404, a probe for
# /wp-admin) has no blueprint, and must still be known to be public. The first
# matching prefix decides: the API's public operations (appeals, tips, receipts)
# are for tipsters, whose address is never seen, so they are public like the site.
PUBLIC_API_PREFIX = "/api/v1/public"
_PREFIXES = (
    ("/staff", Audience.STAFF),
    (PUBLIC_API_PREFIX, Audience.PUBLIC),
    ("/api", Audience.API),
)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def audience_for(path: str) -> Audience:
    for prefix, audience in _PREFIXES:
        if _under(path, prefix):
            return audience
    return Audience.PUBLIC


def request_audience() -> Audience:
    """The audience of the current request (see :func:`init_app`)."""
    audience = g.get("audience")
    return audience if audience is not None else audience_for(request.path)


def staff_client_addr() -> str | None:
    """The client address of a staff or API request; None for a public one.

    The one place below the WSGI server that reads the address: a tipster's address
    is not recorded anywhere.
    """
    if request_audience() is Audience.PUBLIC:
        return None
    return request.remote_addr


def is_api_request() -> bool:
    """Whether errors answer as problem documents: every request under /api, the
    public operations included (their audience is public, their format JSON)."""
    return _under(request.path, "/api")


def init_app(app: Flask) -> None:
    """Decide the audience first thing in every request (registered before every
    other hook), and hand services the address of staff and API clients only."""

    @app.before_request
    def decide_audience() -> None:
        g.audience = audience_for(request.path)
        g.origin_token = origin.bind_client_addr(staff_client_addr())

    @app.teardown_request
    def forget_client_addr(_error: BaseException | None) -> None:
        token = g.pop("origin_token", None)
        if token is not None:
            origin.unbind_client_addr(token)


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def safe_next_url(target: str | None, default: str) -> str:
    """Only same-site staff paths: an attacker's ``?next=https://evil`` or
    ``//evil`` link must not turn our login page into a redirector. Nor may it hold
    any character the text rules refuse (portal/services/text.py): CR/LF would split
    the ``Location`` header, a lone surrogate cannot be encoded into one at all."""
    if not target or first_refused_char(target) is not None:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/staff/") or "\\" in target:
        return default
    return target
