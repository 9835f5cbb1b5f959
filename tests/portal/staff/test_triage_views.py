"""The queue and triage pages: who may use each route (a table written out by hand),
a refused concurrent change, plain text everywhere, the poll and bulk changes."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, AuditEvent, Case, Role, Tip, TipAttachment, TipNote, User
from portal.services.tips import TipInput, add_tipster_message, submit_tip
from tests.portal.conftest import csrf_token, sign_in


def new_tip(agency: Agency, case: Case | None, body: str = "The red van again.") -> Tip:
    tip, _ = submit_tip(TipInput(body=body), agency=agency)
    tip.case_id = case.id if case is not None else None
    db.session.commit()
    return tip


def client_for(app: Flask, user: User) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    return client


def test_triage_routes_by_who_is_asking(
    app: Flask, agency: Agency, other_agency: Agency, users: dict[Role, User], case: Case, make_user
) -> None:  # type: ignore[no-untyped-def]
    tip = new_tip(agency, case)
    path = f"/staff/tips/{tip.public_id}"
    member = users[Role.DETECTIVE]
    non_member = make_user(Role.DETECTIVE)
    foreign = make_user(Role.SUPERVISOR, agency_=other_agency)
    # Written out by hand: (queue, poll, open tip, triage, note, bulk) for each user.
    # Bulk answers 302 for everyone allowed to triage; it changes only their own tips.
    expected = {
        "detective member": (member, 200, 200, 200, 302, 302, 302),
        "detective non-member": (non_member, 200, 200, 404, 404, 404, 302),
        "supervisor": (users[Role.SUPERVISOR], 200, 200, 200, 302, 302, 302),
        "officer": (users[Role.OFFICER], 403, 403, 403, 403, 403, 403),
        "other agency": (foreign, 200, 200, 404, 404, 404, 302),
    }
    for label, (user, queue, poll, detail, triage, note, bulk) in expected.items():
        client = client_for(app, user)
        token = csrf_token(client, "/staff/")
        answers = (
            client.get("/staff/tips").status_code,
            client.get(
                "/staff/tips/poll", query_string={"since": "2026-01-01T00:00:00"}
            ).status_code,
            client.get(path).status_code,
            client.post(
                f"{path}/triage",
                data={
                    "csrf_token": token,
                    "version": str(
                        db.session.scalar(sa.select(Tip.version).where(Tip.id == tip.id))
                    ),
                    "status": "reviewing",
                    "priority": "normal",
                    "assignee": "",
                    "tags": "",
                    "linked_case": "",
                    "duplicate_of": "",
                },
            ).status_code,
            client.post(
                f"{path}/notes", data={"csrf_token": token, "body": f"note by {label}"}
            ).status_code,
            client.post(
                "/staff/tips/bulk",
                data={
                    "csrf_token": token,
                    "tip": f"{tip.public_id}:1",
                    "priority": "high",
                    "status": "",
                    "assignee": "",
                },
            ).status_code,
        )
        assert answers == (queue, poll, detail, triage, note, bulk), label
    notes = db.session.scalars(sa.select(TipNote.body).order_by(TipNote.id)).all()
    assert notes == ["note by detective member", "note by supervisor"]
    # The non-member and the other agency's supervisor were refused, and that is recorded.
    denied = db.session.scalars(
        sa.select(AuditEvent.actor_id).where(AuditEvent.action == "tip.access_denied")
    ).all()
    assert non_member.id in denied and foreign.id in denied
    assert {
        e.agency_id
        for e in db.session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "tip.access_denied", AuditEvent.actor_id == foreign.id
            )
        )
    } == {other_agency.id}


def _triage_data(client: FlaskClient, path: str, **changes: str) -> dict[str, str]:
    page = client.get(path).get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page)
    assert version is not None
    data = {
        "csrf_token": csrf_token(client, path),
        "version": version.group(1),
        "status": "new",
        "priority": "normal",
        "assignee": "",
        "tags": "",
        "linked_case": "",
        "duplicate_of": "",
    }
    data.update(changes)
    return data


def test_second_detective_is_told_and_nothing_is_overwritten(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    tip = new_tip(agency, case)
    path = f"/staff/tips/{tip.public_id}"
    first = client_for(app, users[Role.DETECTIVE])
    second = client_for(app, users[Role.SUPERVISOR])
    # Both drew the page at version 1.
    first_form = _triage_data(first, path, status="actionable", tags="plate, van")
    second_form = _triage_data(second, path, status="no_value", priority="low")
    assert first.post(f"{path}/triage", data=first_form).status_code == 302
    refused = second.post(f"{path}/triage", data=second_form)
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "Someone else changed this tip" in page and "status actionable" in page
    # The form now shows the current values and version, ready to be changed again.
    assert 'name="version" type="hidden" value="2"' in page
    assert re.search(
        r'<option selected value="actionable">|<option value="actionable" selected>', page
    )
    db.session.expire_all()
    stored = db.session.get(Tip, tip.id)
    assert stored is not None and (stored.status, stored.priority, stored.version) == (
        "actionable",
        1,
        2,
    )


def test_tip_text_messages_and_notes_are_plain_text(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\u202eevil"
    tip = new_tip(agency, case, body="<b>bold?</b> <script>alert('tip')</script>")
    add_tipster_message(tip, "<iframe src=//evil></iframe> & more")
    db.session.commit()
    client = client_for(app, users[Role.DETECTIVE])
    path = f"/staff/tips/{tip.public_id}"
    assert (
        client.post(
            f"{path}/notes", data={"csrf_token": csrf_token(client, path), "body": "<i>x</i> ok"}
        ).status_code
        == 302
    )
    page = client.get(path).get_data(as_text=True)
    queue = client.get("/staff/tips").get_data(as_text=True)
    for html in (page, queue):
        assert "<script>alert" not in html and "<b>bold?</b>" not in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page
    assert "&lt;iframe src=//evil&gt;&lt;/iframe&gt; &amp; more" in page
    assert "&lt;i&gt;x&lt;/i&gt; ok" in page
    # Control and bidi-override characters are refused, not stored.
    refused = client.post(
        f"{path}/notes", data={"csrf_token": csrf_token(client, path), "body": hostile}
    )
    assert refused.status_code == 400
    bell = client.post(
        f"{path}/notes", data={"csrf_token": csrf_token(client, path), "body": "ring \x07"}
    )
    assert bell.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TipNote)) == 1


def test_queue_marks_unread_and_replies_and_polls_new_tips(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    tip = new_tip(agency, case)
    client = client_for(app, users[Role.DETECTIVE])
    queue = client.get("/staff/tips").get_data(as_text=True)
    assert "unread" in queue and 'src="/static/js/tip-queue.js"' in queue
    client.get(f"/staff/tips/{tip.public_id}")
    assert ">unread<" not in client.get("/staff/tips").get_data(as_text=True)
    add_tipster_message(tip, "I remembered the plate.")
    db.session.commit()
    queue = client.get("/staff/tips").get_data(as_text=True)
    assert ">unread<" in queue and "reply waiting" in queue
    since = tip.created_at.isoformat()
    fresh = new_tip(agency, case, "<script>x</script> a new one")
    polled = client.get("/staff/tips/poll", query_string={"since": since})
    assert polled.status_code == 200 and polled.mimetype == "application/json"
    rows = polled.get_json()["tips"]
    assert [row["number"] for row in rows] == [fresh.number]
    assert rows[0]["excerpt"] == "<script>x</script> a new one"  # the script shows it as text
    assert client.get("/staff/tips/poll", query_string={"since": "yesterday"}).status_code == 400


def test_bulk_change_from_the_queue(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    a, b = new_tip(agency, case, "one"), new_tip(agency, case, "two")
    client = client_for(app, users[Role.DETECTIVE])
    token = csrf_token(client, "/staff/tips")
    response = client.post(
        "/staff/tips/bulk",
        data={
            "csrf_token": token,
            "tip": [f"{a.public_id}:1", f"{b.public_id}:1"],
            "status": "reviewing",
            "priority": "",
            "assignee": users[Role.DETECTIVE].public_id,
        },
    )
    assert response.status_code == 302
    assert "Changed 2 tip(s)." in client.get(response.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    assert {(t.status, t.assignee_id, t.version) for t in db.session.scalars(sa.select(Tip))} == {
        ("reviewing", users[Role.DETECTIVE].id, 2)
    }
    again = client.post(
        "/staff/tips/bulk",
        data={
            "csrf_token": token,
            "tip": [f"{a.public_id}:1"],
            "status": "closed",
            "priority": "",
            "assignee": "",
        },
    )
    # Named as changed by someone else since.
    assert a.number in client.get(again.headers["Location"]).get_data(as_text=True)
    assert db.session.get(Tip, a.id).status == "reviewing"  # type: ignore[union-attr]
    assert (
        client.post(
            "/staff/tips/bulk", data={"tip": [f"{a.public_id}:2"], "status": "closed"}
        ).status_code
        == 400
    )


def test_queue_filters_from_the_url_and_bad_ones_are_explained(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    red, blue = new_tip(agency, case, "red car"), new_tip(agency, case, "blue car")
    client = client_for(app, users[Role.SUPERVISOR])
    page = client.get("/staff/tips", query_string={"q": "red", "case": case.public_id}).get_data(
        as_text=True
    )
    assert red.number in page and blue.number not in page
    db.session.add(
        TipAttachment(agency_id=agency.id, tip_id=blue.id, status="ready", kind="image", size=9)
    )
    db.session.commit()
    page = client.get("/staff/tips", query_string={"attachments": "1"}).get_data(as_text=True)
    assert blue.number in page and red.number not in page
    assert 'name="attachments" value="1" checked' in page
    bad = client.get("/staff/tips", query_string={"status": "<nope>"})
    assert bad.status_code == 422 and "Unknown status" in bad.get_data(as_text=True)
    assert "<nope>" not in bad.get_data(as_text=True)
