from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, AuditEvent, Case, Role, User
from portal.services.cases import create_case, update_case
from portal.services.errors import ValidationFailed
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
            "internal_notes": "suspect named by tipster",
            "detectives": [users[Role.DETECTIVE].public_id],
        },
    )
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == "open" and case.title == "Robbery (solved)"  # status: case_life
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


# -- one validation of text for every field (portal/services/text.py) -----------------

CASE_TEXT_FIELDS = (
    "number",
    "title",
    "offense",
    "location_address",
    "public_summary",
    "internal_notes",
)
# What every case field refuses, with the words the error names it by.
REFUSED = {
    "\x00": "a NUL character",
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE",
    "\ud800": "an unpaired surrogate (U+D800)",
}


def _case_form(token: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": token, "number": "25-200", "title": "Bike theft", **fields}


def test_case_form_refuses_crlf_in_the_case_number(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    response = client.post(
        "/staff/cases/new", data=_case_form(token, number="25-200\r\nX-Injected: yes")
    )
    assert response.status_code == 400
    assert "Case number must not contain a carriage return." in response.get_data(as_text=True)
    assert db.session.scalar(select(Case).where(Case.title == "Bike theft")) is None


def test_case_edit_form_refuses_crlf_in_the_case_number(
    client: FlaskClient,
    users: dict[Role, User],
    case: Case,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.DETECTIVE])
    url = f"/staff/cases/{case.public_id}/edit"
    token = csrf_token(client, url)
    response = client.post(url, data=_case_form(token, number="24-0001\nX"))
    assert response.status_code == 400
    assert "Case number must not contain a line break." in response.get_data(as_text=True)
    db.session.refresh(case)
    assert case.number == "24-0001"


def test_case_service_refuses_crlf_in_the_case_number(
    agency: Agency, users: dict[Role, User], case: Case
) -> None:
    with pytest.raises(ValidationFailed) as created:
        create_case(agency, number="25-1\r\n", title="x", created_by=users[Role.OFFICER])
    assert created.value.field == "number"
    with pytest.raises(ValidationFailed) as updated:
        update_case(case, users[Role.DETECTIVE], {"number": "24-0001\r\nSet-Cookie: a=b"})
    assert updated.value.field == "number"
    db.session.rollback()
    db.session.refresh(case)
    assert case.number == "24-0001"


@pytest.mark.parametrize("char", list(REFUSED))
@pytest.mark.parametrize("field", CASE_TEXT_FIELDS)
def test_case_form_refuses_nul_bidi_override_and_lone_surrogate_in_every_field(
    client: FlaskClient,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
    field: str,
    char: str,
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    data = _case_form(token, **{field: f"ok {char} ok"})
    if char == "\ud800":
        # A form body is UTF-8, which cannot carry a lone surrogate; a JSON body can
        # ("\ud800" escaped), and Flask-WTF reads JSON bodies as form data.
        response = client.post("/staff/cases/new", json=data, headers={"X-CSRFToken": token})
    else:
        response = client.post("/staff/cases/new", data=data)
    assert response.status_code == 400
    assert f"must not contain {REFUSED[char]}." in response.get_data(as_text=True)
    assert db.session.scalar(select(Case).where(Case.title.like("%ok%"))) is None
    assert db.session.scalar(select(Case).where(Case.number == "25-200")) is None


@pytest.mark.parametrize("char", list(REFUSED))
@pytest.mark.parametrize("field", CASE_TEXT_FIELDS)
def test_case_service_refuses_nul_bidi_override_and_lone_surrogate_in_every_field(
    agency: Agency, users: dict[Role, User], case: Case, field: str, char: str
) -> None:
    values = {"number": "25-300", "title": "Bike theft", field: f"ok {char} ok"}
    with pytest.raises(ValidationFailed) as created:
        create_case(agency, created_by=users[Role.OFFICER], **values)  # type: ignore[arg-type]
    assert created.value.field == field
    with pytest.raises(ValidationFailed) as updated:
        update_case(case, users[Role.DETECTIVE], {field: f"ok {char} ok"})
    assert updated.value.field == field


def test_case_form_accepts_multilingual_text_and_stores_it_nfc(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    response = client.post(
        "/staff/cases/new",
        data={
            "csrf_token": token,
            "number": "25-É1",
            # "Cafe" + COMBINING ACUTE ACCENT: NFD as macOS keyboards send it.
            "title": "Vol au Cafe\u0301 de la Gare",
            "offense": "盗窃 / 窃盗",
            "location_address": "شارع الملك فهد، الرياض",
            "public_summary": "Have you seen him? 👀\r\nCall us — 📞 any time.\r\n",
            "internal_notes": "Témoin: Zoë Ångström\tPhone: none",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    case = db.session.scalar(select(Case).where(Case.number == "25-É1"))
    assert case is not None
    assert case.title == "Vol au Caf\u00e9 de la Gare"
    assert case.offense == "盗窃 / 窃盗"
    assert case.location_address == "شارع الملك فهد، الرياض"
    assert case.public_summary == "Have you seen him? 👀\nCall us — 📞 any time."
    assert case.internal_notes == "Témoin: Zoë Ångström\tPhone: none"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Vol au Caf\u00e9 de la Gare" in page and "👀" in page


def test_case_form_refuses_text_longer_than_its_column(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    response = client.post("/staff/cases/new", data=_case_form(token, number="9" * 65))
    assert response.status_code == 400
    assert "Case number must be at most 64 characters (it has 65)." in response.get_data(
        as_text=True
    )


# -- dates within 1900..2100 ------------------------------------------------------------


@pytest.mark.parametrize(
    "occurred_at", ["0001-01-01T00:00", "1899-12-31T23:59", "2101-01-01T00:00", "9999-12-31T23:59"]
)
def test_case_form_refuses_dates_outside_1900_to_2100(
    client: FlaskClient,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
    occurred_at: str,
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    response = client.post("/staff/cases/new", data=_case_form(token, occurred_at=occurred_at))
    assert response.status_code == 400
    assert "When it happened (UTC) must be between the years 1900 and 2100." in response.get_data(
        as_text=True
    )
    assert db.session.scalar(select(Case).where(Case.number == "25-200")) is None


def test_case_form_accepts_the_ends_of_the_date_range(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/cases/new")
    for number, occurred_at in (("25-A", "1900-01-01T00:00"), ("25-B", "2100-12-31T23:59")):
        response = client.post(
            "/staff/cases/new", data=_case_form(token, number=number, occurred_at=occurred_at)
        )
        assert response.status_code == 302, response.get_data(as_text=True)


def test_case_service_refuses_dates_outside_1900_to_2100(
    agency: Agency, users: dict[Role, User], case: Case
) -> None:
    with pytest.raises(ValidationFailed) as created:
        create_case(
            agency,
            number="25-400",
            title="x",
            created_by=users[Role.OFFICER],
            occurred_at=datetime(1, 1, 1, tzinfo=UTC),
        )
    assert created.value.field == "occurred_at"
    with pytest.raises(ValidationFailed) as updated:
        update_case(
            case, users[Role.DETECTIVE], {"occurred_at": datetime(9999, 12, 31, tzinfo=UTC)}
        )
    assert updated.value.field == "occurred_at"


# -- the case list's filters --------------------------------------------------------------


def test_case_list_refuses_a_query_string_that_is_not_utf8(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.SUPERVISOR])
    # ED A0 80 is U+D800 (a lone surrogate) written as if it were UTF-8; a client that
    # sends it raw, not percent-encoded, reaches the server with these bytes. WSGI
    # hands the query string over as latin-1 text.
    raw = b"q=\xed\xa0\x80".decode("latin-1")
    response = client.get("/staff/cases", environ_overrides={"QUERY_STRING": raw})
    assert response.status_code == 400
    assert "not valid text" in response.get_data(as_text=True)


def test_case_list_refuses_control_and_format_characters_in_the_search(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.SUPERVISOR])
    for query in ("q=%00", "q=kwik%E2%80%AE", "after=x%0D%0Ay"):
        response = client.get(f"/staff/cases?{query}")
        assert response.status_code == 400, query
        assert "must not contain" in response.get_data(as_text=True)
