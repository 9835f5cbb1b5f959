"""Request rate limits (Flask-Limiter): on sign-in, on requests that fail
authentication, and on the API per token.

Storage is Redis when ``TATTLETALE_REDIS_URL`` is set, so every web process counts
together; in memory otherwise (one process, the embedded mode).

Clients are keyed on a keyed hash of their address, never the address itself: the
key is an HMAC of the address under a key derived from the app's secret and the UTC
date, so it rotates daily. The limiter's store (a Redis that operators and backups
see) then holds nothing that names a visitor, cannot be reversed by hashing all
IPv4 addresses without the secret, and cannot link one day's visitor to the next's.

Failed authentication is *limited*, not aggregated: a client's failures are audited
one by one up to its budget (``TATTLETALE_RATELIMIT_AUTH_FAILURES``); beyond it the
client gets 429 before any token lookup, and the audit log gets one ``*.rate_limited``
entry per client per window instead of one row per request. Every audit row takes
the audit chain's global append lock, so an unauthenticated flood must not turn into
a flood of rows.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many

from portal.http.errors import render_error

# Both steps of signing in (password, then the second factor) share one count.
SIGN_IN_ENDPOINTS = frozenset({"staff.login", "staff.login_mfa"})
# One breach entry per client per minute at most.
_BREACH_RECORD = parse_many("1 per minute")


def client_key() -> str:
    """A keyed hash of the client's address that changes every UTC day."""
    day = datetime.now(UTC).date().isoformat()
    secret = current_app.config["SECRET_KEY"].encode()
    daily = hmac.new(secret, b"rate-limit-client-key|" + day.encode(), hashlib.sha256).digest()
    address = (request.remote_addr or "").encode()
    return "client-" + hmac.new(daily, address, hashlib.sha256).hexdigest()[:32]


limiter = Limiter(key_func=client_key)


def _limits(name: str) -> list[RateLimitItem]:
    return current_app.extensions["tattletale_rate_limits"][name]


def init_app(app: Flask) -> None:
    """After the edge's hooks: the limiter's own check runs before every view."""
    settings = app.config["TATTLETALE"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", settings.rate_limit_key_prefix)
    # Not Flask-Limiter's X-RateLimit-* headers: they put a Retry-After on every
    # answer of a limited route, and would overwrite the sign-in lockout's own.
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.extensions["tattletale_rate_limits"] = {
        "sign_in": parse_many(settings.rate_limit_sign_in),
        "auth_failures": parse_many(settings.rate_limit_auth_failures),
        "api_token": parse_many(settings.rate_limit_api),
        "tips": parse_many(settings.rate_limit_tips),
        "receipts": parse_many(settings.rate_limit_receipts),
        "unproven": parse_many(settings.rate_limit_unproven),
        "tip_uploads": parse_many(settings.rate_limit_tip_uploads),
    }
    limiter.init_app(app)

    @app.before_request
    def limit_sign_in() -> Response | None:
        # Here rather than as a decorator on the views: a decorated limit is checked
        # when the view runs, after the CSRF check, so a flood without a CSRF token
        # would never be counted.
        if request.method != "POST" or request.endpoint not in SIGN_IN_ENDPOINTS:
            return None
        wait = _hit(_limits("sign_in"), _identifiers("sign-in", client_key()))
        return None if wait is None else too_many_requests(wait)


def too_many_requests(retry_after: int, detail: str = "") -> Response:
    """429 with Retry-After, as a page or (for the API) a problem document."""
    response = current_app.make_response(render_error(429, detail=detail))
    response.headers["Retry-After"] = str(retry_after)
    return response


def _identifiers(kind: str, key: str) -> tuple[str, ...]:
    return (current_app.config["RATELIMIT_KEY_PREFIX"], kind, key)


def _retry_after(items: list[RateLimitItem], identifiers: tuple[str, ...]) -> int:
    """Seconds until every used-up limit of ``items`` has room again."""
    strategy = limiter.limiter
    resets = [
        strategy.get_window_stats(item, *identifiers).reset_time
        for item in items
        if not strategy.test(item, *identifiers)
    ]
    return max(1, math.ceil(max(resets, default=time.time()) - time.time()))


def _spent(items: list[RateLimitItem], identifiers: tuple[str, ...]) -> int | None:
    """Seconds to wait when any of ``items`` is used up, else None (nothing counted)."""
    strategy = limiter.limiter
    if all(strategy.test(item, *identifiers) for item in items):
        return None
    return _retry_after(items, identifiers)


def _hit(items: list[RateLimitItem], identifiers: tuple[str, ...]) -> int | None:
    """Count one request; seconds to wait when that was over the limit, else None."""
    strategy = limiter.limiter
    results = [strategy.hit(item, *identifiers) for item in items]
    return None if all(results) else _retry_after(items, identifiers)


def auth_failures_spent() -> int | None:
    """Checked before authenticating: has this client used up its failures?"""
    return _spent(_limits("auth_failures"), _identifiers("auth-failure", client_key()))


def count_auth_failure() -> int | None:
    """Count a failed authentication of this client; seconds to wait once over budget
    (then the failure is not audited on its own)."""
    return _hit(_limits("auth_failures"), _identifiers("auth-failure", client_key()))


def refuse_flood(retry_after: int, audit: Callable[[str], None], detail: str) -> Response:
    """The 429 for a client past its failure budget. Only the first refusal of a
    client in each minute is audited (``audit("rate_limited")``), standing for all."""
    if _hit(_BREACH_RECORD, _identifiers("breach-recorded", client_key())) is None:
        audit("rate_limited")
    return too_many_requests(retry_after, detail)


def count_token_request(token_id: str) -> int | None:
    """Count an API request of this token; seconds to wait when over its limit."""
    return _hit(_limits("api_token"), _identifiers("api-token", token_id))


def count_public(kind: str) -> int | None:
    """Count one public form submission (``tips``, ``receipts``, or ``unproven``: a
    tip or reply sent without a proof of work), or a file started by the tip form's
    uploader (``tip_uploads``), of this client;
    seconds to wait when over its limit. The form view answers with its own page, so
    what the visitor typed is shown again rather than lost."""
    return _hit(_limits(kind), _identifiers(f"public-{kind}", client_key()))
