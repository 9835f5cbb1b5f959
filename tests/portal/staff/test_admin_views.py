"""The admin's audit log page: search, keyset pages, CSV export, all of it audited."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Outcome, Role, User
from portal.services.audit import record_event
from portal.staff.admin_views import PAGE_SIZE


@pytest.fixture
def admin_client(client: FlaskClient, users: dict[Role, User], signed_in) -> FlaskClient:  # type: ignore[no-untyped-def]
    return signed_in(users[Role.ADMIN])


def add(action: str, **kwargs) -> AuditEvent:  # type: ignore[no-untyped-def]
    """An event of the actor's agency (or of the one given)."""
    if "agency_id" not in kwargs:
        kwargs["agency_id"] = kwargs["actor"].agency_id
    event = record_event(action, **kwargs)
    db.session.commit()
    return event


def rows(html: str) -> int:
    return html.count('<tr class="outcome-')


def test_audit_search_filters_by_actor_action_object_and_outcome(
    admin_client: FlaskClient, users: dict[Role, User]
) -> None:
    add("case.create", actor=users[Role.OFFICER], object_type="case", object_id="case-123")
    add("auth.login", actor=users[Role.DETECTIVE], outcome=Outcome.DENIED)
    add("auth.logout", actor=users[Role.DETECTIVE])

    def search(**params: str) -> str:
        response = admin_client.get("/staff/admin/audit", query_string=params)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "case-123" in search(actor="Officer@")
    assert rows(search(actor="officer@springfield.example", action="case")) == 1
    page = search(action="auth", actor="detective")
    assert rows(page) == 2 and "auth.logout" in page
    assert rows(search(action="auth.login", outcome="denied")) == 1
    assert rows(search(actor="100%_match")) == 0  # LIKE wildcards are taken literally
    assert rows(search(object_id="case-123")) == 1
    view = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "audit.view").order_by(AuditEvent.id.desc())
    )
    assert view is not None and view.details == {"object_id": "case-123"}


def test_audit_search_by_date_range(admin_client: FlaskClient, agency) -> None:  # type: ignore[no-untyped-def]
    add("old.event", agency_id=agency.id)
    old = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "old.event"))
    assert old is not None
    today = datetime.now(UTC).date().isoformat()
    page = admin_client.get(f"/staff/admin/audit?since={today}&until={today}").get_data(
        as_text=True
    )
    assert "old.event" in page
    page = admin_client.get("/staff/admin/audit?until=2001-01-01").get_data(as_text=True)
    assert rows(page) == 0


@pytest.mark.parametrize(
    "query", ["since=yesterday", "since=2026-11-02&until=2026-11-01", "outcome=maybe", "before=-3"]
)
def test_audit_search_refuses_invalid_input(admin_client: FlaskClient, query: str) -> None:
    response = admin_client.get(f"/staff/admin/audit?{query}")
    assert response.status_code == 400
    assert 'class="error"' in response.get_data(as_text=True)


def test_audit_search_pages_by_keyset(admin_client: FlaskClient, agency) -> None:  # type: ignore[no-untyped-def]
    for i in range(PAGE_SIZE + 5):
        record_event("bulk.event", agency_id=agency.id, object_id=f"obj-{i:03d}")
    db.session.commit()
    first = admin_client.get("/staff/admin/audit?action=bulk").get_data(as_text=True)
    assert rows(first) == PAGE_SIZE and "obj-054" in first and "obj-004" not in first
    assert "Older events" in first
    next_link = first.split('<a href="')[-1].split('"')[0].replace("&amp;", "&")
    assert "action=bulk" in next_link and "before=" in next_link
    second = admin_client.get(next_link).get_data(as_text=True)
    assert rows(second) == 5 and "obj-004" in second and "Older events" not in second


def test_audit_export_streams_csv_and_is_audited(
    admin_client: FlaskClient, users: dict[Role, User]
) -> None:
    add("case.create", actor=users[Role.OFFICER], object_id="=HYPERLINK(evil)")
    # buffered: read the stream inside the request's context, as a server does.
    response = admin_client.get("/staff/admin/audit/export.csv?action=case", buffered=True)
    assert response.status_code == 200
    assert "Content-Length" not in response.headers  # streamed, not built in memory
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(table) == 1
    row = table[0]
    # A spreadsheet must see text, not a formula someone planted in the log.
    assert row["object_id"] == "'=HYPERLINK(evil)"
    assert row["actor_label"] == "officer@springfield.example" and len(row["entry_hash"]) == 64
    export = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.export"))
    assert export is not None and export.actor_id == users[Role.ADMIN].id
    assert export.details == {"action": "case"}


def test_audit_export_is_for_admins_only(
    client: FlaskClient, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    signed_in(users[Role.SUPERVISOR])
    assert client.get("/staff/admin/audit/export.csv").status_code == 403
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.export")) is None


def test_audit_log_of_another_agency_is_not_shown(
    admin_client: FlaskClient,
    other_agency,
    make_user,  # type: ignore[no-untyped-def]
) -> None:
    stranger = make_user(Role.OFFICER, agency_=other_agency, email="x@shelbyville.example")
    add("case.create", actor=stranger, object_id="shelbyville-secret")
    page = admin_client.get("/staff/admin/audit").get_data(as_text=True)
    assert "shelbyville-secret" not in page
    export = admin_client.get("/staff/admin/audit/export.csv", buffered=True).get_data(as_text=True)
    assert "shelbyville-secret" not in export


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=0001-01-01", "From (UTC) must be between the years 1900 and 2100."),
        ("until=9999-12-31", "To (UTC) must be between the years 1900 and 2100."),
        ("before=99999999999999999999", "Number must be between 1 and 9223372036854775807."),
        ("actor=%00", "Actor must not contain a NUL character."),
        ("action=auth%E2%80%AE", "Action must not contain U+202E RIGHT-TO-LEFT OVERRIDE."),
        ("object_id=a%0D%0Ab", "Object id must not contain a carriage return."),
    ],
)
@pytest.mark.parametrize("page", ["/staff/admin/audit", "/staff/admin/audit/export.csv"])
def test_audit_search_refuses_out_of_range_and_refused_text_with_a_message(
    admin_client: FlaskClient, page: str, query: str, message: str
) -> None:
    response = admin_client.get(f"{page}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert message in response.get_data(as_text=True)


def test_audit_search_refuses_a_query_string_that_is_not_utf8(admin_client: FlaskClient) -> None:
    # A lone surrogate (U+D800) sent raw as ED A0 80; WSGI passes it on as latin-1.
    raw = b"actor=\xed\xa0\x80".decode("latin-1")
    response = admin_client.get("/staff/admin/audit", environ_overrides={"QUERY_STRING": raw})
    assert response.status_code == 400
    assert "not valid text" in response.get_data(as_text=True)
