from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Case, Role, User
from tests.portal.conftest import csrf_token


def test_case_create_form_creates_and_assigns(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    response = client.post(
        "/staff/cases/new",
        data={
            "csrf_token": token,
            "number": "25-100",
            "title": "Garage break-in",
            "offense": "Burglary",
            "occurred_at": "2026-11-02T03:15",
            "location_address": "12 Elm St",
            "latitude": "40.1",
            "longitude": "-74.2",
            "detectives": [users[Role.DETECTIVE].public_id],
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    case = db.session.scalar(select(Case).where(Case.number == "25-100"))
    assert case is not None
    assert case.occurred_at is not None and case.occurred_at.hour == 3
    assert case.latitude == 40.1 and case.detectives == [users[Role.DETECTIVE]]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Garage break-in" in page


def test_case_create_form_shows_field_errors(
    client: FlaskClient,
    users: dict[Role, User],
    case: Case,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    missing = client.post("/staff/cases/new", data={"csrf_token": token, "title": "x"})
    assert missing.status_code == 400 and "This field is required." in missing.get_data(
        as_text=True
    )
    duplicate = client.post(
        "/staff/cases/new", data={"csrf_token": token, "number": case.number, "title": "x"}
    )
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)
    half = client.post(
        "/staff/cases/new",
        data={"csrf_token": token, "number": "9", "title": "x", "latitude": "10"},
    )
    assert "Give both latitude and longitude" in half.get_data(as_text=True)
    outside = client.post(
        "/staff/cases/new",
        data={"csrf_token": token, "number": "9", "title": "x", "detectives": ["nobody"]},
    )
    assert outside.status_code == 400, outside.get_data(as_text=True)
    assert "not a valid choice" in outside.get_data(as_text=True)


def test_case_edit_changes_status_and_audits(
    client: FlaskClient,
    users: dict[Role, User],
    case: Case,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.DETECTIVE])
    url = f"/staff/cases/{case.public_id}/edit"
    token = csrf_token(client, url)
    response = client.post(
        url,
        data={
            "csrf_token": token,
            "number": case.number,
            "title": "Robbery (solved)",
            "status": "solved",
            "internal_notes": "suspect named by tipster",
            "detectives": [users[Role.DETECTIVE].public_id],
        },
    )
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == "solved" and case.title == "Robbery (solved)"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "case.update"))
    assert event is not None
    assert event.details["internal_notes"] == "(changed)"  # notes are not copied into the log


def test_case_list_filters_and_searches(
    client: FlaskClient,
    users: dict[Role, User],
    case: Case,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.SUPERVISOR])
    assert case.number in client.get("/staff/cases?q=kwik").get_data(as_text=True)
    assert case.number not in client.get("/staff/cases?q=nothing").get_data(as_text=True)
    assert case.number not in client.get("/staff/cases?status=solved").get_data(as_text=True)
    assert client.get("/staff/cases?status=bogus").status_code == 400
    assert client.get("/staff/cases?after=bogus").status_code == 400
