"""Staff sign-in, sign-out and sessions, with every refusal audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from portal.extensions import db
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
