"""The detectives' side of tips: who sees which, the conversation, the contact."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import Agency, Appeal, AuditEvent, Role, Tip, User
from portal.services.cases import assign_detective
from portal.services.tips import TipInput, submit_tip
from tests.portal.conftest import csrf_token, listed_appeal


def make_appeal(agency: Agency, users: dict[Role, User], number: str = "Q-1") -> Appeal:
    appeal = listed_appeal(
        agency, users[Role.OFFICER], users[Role.SUPERVISOR], number=number, title="Wanted"
    )
    assign_detective(appeal.case, users[Role.DETECTIVE], actor=users[Role.OFFICER])
    db.session.commit()
    return appeal


def tip_for(appeal: Appeal | None, agency: Agency, **fields: object) -> Tip:
    data = {"body": "It is my neighbour."}
    data.update(fields)  # type: ignore[arg-type]
    tip, _ = submit_tip(TipInput(**data), agency=agency, appeal=appeal)  # type: ignore[arg-type]
    db.session.commit()
    return tip


def test_tip_list_and_detail_by_who_is_asking(
    app: Flask, agency: Agency, other_agency: Agency, users: dict[Role, User], make_user, signed_in
) -> None:  # type: ignore[no-untyped-def]
    appeal = make_appeal(agency, users)
    case_tip = tip_for(appeal, agency)
    general = tip_for(None, agency, body="Drugs sold at the park.")
    # Written out by hand: who may open which tip.
    outsider = make_user(Role.DETECTIVE)  # same agency, not on the case
    foreign_supervisor = make_user(Role.SUPERVISOR, agency_=other_agency)
    expected = {
        users[Role.DETECTIVE]: {case_tip.number: 200, general.number: 200},
        users[Role.SUPERVISOR]: {case_tip.number: 200, general.number: 200},
        outsider: {case_tip.number: 404, general.number: 200},
        foreign_supervisor: {case_tip.number: 404, general.number: 404},
    }
    tips = {case_tip.number: case_tip, general.number: general}
    for user, answers in expected.items():
        client = app.test_client()
        response = client.post(
            "/staff/login",
            data={
                "email": user.email,
                "password": "correct horse battery staple",
                "csrf_token": csrf_token(client, "/staff/login"),
            },
        )
        assert response.status_code == 302
        listing = client.get("/staff/tips").get_data(as_text=True)
        for number, status in answers.items():
            assert client.get(f"/staff/tips/{tips[number].public_id}").status_code == status, (
                user.email,
                number,
            )
            assert (number in listing) == (status == 200), (user.email, number)
    for role in (Role.OFFICER, Role.COORDINATOR, Role.ADMIN):
        client = signed_in(users[role])
        assert client.get("/staff/tips").status_code == 403
        assert client.get(f"/staff/tips/{case_tip.public_id}").status_code == 403
        client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/")})


def test_detective_writes_to_the_tipster_in_plain_text(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    tip = tip_for(make_appeal(agency, users), agency, body="<script>alert('x')</script>")
    client = signed_in(users[Role.DETECTIVE])
    path = f"/staff/tips/{tip.public_id}"
    page = client.get(path).get_data(as_text=True)
    assert "&lt;script&gt;" in page and "<script>alert" not in page
    response = client.post(
        f"{path}/messages",
        data={"csrf_token": csrf_token(client, path), "body": "Which street?\nAnd the house?"},
    )
    assert response.status_code == 302
    db.session.refresh(tip)
    assert [m.body for m in tip.messages] == ["Which street?\nAnd the house?"]
    assert tip.last_staff_message_at is not None
    refused = client.post(
        f"{path}/messages", data={"csrf_token": csrf_token(client, path), "body": "\x00"}
    )
    assert refused.status_code == 400
    assert len(tip.messages) == 1


def test_tipster_contact_is_shown_only_on_request_and_audited(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    tip = tip_for(make_appeal(agency, users), agency, phone="+1 555 010 0199")
    client = signed_in(users[Role.DETECTIVE])
    path = f"/staff/tips/{tip.public_id}"
    assert "555 010 0199" not in client.get(path).get_data(as_text=True)
    revealed = client.post(f"{path}/contact", data={"csrf_token": csrf_token(client, path)})
    assert revealed.status_code == 200
    assert "+1 555 010 0199" in revealed.get_data(as_text=True)
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "tip.contact_reveal")
    ).one()
    assert (event.actor_id, event.object_id) == (users[Role.DETECTIVE].id, tip.public_id)
    # Without the form's token nothing is revealed.
    assert client.post(f"{path}/contact").status_code == 400


def test_tip_list_pages_by_keyset(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    appeal = make_appeal(agency, users)
    numbers = [tip_for(appeal, agency, body=f"tip {i}").number for i in range(53)]
    client = signed_in(users[Role.DETECTIVE])
    first = client.get("/staff/tips").get_data(as_text=True)
    assert sum(n in first for n in numbers) == 50
    assert numbers[-1] in first and numbers[0] not in first  # newest first
    # The pager's link carries the last tip's public id, never an integer key.
    next_link = re.search(r'href="(/staff/tips\?after=[^"]+)"', first)
    assert next_link is not None
    older = client.get(html.unescape(next_link.group(1))).get_data(as_text=True)
    assert [n for n in numbers if n in older] == numbers[:3]
