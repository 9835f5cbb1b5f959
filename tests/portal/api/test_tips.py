"""The tips API: who may call each operation (a table written out by hand), the
queue's filters and cursor, triage with its version (409 when stale), messages."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import Agency, AuditEvent, Case, Role, Tip, TipAttachment, TipMessage, User
from portal.services.tips import TipInput, submit_tip
from portal.services.users import create_api_token


def new_tip(agency: Agency, case: Case | None, body: str = "The red van again.") -> Tip:
    tip, _ = submit_tip(TipInput(body=body), agency=agency)
    tip.case_id = case.id if case is not None else None
    db.session.commit()
    return tip


def bearer(user: User) -> dict[str, str]:
    _, secret = create_api_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_tip_operations_by_who_is_asking(
    app: Flask, agency: Agency, other_agency: Agency, users: dict[Role, User], case: Case, make_user
) -> None:  # type: ignore[no-untyped-def]
    tip = new_tip(agency, case)
    client = app.test_client()
    non_member = make_user(Role.DETECTIVE)
    foreign = make_user(Role.SUPERVISOR, agency_=other_agency)
    # Written out by hand: (list, get, patch, message) and whether the list holds the tip.
    expected = {
        "detective member": (users[Role.DETECTIVE], (200, 200, 200, 201), True),
        "detective non-member": (non_member, (200, 404, 404, 404), False),
        "supervisor": (users[Role.SUPERVISOR], (200, 200, 200, 201), True),
        "officer": (users[Role.OFFICER], (403, 403, 403, 403), False),
        "other agency": (foreign, (200, 404, 404, 404), False),
    }
    for label, (user, statuses, listed) in expected.items():
        headers = bearer(user)
        version = db.session.scalar(sa.select(Tip.version).where(Tip.id == tip.id))
        listing = client.get("/api/v1/tips", headers=headers)
        answers = (
            listing.status_code,
            client.get(f"/api/v1/tips/{tip.public_id}", headers=headers).status_code,
            client.patch(
                f"/api/v1/tips/{tip.public_id}",
                json={"version": version, "priority": "high" if label == "supervisor" else "low"},
                headers=headers,
            ).status_code,
            client.post(
                f"/api/v1/tips/{tip.public_id}/messages",
                json={"body": f"from {label}"},
                headers=headers,
            ).status_code,
        )
        assert answers == statuses, label
        if listing.status_code == 200:
            assert (tip.public_id in [t["id"] for t in listing.json["tips"]]) == listed, label
    assert db.session.scalars(sa.select(TipMessage.body).order_by(TipMessage.id)).all() == [
        "from detective member",
        "from supervisor",
    ]
    denied = db.session.scalars(
        sa.select(AuditEvent.actor_id).where(AuditEvent.action == "tip.access_denied")
    ).all()
    assert non_member.id in denied and foreign.id in denied


def test_patch_with_a_stale_version_is_409_and_changes_nothing(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    tip = new_tip(agency, case)
    client = app.test_client()
    path = f"/api/v1/tips/{tip.public_id}"
    headers = bearer(users[Role.DETECTIVE])
    done = client.patch(
        path,
        json={"version": 1, "status": "actionable", "tags": ["Van"], "note": "Checked <b>it</b>"},
        headers=headers,
    )
    assert done.status_code == 200
    body = done.json
    assert (body["status"], body["version"], body["tags"]) == ("actionable", 2, ["van"])
    assert body["notes"][0]["body"] == "Checked <b>it</b>"
    stale = client.patch(path, json={"version": 1, "status": "closed"}, headers=headers)
    assert stale.status_code == 409
    assert stale.mimetype == "application/problem+json"
    assert stale.json["field"] == "version" and "version 2" in stale.json["title"]
    assert db.session.scalar(sa.select(Tip.status).where(Tip.id == tip.id)) == "actionable"
    # Unknown fields, a missing version, a merge into itself: refused with the field named.
    assert client.patch(path, json={"status": "closed"}, headers=headers).json["field"] == "version"
    assert (
        client.patch(path, json={"version": 2, "colour": "red"}, headers=headers).status_code == 422
    )
    itself = client.patch(path, json={"version": 2, "duplicate_of": tip.number}, headers=headers)
    assert itself.status_code == 422 and itself.json["field"] == "duplicate_of"


def test_list_filters_and_cursor(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    tips = [
        new_tip(agency, case, f"tip number {i} red" if i % 2 else f"tip number {i}")
        for i in range(7)
    ]
    client = app.test_client()
    headers = bearer(users[Role.SUPERVISOR])
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 3, **({"after": cursor} if cursor else {})}
        page = client.get("/api/v1/tips", query_string=query, headers=headers).json
        seen += [t["id"] for t in page["tips"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [t.public_id for t in reversed(tips)]
    red = client.get(
        "/api/v1/tips", query_string={"q": "red", "sort": "oldest"}, headers=headers
    ).json
    assert [t["id"] for t in red["tips"]] == [tips[i].public_id for i in (1, 3, 5)]
    db.session.add(
        TipAttachment(agency_id=agency.id, tip_id=tips[2].id, status="ready", kind="image", size=9)
    )
    db.session.commit()
    with_files = client.get(
        "/api/v1/tips", query_string={"attachments": "true"}, headers=headers
    ).json
    assert [t["id"] for t in with_files["tips"]] == [tips[2].public_id]
    bad = client.get("/api/v1/tips", query_string={"status": "open"}, headers=headers)
    assert bad.status_code == 422 and bad.json["field"] == "status"
    assert (
        client.get("/api/v1/tips", query_string={"after": "nope"}, headers=headers).status_code
        == 422
    )


def test_message_text_is_kept_as_plain_text(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    tip = new_tip(agency, case)
    client = app.test_client()
    headers = bearer(users[Role.DETECTIVE])
    path = f"/api/v1/tips/{tip.public_id}/messages"
    sent = client.post(path, json={"body": "<script>alert(1)</script>\nline two"}, headers=headers)
    assert sent.status_code == 201 and sent.json["body"] == "<script>alert(1)</script>\nline two"
    for refused in ("nul \x00", "bell \x07", "   "):
        answer = client.post(path, json={"body": refused}, headers=headers)
        assert answer.status_code == 422 and answer.json["field"] == "body", refused
    detail = client.get(f"/api/v1/tips/{tip.public_id}", headers=headers).json
    assert [m["author"] for m in detail["messages"]] == ["staff"]
    assert detail["awaiting_since"] is None and detail["reply_waiting"] is False
