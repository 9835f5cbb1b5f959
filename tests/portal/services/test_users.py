"""API tokens made by their user on the account page: scoped to roles the user holds,
shown once, listed with last use, revocable; and the API acting only with the
token's scopes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiToken, AuditEvent, Role, User
from portal.services.errors import ValidationFailed
from portal.services.users import create_api_token, set_roles
from tests.portal.conftest import csrf_token


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def last_event(action: str) -> AuditEvent:
    db.session.expire_all()
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    )
    assert event is not None, f"no {action} event"
    return event


@pytest.fixture
def chief(make_user) -> User:  # type: ignore[no-untyped-def]
    """An officer who is also an admin."""
    return make_user(Role.OFFICER, Role.ADMIN, email="chief@springfield.example")


def create_on_page(client: FlaskClient, **data: object):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/staff/account/tokens")
    return client.post("/staff/account/tokens", data={"csrf_token": token, **data})


def test_token_page_creates_a_scoped_token_shown_once(
    client: FlaskClient, chief: User, signed_in
) -> None:  # type: ignore[no-untyped-def]
    signed_in(chief)
    response = create_on_page(client, name="evidence sync", expires_in_days=30, scopes="officer")
    assert response.status_code == 200
    secret = re.search(r'<code class="secret">(tt_[A-Za-z0-9_-]+)</code>', response.text)
    assert secret is not None
    token = db.session.scalar(select(ApiToken))
    assert token is not None and token.scopes == ["officer"]
    assert token.token_hash != secret.group(1) and secret.group(1) not in token.token_hash
    assert token.expires_at is not None
    assert timedelta(days=29) < token.expires_at - token.created_at <= timedelta(days=30)
    event = last_event("token.create")
    assert event.details["scopes"] == ["officer"] and event.client_addr == "127.0.0.1"

    listing = client.get("/staff/account/tokens").get_data(as_text=True)
    assert "evidence sync" in listing and secret.group(1) not in listing
    assert client.get("/api/v1/me", headers=bearer(secret.group(1))).json["roles"] == ["officer"]
    listing = client.get("/staff/account/tokens").get_data(as_text=True)
    assert "never" not in listing.split("evidence sync")[1].split("</tr>")[0].split("<td>")[5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "expires_in_days": 367, "scopes": "officer"}, "between 1 and 366"),
        ({"name": "x", "expires_in_days": 0, "scopes": "officer"}, "between 1 and 366"),
        ({"name": "x", "expires_in_days": 10, "scopes": "supervisor"}, "is not a valid choice"),
        ({"name": "x", "expires_in_days": 10}, "Choose at least one role"),
    ],
)
def test_token_page_refuses_bad_input(
    client: FlaskClient, chief: User, signed_in, data: dict[str, object], message: str
) -> None:  # type: ignore[no-untyped-def]
    signed_in(chief)
    response = create_on_page(client, **data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(ApiToken)) is None


def test_token_scopes_must_be_roles_the_user_holds(chief: User) -> None:
    with pytest.raises(ValidationFailed, match="do not hold"):
        create_api_token(chief, scopes={Role.SUPERVISOR})


def test_token_used_beyond_its_scope_is_refused(client: FlaskClient, chief: User) -> None:
    _, officer_only = create_api_token(chief, scopes={Role.OFFICER})
    _, as_admin = create_api_token(chief, scopes={Role.ADMIN})
    db.session.commit()
    refused = client.get("/api/v1/audit/verify", headers=bearer(officer_only))
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    event = last_event("authz.denied")
    assert event.actor_id == chief.id
    assert event.details == {"permission": "audit.view", "acting_roles": ["officer"]}

    allowed = client.get("/api/v1/audit/verify", headers=bearer(as_admin))
    assert allowed.status_code == 200 and allowed.json["ok"] is True
    assert allowed.json["entries"] >= 1 and len(allowed.json["head"]) == 64
    assert last_event("audit.verify").details["ok"] is True


def test_token_loses_a_role_its_user_no_longer_holds(client: FlaskClient, chief: User) -> None:
    _, secret = create_api_token(chief, scopes={Role.ADMIN, Role.OFFICER})
    db.session.commit()
    assert client.get("/api/v1/audit/verify", headers=bearer(secret)).status_code == 200
    set_roles(chief, {Role.OFFICER})
    db.session.commit()
    assert client.get("/api/v1/audit/verify", headers=bearer(secret)).status_code == 403
    assert client.get("/api/v1/me", headers=bearer(secret)).json["roles"] == ["officer"]


def test_token_revoked_on_the_page_stops_working(
    client: FlaskClient, chief: User, signed_in
) -> None:  # type: ignore[no-untyped-def]
    token, secret = create_api_token(chief, name="laptop")
    db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    signed_in(chief)
    form = csrf_token(client, "/staff/account/tokens")
    response = client.post(
        f"/staff/account/tokens/{token.public_id}/revoke", data={"csrf_token": form}
    )
    assert response.status_code == 302
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 401
    assert last_event("token.revoke").object_id == token.public_id
    assert last_event("api.auth").details == {"reason": "revoked_token"}


def test_token_of_another_user_cannot_be_revoked(
    client: FlaskClient, chief: User, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    theirs, secret = create_api_token(users[Role.DETECTIVE])
    db.session.commit()
    signed_in(chief)
    form = csrf_token(client, "/staff/account/tokens")
    response = client.post(
        f"/staff/account/tokens/{theirs.public_id}/revoke", data={"csrf_token": form}
    )
    assert response.status_code == 404
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200


def test_api_lists_only_the_callers_tokens(
    client: FlaskClient, chief: User, users: dict[Role, User]
) -> None:
    create_api_token(users[Role.DETECTIVE], name="not yours")
    mine, secret = create_api_token(chief, name="mine", scopes={Role.OFFICER})
    db.session.commit()
    body = client.get("/api/v1/tokens", headers=bearer(secret)).json
    assert [t["name"] for t in body["tokens"]] == ["mine"]
    assert body["tokens"][0]["scopes"] == ["officer"] and body["tokens"][0]["state"] == "active"
    assert "token_hash" not in body["tokens"][0]


def test_openapi_documents_the_token_and_audit_operations(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert paths["/tokens"]["get"]["operationId"] == "listTokens"
    assert "403" in paths["/audit/verify"]["get"]["responses"]


def test_cli_users_token_takes_scopes(cli, client: FlaskClient, chief: User) -> None:  # type: ignore[no-untyped-def]
    result = cli.invoke(args=["users", "token", chief.email, "--scope", "officer"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    assert client.get("/api/v1/me", headers=bearer(secret)).json["roles"] == ["officer"]
    refused = cli.invoke(args=["users", "token", chief.email, "--scope", "supervisor"])
    assert refused.exit_code == 2 and "do not hold" in refused.output


def test_token_page_refuses_a_name_with_a_lone_surrogate_or_a_line_break(
    client: FlaskClient, chief: User, signed_in
) -> None:  # type: ignore[no-untyped-def]
    signed_in(chief)
    token = csrf_token(client, "/staff/account/tokens")
    data = {"csrf_token": token, "name": "sync\ud800", "expires_in_days": 30, "scopes": ["officer"]}
    response = client.post("/staff/account/tokens", json=data, headers={"X-CSRFToken": token})
    assert response.status_code == 400
    assert "Name must not contain an unpaired surrogate (U+D800)." in response.text
    response = create_on_page(client, name="sync\r\nX", expires_in_days=30, scopes="officer")
    assert response.status_code == 400
    assert "Name must not contain a carriage return." in response.text
    assert db.session.scalar(select(ApiToken)) is None


def test_token_service_refuses_a_name_the_form_refuses(chief: User) -> None:
    with pytest.raises(ValidationFailed) as caught:
        create_api_token(chief, name="a\u202eb")
    assert caught.value.field == "name"
    with pytest.raises(ValidationFailed):
        create_api_token(chief, name="x" * 101)
