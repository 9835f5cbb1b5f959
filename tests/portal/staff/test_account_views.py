"""The account page, signing out everywhere, and role changes as audited events."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Role, StaffSession, User
from tests.portal.conftest import csrf_token, sign_in


def last_event(action: str) -> AuditEvent:
    db.session.expire_all()
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    )
    assert event is not None, f"no {action} event"
    return event


def test_account_page_lists_sessions_and_offers_sign_out_everywhere(
    client: FlaskClient, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    signed_in(users[Role.OFFICER])
    page = client.get("/staff/account")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Sign out everywhere" in body and "127.0.0.1" in body


def test_sign_out_everywhere_ends_every_session_of_the_user(
    app: Flask, client: FlaskClient, users: dict[Role, User]
) -> None:
    laptop = app.test_client()
    assert sign_in(laptop, "officer@springfield.example").status_code == 302
    assert sign_in(client, "officer@springfield.example").status_code == 302
    colleague = app.test_client()
    assert sign_in(colleague, "detective@springfield.example").status_code == 302

    token = csrf_token(client, "/staff/account")
    response = client.post("/staff/account/sign-out-everywhere", data={"csrf_token": token})
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert client.get("/staff/").status_code == 302
    assert laptop.get("/staff/").status_code == 302
    assert colleague.get("/staff/").status_code == 200
    event = last_event("auth.sign_out_everywhere")
    assert event.actor_id == users[Role.OFFICER].id and event.details == {"sessions": 2}


def test_sign_out_everywhere_needs_the_csrf_token(
    client: FlaskClient, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    signed_in(users[Role.OFFICER])
    assert client.post("/staff/account/sign-out-everywhere").status_code == 400
    assert client.get("/staff/").status_code == 200


def test_cli_users_sign_out_everywhere(
    cli: FlaskCliRunner, client: FlaskClient, users: dict[Role, User]
) -> None:
    sign_in(client, "officer@springfield.example")
    result = cli.invoke(args=["users", "sign-out-everywhere", "officer@springfield.example"])
    assert result.exit_code == 0 and "ended 1 session(s)" in result.output
    assert client.get("/staff/").status_code == 302
    assert last_event("auth.sign_out_everywhere").actor_label == "system"
    rows = db.session.scalars(select(StaffSession)).all()
    assert [r.ended_reason for r in rows] == ["signed_out_everywhere"]


def test_cli_users_roles_changes_roles_and_audits_it(
    cli: FlaskCliRunner, client: FlaskClient, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    signed_in(users[Role.OFFICER])
    assert client.get("/staff/admin/audit").status_code == 403
    result = cli.invoke(
        args=[
            "users",
            "roles",
            "officer@springfield.example",
            "--role",
            "admin",
            "--role",
            "officer",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "officer@springfield.example: admin, officer" in result.output
    event = last_event("user.roles_change")
    assert event.details == {"before": ["officer"], "after": ["admin", "officer"]}
    assert event.object_id == users[Role.OFFICER].public_id
    # Permissions are read on every request: the running session has them now.
    assert client.get("/staff/admin/audit").status_code == 200

    bad = cli.invoke(args=["users", "roles", "officer@springfield.example", "--role", "chief"])
    assert bad.exit_code == 2 and "Unknown role" in bad.output


def test_cjis_event_names_are_recorded(
    cli: FlaskCliRunner, client: FlaskClient, users: dict[Role, User], agency
) -> None:  # type: ignore[no-untyped-def]
    """The events CJIS asks for, each under its name, from one run through them."""
    email = "new@springfield.example"
    cli.invoke(args=["users", "create", email, "--role", "officer", "--generate-password"])
    cli.invoke(args=["users", "password", email, "--generate-password"])
    cli.invoke(args=["users", "roles", email, "--role", "detective"])
    cli.invoke(args=["users", "disable", email])
    cli.invoke(args=["users", "enable", email])
    cli.invoke(args=["users", "token", email])
    sign_in(client, "officer@springfield.example", "wrong password here")
    sign_in(client, "officer@springfield.example")
    client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/")})
    recorded = set(db.session.scalars(select(AuditEvent.action)))
    assert {
        "user.create",
        "user.password_change",
        "user.roles_change",
        "user.disable",
        "user.enable",
        "token.create",
        "auth.login",
        "auth.logout",
    } <= recorded
    outcomes = set(
        db.session.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "auth.login"))
    )
    assert outcomes == {"success", "denied"}
