"""The mail jobs end to end: a tip sent through the public form mails the case's
detectives after the commit; a staff reply tells a tipster who asked; the digest
lists overdue tips; a mail server that is down or says 4xx delays the mail (the job
is queued again, the request answered at once), one that says 5xx fails it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from config import Settings
from portal.extensions import db
from portal.models import Agency, Appeal, Job, Role, Tip, User
from portal.models.base import utcnow
from portal.services.cases import assign_detective
from portal.services.notifications import digests_due
from portal.services.tips import TipInput, add_staff_message, submit_tip
from tests.portal.conftest import listed_appeal, run_jobs
from tests.portal.mail_server import Inbox, free_port, smtp_server

TIP_TEXT = "The man in the video is Snake, he drives a red car."


@pytest.fixture
def mail_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, mail_port: int) -> Settings:
    return replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=mail_port,
        smtp_security="none",
        smtp_timeout_s=5,
        mail_from="portal@springfield.example",
        public_url="https://tips.springfield.example",
    )


@pytest.fixture
def server(app: Flask, mail_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    from tests.portal import mail_server

    monkeypatch.setattr(mail_server, "free_port", lambda: mail_port)  # the settings' port
    with smtp_server() as (inbox, _):
        yield inbox


@pytest.fixture
def appeal(agency: Agency, users: dict[Role, User]) -> Appeal:
    appeal = listed_appeal(
        agency, users[Role.OFFICER], users[Role.SUPERVISOR], number="T-100", title="Who is he?"
    )
    assign_detective(appeal.case, users[Role.DETECTIVE], actor=users[Role.OFFICER])
    db.session.commit()
    return appeal


def send_tip(client: FlaskClient, appeal: Appeal, **fields: str):  # type: ignore[no-untyped-def]
    path = f"/appeals/{appeal.public_id}/tip"
    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    return client.post(path, data={"csrf_token": token.group(1), "body": TIP_TEXT, **fields})


def mail_jobs() -> list[Job]:
    return list(
        db.session.scalars(select(Job).where(Job.name.startswith("mail.")).order_by(Job.id))
    )


def test_new_tip_mails_the_case_detective_a_pointer_only(
    client: FlaskClient, server: Inbox, appeal: Appeal, users: dict[Role, User]
) -> None:
    response = send_tip(client, appeal, email="tipster@example.org", name="Ned")
    assert response.status_code == 200
    assert server.messages == []  # nothing is sent from the request
    assert run_jobs() == ["succeeded"]
    [message] = server.messages
    assert message["To"] == users[Role.DETECTIVE].email
    tip = db.session.scalar(select(Tip))
    assert tip is not None
    body = message.get_content()
    assert tip.number in body and appeal.case.number in body
    assert f"https://tips.springfield.example/staff/tips/{tip.public_id}" in body
    raw = message.as_string()
    for secret in ("Snake", "tipster@example.org", "Ned"):
        assert secret not in raw
    assert run_jobs() == []  # sent once


def test_new_tip_waits_while_the_mail_server_is_down_then_goes(
    client: FlaskClient, appeal: Appeal, mail_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert send_tip(client, appeal).status_code == 200  # the request does not wait
    assert run_jobs() == ["queued"]
    [job] = mail_jobs()
    assert job.transient_failures == 1 and "cannot be reached" in job.error
    assert job.attempts == 0  # an outage does not use up the job's attempts
    from tests.portal import mail_server

    monkeypatch.setattr(mail_server, "free_port", lambda: mail_port)
    with smtp_server() as (inbox, _):
        db.session.execute(update(Job).values(run_after=datetime.now(UTC)))
        db.session.commit()
        assert run_jobs() == ["succeeded"]
    assert len(inbox.messages) == 1


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("451 4.7.1 Greylisted, try again", "queued"), ("550 5.1.1 No such user", "failed")],
)
def test_new_tip_mail_refused_by_the_server(
    client: FlaskClient, server: Inbox, appeal: Appeal, reply: str, outcome: str
) -> None:
    server.refuse_rcpt = reply
    assert send_tip(client, appeal).status_code == 200
    assert run_jobs() == [outcome]
    [job] = mail_jobs()
    assert reply.split()[0] in job.error
    assert server.messages == []


def test_staff_reply_tells_the_tipster_who_asked_but_not_what(
    server: Inbox, appeal: Appeal, users: dict[Role, User]
) -> None:
    asked, _ = submit_tip(
        TipInput(body=TIP_TEXT, email="asked@example.org", notify_by_email=True),
        agency=appeal.agency,
        appeal=appeal,
    )
    silent, _ = submit_tip(
        TipInput(body=TIP_TEXT, email="silent@example.org"), agency=appeal.agency, appeal=appeal
    )
    db.session.commit()
    run_jobs()  # the new-tip mails
    server.messages.clear()
    detective = users[Role.DETECTIVE]
    add_staff_message(asked, detective, "Can you tell us where he parks the red car?")
    add_staff_message(silent, detective, "Thank you.")
    db.session.commit()
    assert run_jobs() == ["succeeded"]
    [notice] = server.messages
    assert notice["To"] == "asked@example.org"
    raw = notice.as_string()
    assert "https://tips.springfield.example/tips/check" in raw
    for secret in ("red car", asked.number, appeal.case.number, appeal.title):
        assert secret not in raw


def test_reply_notice_goes_in_the_language_the_tip_was_sent_in(
    server: Inbox, client: FlaskClient, appeal: Appeal, users: dict[Role, User]
) -> None:
    path = f"/appeals/{appeal.public_id}/tip?lang=es"
    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    sent = client.post(
        path,
        data={
            "csrf_token": token.group(1),
            "body": TIP_TEXT,
            "email": "vecina@example.org",
            "notify_by_email": "y",
        },
    )
    assert sent.status_code == 200
    tip = db.session.scalars(select(Tip)).one()
    run_jobs()  # the new-tip mail to the detective
    server.messages.clear()
    add_staff_message(tip, users[Role.DETECTIVE], "¿Dónde aparca el coche rojo?")
    db.session.commit()
    assert run_jobs() == ["succeeded"]
    [notice] = server.messages
    assert notice["To"] == "vecina@example.org"
    assert notice["Subject"] == "Tiene una respuesta esperándole"
    text = notice.get_content()  # decoded: the Spanish text goes out as UTF-8
    assert "Usted envió información a través de este sitio" in text
    assert "https://tips.springfield.example/tips/check?lang=es" in text


def test_digest_lists_overdue_tips_at_seven_local_time(
    server: Inbox, appeal: Appeal, users: dict[Role, User], agency: Agency
) -> None:
    now = utcnow()
    # A zone where it is seven o'clock now (Etc/GMT signs are inverted, POSIX style).
    offset = (7 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    agency.timezone = f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}" if offset else "UTC"
    agency.first_response_hours = 12
    late, answered, fresh, settled = (
        submit_tip(TipInput(body=f"tip {n}"), agency=agency, appeal=appeal)[0] for n in range(4)
    )
    for tip in (late, answered, settled):
        tip.created_at = now - timedelta(hours=13)
    fresh.created_at = now - timedelta(hours=11)
    answered.last_staff_message_at = now - timedelta(hours=2)
    settled.status = "no_value"
    db.session.commit()
    run_jobs()
    server.messages.clear()

    assert digests_due(now - timedelta(hours=1)) == 0  # six o'clock there: not yet
    assert digests_due(now) == 1  # the one detective
    assert digests_due(now) == 1  # the same row again, not a second mail
    db.session.commit()
    outcomes = run_jobs()
    assert outcomes == ["succeeded"]
    [digest] = server.messages
    body = digest.get_content()
    assert digest["To"] == users[Role.DETECTIVE].email
    assert late.number in body and "1 overdue tip" in digest["Subject"]
    for other in (answered, fresh, settled):
        assert other.number not in body
    assert "tip 0" not in body  # no tip text


def test_no_mail_server_configured_enqueues_nothing(
    app: Flask, appeal: Appeal, users: dict[Role, User]
) -> None:
    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], smtp_host=None)
    tip, _ = submit_tip(
        TipInput(body=TIP_TEXT, email="a@example.org", notify_by_email=True),
        agency=appeal.agency,
        appeal=appeal,
    )
    add_staff_message(tip, users[Role.DETECTIVE], "Hello")
    db.session.commit()
    assert mail_jobs() == [] and digests_due() == 0
