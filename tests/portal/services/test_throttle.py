"""Sign-in throttling per account and per client, and the password policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import AuditEvent, Role, SignInThrottle, User
from portal.models.base import utcnow
from portal.services import passwords
from portal.services import users as users_service
from portal.services.errors import ValidationFailed
from portal.services.throttle import THRESHOLDS
from tests.conftest import TEST_PASSWORD
from tests.portal.conftest import sign_in

WRONG = "not the right passphrase"


@pytest.fixture(autouse=True)
def fast_password_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests count attempts; Argon2's deliberate half second each adds nothing."""

    def verify(password_hash: str | None, password: str) -> bool:
        return password_hash is not None and password == TEST_PASSWORD

    monkeypatch.setattr(users_service, "verify_password", verify)


def last_login_event() -> AuditEvent:
    db.session.expire_all()
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "auth.login").order_by(AuditEvent.id.desc())
    )
    assert event is not None
    return event


def fail(client: FlaskClient, email: str, times: int) -> None:
    for _ in range(times):
        assert sign_in(client, email, WRONG).status_code == 401


def unlock_now() -> None:
    """Let the current lock run out, as if its time had passed."""
    db.session.execute(update(SignInThrottle).values(locked_until=utcnow()))
    db.session.commit()


def test_throttle_locks_an_account_after_five_failures_without_checking_the_password(
    client: FlaskClient, users: dict[Role, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    fail(client, "officer@springfield.example", THRESHOLDS["account"])

    def must_not_run(*args: object) -> bool:
        raise AssertionError("the password was checked during a lock")

    monkeypatch.setattr(users_service, "verify_password", must_not_run)
    response = sign_in(client, "officer@springfield.example")  # the right password
    assert response.status_code == 429
    assert 28 <= int(response.headers["Retry-After"]) <= 30
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
    event = last_login_event()
    assert event.outcome == "denied" and event.details == {"reason": "throttled"}
    assert event.actor_id == users[Role.OFFICER].id


def test_throttle_lock_doubles_and_is_capped(client: FlaskClient, users: dict[Role, User]) -> None:
    email = "officer@springfield.example"
    fail(client, email, 5)
    unlock_now()
    fail(client, email, 5)
    assert 58 <= int(sign_in(client, email).headers["Retry-After"]) <= 60
    db.session.execute(update(SignInThrottle).values(lockouts=12, locked_until=utcnow()))
    db.session.commit()
    fail(client, email, 5)
    assert 890 <= int(sign_in(client, email).headers["Retry-After"]) <= 900


def test_throttle_counts_only_failures_within_the_window(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    email = "officer@springfield.example"
    fail(client, email, 4)
    db.session.execute(
        update(SignInThrottle).values(window_started_at=utcnow() - timedelta(minutes=16))
    )
    db.session.commit()
    fail(client, email, 4)
    assert sign_in(client, email).status_code == 302


def test_throttle_success_forgives_the_accounts_failures(
    app: Flask, client: FlaskClient, users: dict[Role, User]
) -> None:
    email = "officer@springfield.example"
    fail(client, email, 4)
    assert sign_in(app.test_client(), email).status_code == 302
    fail(client, email, 4)
    assert sign_in(app.test_client(), email).status_code == 302


def test_throttle_unknown_accounts_are_throttled_alike(client: FlaskClient) -> None:
    fail(client, "nobody@springfield.example", 5)
    assert sign_in(client, "nobody@springfield.example").status_code == 429


def test_throttle_per_client_stops_spraying_over_many_accounts(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    for n in range(THRESHOLDS["client"]):
        assert sign_in(client, f"guess{n}@springfield.example", WRONG).status_code == 401
    # A fresh account, the right password: the client itself is locked.
    assert sign_in(client, "officer@springfield.example").status_code == 429
    row = db.session.scalar(select(SignInThrottle).where(SignInThrottle.scope == "client"))
    assert row is not None and row.key == "127.0.0.1"


@pytest.mark.parametrize(
    "password",
    ["Password1234", "QWERTYUIOP123", "1qaz2wsx3edc", "  password1234  "],
)
def test_password_policy_refuses_common_passwords_case_insensitively(password: str) -> None:
    with pytest.raises(ValidationFailed, match="commonly used passwords"):
        passwords.check_password_policy(password)


@pytest.mark.parametrize(
    "password", ["aaaaaaaaaaaaaa", "abcabcabcabc", "123456789012", "zyxwvutsrqpo"]
)
def test_password_policy_refuses_repetitive_and_sequential(password: str) -> None:
    with pytest.raises(ValidationFailed, match="repeated or sequential"):
        passwords.check_password_policy(password)


def test_password_policy_refuses_the_accounts_own_name() -> None:
    with pytest.raises(ValidationFailed, match="e-mail address or name"):
        passwords.check_password_policy(
            "Jane.Doe2026!", user_inputs=["jane.doe@springfield.example"]
        )


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Tr0ub4dor&3 plus more", "ünïcödé pässwörd"]
)
def test_password_policy_has_no_composition_rules(password: str) -> None:
    passwords.check_password_policy(password)


def test_common_password_list_is_shipped_with_the_package() -> None:
    common = passwords.common_passwords()
    assert len(common) > 19_000
    assert "password1234" in common and all(p == p.lower() for p in common)


def test_cli_users_password_refuses_a_common_password(
    cli: FlaskCliRunner, users: dict[Role, User]
) -> None:
    result = cli.invoke(
        args=["users", "password", "officer@springfield.example"],
        input="Password1234\nPassword1234\n",
    )
    assert result.exit_code == 2 and "commonly used passwords" in result.output
