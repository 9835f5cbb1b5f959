"""Request rate limits: sign-in, failed authentication, the API per token; memory
storage by default, Redis when configured (against the real Redis when
TATTLETALE_TEST_REDIS_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from config import Settings, load_settings
from portal import create_app
from portal.extensions import db
from portal.http import ratelimit
from portal.models import AuditEvent, Role, User
from portal.services.users import create_api_token
from tests.conftest import IsolatedClient

REDIS_URL = os.environ.get("TATTLETALE_TEST_REDIS_URL", "")
FLOODER = "198.51.100.66"
# The documented production defaults (README, config): failures per client per minute,
# sign-in POSTs per client per minute, requests per API token per minute.
AUTH_FAILURES_PER_MINUTE = 30
SIGN_INS_PER_MINUTE = 30
API_REQUESTS_PER_MINUTE = 600


def test_defaults_are_the_documented_ones() -> None:
    settings = load_settings({"TATTLETALE_ENV": "testing"})
    assert settings.rate_limit_auth_failures.startswith(f"{AUTH_FAILURES_PER_MINUTE} per minute")
    assert settings.rate_limit_sign_in.startswith(f"{SIGN_INS_PER_MINUTE} per minute")
    assert settings.rate_limit_api == f"{API_REQUESTS_PER_MINUTE} per minute"
    assert settings.redis_url is None


@pytest.fixture(params=["memory", "redis"])
def limited_app(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Flask]:
    """The app with its default limits, on memory or on the real Redis."""
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("TATTLETALE_TEST_REDIS_URL is not set")
        settings = replace(
            settings, redis_url=REDIS_URL, rate_limit_key_prefix=f"tt-test-{uuid.uuid4().hex}"
        )
    app = create_app(settings)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _audit_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _stored_keys(app: Flask) -> list[str]:
    storage = ratelimit.limiter.storage
    if app.config["TATTLETALE"].redis_url:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        prefix = app.config["RATELIMIT_KEY_PREFIX"]
        return [k.decode() for k in client.scan_iter(match=f"*{prefix}*")]
    return [str(k) for k in (*storage.storage.keys(), *storage.events.keys())]  # type: ignore[attr-defined]


def test_bad_token_flood_is_refused_and_writes_bounded_audit_rows(limited_app: Flask) -> None:
    client = limited_app.test_client()
    before = _audit_rows()
    statuses = [
        client.get(
            "/api/v1/me",
            headers={"Authorization": f"Bearer tt_not-a-token-{n}"},
            environ_base={"REMOTE_ADDR": FLOODER},
        ).status_code
        for n in range(500)
    ]
    assert statuses[:AUTH_FAILURES_PER_MINUTE] == [401] * AUTH_FAILURES_PER_MINUTE
    assert statuses[AUTH_FAILURES_PER_MINUTE:] == [429] * (500 - AUTH_FAILURES_PER_MINUTE)
    # One row per failure within the budget, then one for the whole breach.
    assert _audit_rows() - before == AUTH_FAILURES_PER_MINUTE + 1
    breach = db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
    assert breach is not None and breach.details == {"reason": "rate_limited"}
    refused = client.get("/api/v1/me", environ_base={"REMOTE_ADDR": FLOODER})
    assert refused.mimetype == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another client is not held up by the flood.
    other = client.get("/api/v1/me", environ_base={"REMOTE_ADDR": "198.51.100.67"})
    assert other.status_code == 401
    keys = _stored_keys(limited_app)
    assert keys, "nothing was counted in the configured storage"
    assert not any(FLOODER in key for key in keys)


def test_requests_without_a_session_are_limited(limited_app: Flask) -> None:
    client = limited_app.test_client()
    before = _audit_rows()
    statuses = [
        client.get("/staff/cases", environ_base={"REMOTE_ADDR": FLOODER}).status_code
        for _ in range(AUTH_FAILURES_PER_MINUTE + 20)
    ]
    assert statuses == [302] * AUTH_FAILURES_PER_MINUTE + [429] * 20
    assert _audit_rows() - before == AUTH_FAILURES_PER_MINUTE + 1


def test_sign_in_posts_are_limited_per_client(limited_app: Flask) -> None:
    client = limited_app.test_client()
    # Sent without a CSRF token: refused by the form, but each one is an attempt.
    statuses = [
        client.post(
            "/staff/login", data={"email": "x@example.org"}, environ_base={"REMOTE_ADDR": FLOODER}
        ).status_code
        for _ in range(SIGN_INS_PER_MINUTE + 5)
    ]
    assert statuses == [400] * SIGN_INS_PER_MINUTE + [429] * 5
    refused = client.post("/staff/login", environ_base={"REMOTE_ADDR": FLOODER})
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many requests" in refused.get_data(as_text=True)
    # Reading the page is not an attempt.
    assert client.get("/staff/login", environ_base={"REMOTE_ADDR": FLOODER}).status_code == 200


def test_api_requests_are_limited_per_token(
    client: FlaskClient, users: dict[Role, User], password_hash: str
) -> None:
    _, busy = create_api_token(users[Role.OFFICER])
    _, calm = create_api_token(users[Role.DETECTIVE])
    db.session.commit()
    statuses = [
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {busy}"}).status_code
        for _ in range(API_REQUESTS_PER_MINUTE + 3)
    ]
    assert statuses == [200] * API_REQUESTS_PER_MINUTE + [429] * 3
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {calm}"}).status_code == 200


def test_client_key_is_a_keyed_hash_that_rotates_daily(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def key(addr: str, day: datetime, of: Flask = app) -> str:
        class Frozen(datetime):
            @classmethod
            def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
                return day

        monkeypatch.setattr(ratelimit, "datetime", Frozen)
        with of.test_request_context("/", environ_base={"REMOTE_ADDR": addr}):
            return ratelimit.client_key()

    monday = datetime(2026, 11, 30, 8, tzinfo=UTC)
    tuesday = datetime(2026, 12, 1, 8, tzinfo=UTC)
    first = key("192.0.2.10", monday)
    assert "192.0.2.10" not in first and "192-0-2-10" not in first
    assert key("192.0.2.10", monday.replace(hour=23)) == first  # stable within the day
    assert key("192.0.2.11", monday) != first
    assert key("192.0.2.10", tuesday) != first  # rotated
    # Keyed: without the app's secret the hash cannot be recomputed from an address.
    other = create_app(replace(app.config["TATTLETALE"], secret_key="another " * 8))
    assert key("192.0.2.10", monday, other) != first


def test_a_limit_that_does_not_parse_stops_the_start() -> None:
    from config import ConfigError

    with pytest.raises(ConfigError, match="TATTLETALE_RATELIMIT_API"):
        load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_RATELIMIT_API": "lots"})
