"""The coordinators' alert mail: a channel that refused its credentials is reported
once per coordinator, by a job after the commit, and never with the credential."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask

from config import Settings
from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.services.posts import create_post, post_now
from tests.portal.mail_server import Inbox, free_port, smtp_server
from tests.portal.publishing.conftest import Clock, drain, fake_channel, stored_appeal


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
def inbox(app: Flask, mail_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    from tests.portal import mail_server

    monkeypatch.setattr(mail_server, "free_port", lambda: mail_port)
    with smtp_server() as (received, _):
        yield received


def test_refused_credentials_mail_the_coordinators_once(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    inbox: Inbox,
) -> None:
    channel, world = fake_channel(new_york, "Fake")
    channel.credentials = json.dumps({"token": "expired"})
    db.session.commit()
    appeal = stored_appeal(new_york, users, "P-1", "First")
    post = create_post(
        new_york, users[Role.COORDINATOR], [appeal.public_id], clock.now, [channel.public_id]
    )
    post_now(post, users[Role.COORDINATOR])
    db.session.commit()
    drain(app)
    drain(app)
    [message] = inbox.messages
    assert message["To"] == users[Role.COORDINATOR].email
    assert message["Subject"] == "fake refused the credentials of Fake"
    body = message.get_content()
    assert "An admin must connect the channel again" in body
    assert "expired" not in body  # the token itself is never in a mail
    assert world.publish_calls == 1
