"""Two-step sign-in: TOTP enrolment, the second step, replay refusal, recovery codes,
the agency requirement and the operator's reset."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal import create_app
from portal.extensions import db
from portal.models import AuditEvent, MfaRecoveryCode, Role, StaffSession, User
from portal.services import mfa
from tests.conftest import IsolatedClient
from tests.portal.conftest import csrf_token, sign_in

# The server's clock during these tests: codes are made for steps around it, so no
# test depends on where in a 30-second step it happens to run.
NOW = datetime(2026, 11, 24, 9, 30, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mfa, "utcnow", lambda: NOW)


def code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(NOW.timestamp() + 30 * steps)


def last_event(action: str) -> AuditEvent:
    db.session.expire_all()
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    )
    assert event is not None, f"no {action} event"
    return event


def enrol(user: User) -> tuple[str, list[str]]:
    """Enrol through the service, confirming with the previous step's code."""
    secret = mfa.begin_enrolment(user, attempt=None)
    attempt = mfa.enrolment_attempt(secret)
    codes = mfa.confirm_enrolment(user, code(secret, -1), attempt=attempt, client_addr=None)
    db.session.commit()
    return secret, codes


def csrf_token_of(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def shown_secret(page: str) -> str:
    match = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page)
    assert match, "no secret on the page"
    return match.group(1)


def post_code(client: FlaskClient, value: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/staff/login/mfa")
    return client.post("/staff/login/mfa", data={"code": value, "csrf_token": token})


def test_mfa_enrolment_shows_a_qr_code_and_confirms_with_a_code(
    client: FlaskClient, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    officer = users[Role.OFFICER]
    signed_in(officer)
    page = client.get("/staff/account/mfa")
    body = page.get_data(as_text=True)
    token = csrf_token_of(body)
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in body
    assert "<script" not in body and "style=" not in body
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', body)
    assert secret is not None
    db.session.refresh(officer)
    assert officer.totp_secret == secret.group(1) and not officer.mfa_enabled

    wrong = client.post("/staff/account/mfa", data={"code": "000000", "csrf_token": token})
    assert wrong.status_code == 422
    assert last_event("mfa.enrol").outcome == "denied"
    assert secret.group(1) in wrong.get_data(as_text=True)  # same attempt, same secret

    done = client.post(
        "/staff/account/mfa", data={"code": code(secret.group(1)), "csrf_token": token}
    )
    assert done.status_code == 200
    shown = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>", done.text)
    assert len(shown) == mfa.RECOVERY_CODE_COUNT
    db.session.refresh(officer)
    assert officer.mfa_enabled
    assert last_event("mfa.enrol").outcome == "success"
    stored = db.session.scalars(select(MfaRecoveryCode.code_hash)).all()
    assert len(stored) == 10 and not set(shown) & set(stored)
    # Shown once: the page now only says how many are left.
    again = client.get("/staff/account/mfa").get_data(as_text=True)
    assert "10 recovery code(s) left" in again and shown[0] not in again


def test_mfa_sign_in_takes_two_steps_and_starts_no_session_before_the_second(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    first = sign_in(client, "detective@springfield.example")
    assert first.status_code == 302 and first.headers["Location"].endswith("/staff/login/mfa")
    assert db.session.scalar(select(StaffSession)) is None
    assert client.get("/staff/").status_code == 302
    assert last_event("auth.password").details == {"next": "mfa"}

    done = post_code(client, code(secret))
    assert done.status_code == 302 and done.headers["Location"].endswith("/staff/")
    assert client.get("/staff/").status_code == 200
    event = last_event("auth.login")
    assert event.outcome == "success" and event.details == {"mfa": "totp"}


def test_mfa_replayed_totp_code_is_refused(
    app: Flask, client: FlaskClient, users: dict[Role, User]
) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    seen = code(secret)
    sign_in(client, "detective@springfield.example")
    assert post_code(client, seen).status_code == 302

    attacker = app.test_client()
    sign_in(attacker, "detective@springfield.example")
    replay = post_code(attacker, seen)
    assert replay.status_code == 401
    assert "already used" in replay.get_data(as_text=True)
    event = last_event("auth.login")
    assert event.outcome == "denied" and event.details["reason"] == "replayed_code"
    # An older code within the window is refused too: only later steps count.
    assert post_code(attacker, code(secret, -1)).status_code == 401
    assert post_code(attacker, code(secret, 1)).status_code == 302


def test_mfa_code_outside_the_window_is_refused(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    sign_in(client, "detective@springfield.example")
    assert post_code(client, code(secret, 2)).status_code == 401
    assert last_event("auth.login").details["reason"] == "bad_code"


def test_mfa_recovery_code_works_once(
    app: Flask, client: FlaskClient, users: dict[Role, User]
) -> None:
    _, codes = enrol(users[Role.DETECTIVE])
    sign_in(client, "detective@springfield.example")
    assert post_code(client, codes[3].upper().replace("-", " ")).status_code == 302
    used = last_event("mfa.recovery_used")
    assert used.details == {"remaining": 9}
    assert last_event("auth.login").details == {"mfa": "recovery_code"}

    other = app.test_client()
    sign_in(other, "detective@springfield.example")
    assert post_code(other, codes[3]).status_code == 401
    assert post_code(other, codes[4]).status_code == 302


def test_mfa_wrong_codes_are_audited_and_throttled_like_passwords(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    sign_in(client, "detective@springfield.example")
    for _ in range(5):
        assert post_code(client, "123456").status_code == 401
    assert last_event("auth.login").details["reason"] == "bad_code"
    throttled = post_code(client, code(secret))
    assert throttled.status_code == 429
    assert 28 <= int(throttled.headers["Retry-After"]) <= 30  # the 30 s lock, less the time since
    assert "Too many failed sign-in attempts" in throttled.get_data(as_text=True)
    assert last_event("auth.login").details == {"reason": "throttled", "step": "mfa"}
    # The right password does not help either while the account is locked.
    assert sign_in(client, "detective@springfield.example").status_code == 429


def test_mfa_pending_step_expires(client: FlaskClient, users: dict[Role, User]) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    sign_in(client, "detective@springfield.example")
    with client.session_transaction() as session:
        session["mfa_pending"] = {**session["mfa_pending"], "until": 1}
    response = client.get("/staff/login/mfa")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_mfa_pending_step_is_void_after_a_password_change(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    from portal.services.users import set_password

    enrol(users[Role.DETECTIVE])
    sign_in(client, "detective@springfield.example")
    set_password(users[Role.DETECTIVE], "an entirely different passphrase")
    db.session.commit()
    assert client.get("/staff/login/mfa").status_code == 302


def test_mfa_required_by_agency_sends_user_to_enrolment_first(
    client: FlaskClient, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    users[Role.OFFICER].agency.require_mfa = True
    db.session.commit()
    response = sign_in(client, "officer@springfield.example")
    assert response.headers["Location"].endswith("/staff/account/mfa")
    redirected = client.get("/staff/")
    assert redirected.status_code == 302
    assert redirected.headers["Location"].endswith("/staff/account/mfa")
    token = csrf_token(client, "/staff/account/mfa")
    refused = client.post("/staff/account/tokens", data={"csrf_token": token, "name": "x"})
    assert refused.status_code == 403
    assert last_event("authz.denied").details == {"reason": "mfa_enrolment_required"}

    page = client.get("/staff/account/mfa").get_data(as_text=True)
    secret = shown_secret(page)
    client.post(
        "/staff/account/mfa", data={"code": code(secret), "csrf_token": csrf_token_of(page)}
    )
    assert client.get("/staff/").status_code == 200


def test_mfa_requirement_follows_the_setting_over_the_agency(
    settings, users: dict[Role, User]
) -> None:  # type: ignore[no-untyped-def]
    users[Role.OFFICER].agency.require_mfa = True
    db.session.commit()
    relaxed = create_app(replace(settings, require_mfa=False))
    relaxed.test_client_class = IsolatedClient
    with relaxed.app_context():
        client = relaxed.test_client()
        assert (
            sign_in(client, "officer@springfield.example").headers["Location"].endswith("/staff/")
        )
        assert client.get("/staff/").status_code == 200
        db.session.remove()


def test_mfa_can_be_turned_off_with_a_code_unless_required(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    sign_in(client, "detective@springfield.example")
    post_code(client, code(secret))
    token = csrf_token(client, "/staff/account/mfa")
    client.post("/staff/account/mfa/disable", data={"code": "111111", "csrf_token": token})
    db.session.refresh(users[Role.DETECTIVE])
    assert users[Role.DETECTIVE].mfa_enabled
    assert last_event("mfa.disable").outcome == "denied"

    client.post("/staff/account/mfa/disable", data={"code": code(secret, 1), "csrf_token": token})
    db.session.refresh(users[Role.DETECTIVE])
    assert not users[Role.DETECTIVE].mfa_enabled
    assert last_event("mfa.disable").details == {"reason": "self"}
    assert db.session.scalar(select(MfaRecoveryCode)) is None


def test_cli_users_reset_mfa_removes_the_factor_and_ends_sessions(
    cli: FlaskCliRunner, client: FlaskClient, users: dict[Role, User]
) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    sign_in(client, "detective@springfield.example")
    post_code(client, code(secret))
    result = cli.invoke(args=["users", "reset-mfa", "detective@springfield.example"])
    assert result.exit_code == 0, result.output
    db.session.refresh(users[Role.DETECTIVE])
    assert not users[Role.DETECTIVE].mfa_enabled and users[Role.DETECTIVE].totp_secret is None
    event = last_event("mfa.disable")
    assert event.actor_label == "system" and event.details == {"reason": "operator_reset"}
    assert client.get("/staff/").status_code == 302


def test_mfa_totp_secret_is_encrypted_in_the_database(users: dict[Role, User]) -> None:
    secret, _ = enrol(users[Role.DETECTIVE])
    raw = db.session.execute(
        sa.text("SELECT totp_secret FROM users WHERE id = :id"), {"id": users[Role.DETECTIVE].id}
    ).scalar_one()
    assert secret not in raw and raw.startswith("gAAAAA")


@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [
        ("production", None, True),
        ("testing", None, False),
        ("production", "--no-require-mfa", False),
        ("testing", "--require-mfa", True),
    ],
)
def test_cli_agencies_create_requires_mfa_in_production_by_default(
    app: Flask, cli: FlaskCliRunner, env: str, flag: str | None, expected: bool
) -> None:
    from portal.models import Agency

    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], env=env)
    args = ["agencies", "create", "Ogdenville PD", "--slug", "ogdenville"]
    result = cli.invoke(args=args + ([flag] if flag else []))
    assert result.exit_code == 0, result.output
    agency = db.session.scalar(select(Agency).where(Agency.slug == "ogdenville"))
    assert agency is not None and agency.require_mfa is expected


@pytest.mark.parametrize("value", ["123\ud800456", "123456\r\n"])
def test_mfa_code_with_a_lone_surrogate_or_line_break_is_a_bad_request(
    client: FlaskClient, users: dict[Role, User], signed_in, value: str
) -> None:  # type: ignore[no-untyped-def]
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/account/mfa")
    data = {"code": value, "csrf_token": token}
    if "\ud800" in value:
        # Only a JSON body can carry a lone surrogate; Flask-WTF reads it as form data.
        response = client.post("/staff/account/mfa", json=data, headers={"X-CSRFToken": token})
    else:
        response = client.post("/staff/account/mfa", data=data)
    assert response.status_code == 400
    assert "Code must not contain" in response.get_data(as_text=True)
    db.session.refresh(users[Role.OFFICER])
    assert not users[Role.OFFICER].mfa_enabled


def test_mfa_enrolment_secret_is_new_for_every_attempt_and_other_sessions_end(
    app: Flask, users: dict[Role, User]
) -> None:
    officer = users[Role.OFFICER]
    mine, stolen = app.test_client(), app.test_client()
    for client in (mine, stolen):
        assert sign_in(client, officer.email).status_code == 302
    my_page = mine.get("/staff/account/mfa").get_data(as_text=True)
    # Another session of the account (one that was taken, say) opens the page too:
    # it must not be shown the secret the owner is about to enrol with.
    their_page = stolen.get("/staff/account/mfa").get_data(as_text=True)
    assert shown_secret(their_page) != shown_secret(my_page)
    # The owner's attempt was overtaken: its code no longer counts, and a new secret
    # is shown to the owner alone.
    late = mine.post(
        "/staff/account/mfa",
        data={"code": code(shown_secret(my_page)), "csrf_token": csrf_token_of(my_page)},
    )
    assert late.status_code == 409
    db.session.refresh(officer)
    assert not officer.mfa_enabled
    retry_page = late.get_data(as_text=True)
    retry_secret = shown_secret(retry_page)
    assert retry_secret not in (shown_secret(my_page), shown_secret(their_page))
    done = mine.post(
        "/staff/account/mfa",
        data={"code": code(retry_secret), "csrf_token": csrf_token_of(retry_page)},
    )
    assert done.status_code == 200
    db.session.refresh(officer)
    assert officer.mfa_enabled and officer.totp_secret == retry_secret
    # Switching the factor on ends every other session; this one stays.
    assert stolen.get("/staff/").status_code == 302
    assert mine.get("/staff/").status_code == 200
    live = db.session.scalars(
        select(StaffSession).where(
            StaffSession.user_id == officer.id, StaffSession.ended_at.is_(None)
        )
    ).all()
    assert len(live) == 1
    assert last_event("mfa.enrol").details == {"other_sessions_ended": 1}
