"""Staff sign-in, sign-out and sessions, with every refusal audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from portal.extensions import db
from portal.http.edge import safe_next_url
from portal.models import AuditEvent, Role, StaffSession, User
from portal.models.base import utcnow
from portal.services.users import disable_user, set_password
from tests.conftest import TEST_PASSWORD
from tests.portal.conftest import csrf_token, sign_in


def last_event(action: str) -> AuditEvent:
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    )
    assert event is not None, f"no {action} event"
    return event


def test_login_page_renders_with_csrf_field(client: FlaskClient) -> None:
    response = client.get("/staff/login")
    assert response.status_code == 200
    assert "Staff sign-in" in response.get_data(as_text=True)
    assert csrf_token(client, "/staff/login")


def test_login_succeeds_and_is_audited(client: FlaskClient, users: dict[Role, User]) -> None:
    response = sign_in(client, "officer@springfield.example")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/staff/")
    assert client.get("/staff/").status_code == 200
    event = last_event("auth.login")
    assert event.outcome == "success"
    assert event.actor_id == users[Role.OFFICER].id
    assert event.client_addr == "127.0.0.1"


def test_login_email_is_case_insensitive(client: FlaskClient, users: dict[Role, User]) -> None:
    assert sign_in(client, "Officer@Springfield.Example").status_code == 302


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("officer@springfield.example", "wrong password here", "bad_password"),
        ("nobody@springfield.example", TEST_PASSWORD, "unknown_user"),
    ],
)
def test_login_failure_is_refused_with_one_message_and_audited(
    client: FlaskClient, users: dict[Role, User], email: str, password: str, reason: str
) -> None:
    response = sign_in(client, email, password)
    assert response.status_code == 401
    assert "The e-mail address or password is not correct." in response.get_data(as_text=True)
    event = last_event("auth.login")
    assert event.outcome == "denied"
    assert event.details == {"reason": reason}
    assert event.actor_label == email
    assert client.get("/staff/").status_code == 302


def test_login_disabled_account_is_refused(client: FlaskClient, users: dict[Role, User]) -> None:
    disable_user(users[Role.OFFICER])
    db.session.commit()
    response = sign_in(client, "officer@springfield.example")
    assert response.status_code == 401
    assert last_event("auth.login").details == {"reason": "disabled"}


def test_login_without_csrf_token_is_refused_and_audited(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    response = client.post(
        "/staff/login",
        data={"email": "officer@springfield.example", "password": TEST_PASSWORD},
    )
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert last_event("csrf.rejected").outcome == "denied"
    assert db.session.scalar(select(StaffSession)) is None


def test_login_form_with_missing_fields_is_a_bad_request(client: FlaskClient) -> None:
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login", data={"csrf_token": token, "email": "not-an-email"})
    assert response.status_code == 400
    assert "Invalid email address" in response.get_data(as_text=True)


def test_login_next_url_is_followed_only_within_staff(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    token = csrf_token(client, "/staff/login")
    data = {"email": "officer@springfield.example", "password": TEST_PASSWORD, "csrf_token": token}
    response = client.post("/staff/login", data={**data, "next": "https://evil.example/"})
    assert response.headers["Location"] == "/staff/"


def test_staff_page_without_login_redirects_and_is_audited(client: FlaskClient) -> None:
    response = client.get("/staff/admin/users")
    assert response.status_code == 302
    assert "/staff/login?next=/staff/admin/users" in response.headers["Location"]
    event = last_event("auth.required")
    assert event.outcome == "denied" and event.object_id == "/staff/admin/users"


def test_staff_post_without_login_is_unauthorized(client: FlaskClient) -> None:
    token = csrf_token(client, "/staff/login")
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 401
    assert last_event("auth.required").details == {"method": "POST"}


def test_logout_ends_the_session_so_a_copied_cookie_stops_working(
    app: Flask, client: FlaskClient, users: dict[Role, User]
) -> None:
    sign_in(client, "officer@springfield.example")
    stolen = client.get_cookie("session")
    assert stolen is not None
    token = csrf_token(client, "/staff/")
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/staff/").status_code == 302

    thief = app.test_client()
    thief.set_cookie("session", stolen.value)
    assert thief.get("/staff/").status_code == 302
    assert last_event("auth.logout").actor_id == users[Role.OFFICER].id


def test_session_ends_after_idle_timeout(client: FlaskClient, users: dict[Role, User]) -> None:
    sign_in(client, "officer@springfield.example")
    db.session.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    db.session.commit()
    assert client.get("/staff/").status_code == 302
    row = db.session.scalar(select(StaffSession))
    assert row is not None and row.ended_reason == "idle"


def test_session_ends_after_its_lifetime(client: FlaskClient, users: dict[Role, User]) -> None:
    sign_in(client, "officer@springfield.example")
    db.session.execute(update(StaffSession).values(created_at=utcnow() - timedelta(hours=13)))
    db.session.commit()
    assert client.get("/staff/").status_code == 302


def test_password_change_ends_every_session(client: FlaskClient, users: dict[Role, User]) -> None:
    sign_in(client, "officer@springfield.example")
    set_password(users[Role.OFFICER], "a brand new passphrase")
    db.session.commit()
    assert client.get("/staff/").status_code == 302


def test_disabling_ends_every_session(client: FlaskClient, users: dict[Role, User]) -> None:
    sign_in(client, "officer@springfield.example")
    disable_user(users[Role.OFFICER])
    db.session.commit()
    assert client.get("/staff/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(
    client: FlaskClient, users: dict[Role, User]
) -> None:
    response = sign_in(client, "officer@springfield.example")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    "target",
    [
        "/staff/cases\r\nSet-Cookie: session=planted",
        "/staff/cases\nX",
        "/staff/\x00cases",
        "/staff/\u202ecases",
        "/staff/\ud800",
    ],
)
def test_login_next_url_with_a_control_character_goes_to_the_start_page(
    client: FlaskClient, users: dict[Role, User], target: str
) -> None:
    token = csrf_token(client, "/staff/login")
    data = {
        "email": "officer@springfield.example",
        "password": TEST_PASSWORD,
        "csrf_token": token,
        "next": target,
    }
    if "\ud800" in target:
        # Only a JSON body can carry a lone surrogate; Flask-WTF reads it as form data.
        response = client.post("/staff/login", json=data, headers={"X-CSRFToken": token})
    else:
        response = client.post("/staff/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/staff/"
    assert "planted" not in response.headers.get("Set-Cookie", "")


def test_login_page_does_not_carry_an_unsafe_next_url(client: FlaskClient) -> None:
    page = client.get("/staff/login?next=/staff/cases%0D%0AX").get_data(as_text=True)
    assert 'name="next" type="hidden" value=""' in page
    page = client.get("/staff/login?next=/staff/cases").get_data(as_text=True)
    assert 'name="next" type="hidden" value="/staff/cases"' in page


def test_safe_next_url_refuses_every_refused_character() -> None:
    for ch in ("\r", "\n", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u202e", "\ud800", "\ue000"):
        assert safe_next_url(f"/staff/cases{ch}", "/staff/") == "/staff/", repr(ch)
    assert safe_next_url("/staff/cases?q=caf%C3%A9", "/staff/") == "/staff/cases?q=caf%C3%A9"
    assert safe_next_url("/staff/cases/é", "/staff/") == "/staff/cases/é"


@pytest.mark.parametrize("field", ["email", "password"])
def test_login_with_a_lone_surrogate_is_a_bad_request_not_an_error(
    client: FlaskClient, users: dict[Role, User], field: str
) -> None:
    token = csrf_token(client, "/staff/login")
    data = {"email": "officer@springfield.example", "password": TEST_PASSWORD, "csrf_token": token}
    data[field] = data[field] + "\ud800"
    response = client.post("/staff/login", json=data, headers={"X-CSRFToken": token})
    assert response.status_code == 400
    label = {"email": "E-mail", "password": "Password"}[field]
    assert f"{label} must not contain an unpaired surrogate (U+D800)." in response.get_data(
        as_text=True
    )


def test_login_password_is_taken_as_typed(client: FlaskClient, make_user) -> None:  # type: ignore[no-untyped-def]
    """Spaces, a decomposed accent and a zero-width joiner are part of the secret: the
    same characters sign in, the stripped or normalised ones do not."""
    user = make_user(Role.OFFICER, email="padded@springfield.example")
    password = "  Cafe\u0301 \U0001f468\u200d\U0001f469 horse  "
    set_password(user, password)
    db.session.commit()
    assert sign_in(client, user.email, password).status_code == 302
    other = client.application.test_client()
    assert sign_in(other, user.email, password.strip()).status_code == 401
    assert sign_in(other, user.email, password.replace("e\u0301", "\u00e9")).status_code == 401
