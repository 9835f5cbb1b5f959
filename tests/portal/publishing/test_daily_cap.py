"""The daily cap at send time: a post whose network's cap was used up since it was
scheduled (a catch-up after an outage, posts made on the network itself) is not sent;
it waits until the cap frees, says why on the post page, and the coordinators are
told once. Nothing is sent partly or twice, and the waiting costs no attempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.limits import LIMITS, Limit, NetworkLimits
from portal.publishing.models import Channel, Delivery, Post
from portal.publishing.services import deliveries
from portal.publishing.services.deliveries import MAX_ATTEMPTS, publish_due
from portal.publishing.services.posts import create_post, schedule_post
from tests.portal.mail_server import Inbox, free_port, smtp_server
from tests.portal.publishing.conftest import (
    Clock,
    drain,
    fake_channel,
    stored_appeal,
)


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


@pytest.fixture
def one_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake network takes one post a day from an account."""
    monkeypatch.setitem(
        LIMITS,
        "fake",
        NetworkLimits(
            network="fake",
            via="web",
            label="Fake",
            counting="codepoints",
            media="required",
            daily_cap=Limit(1, "this test"),
        ),
    )


def _tick(app: Flask, clock: Clock, after: timedelta = timedelta(0)) -> None:
    clock.now += after
    publish_due(clock.now)
    drain(app)
    drain(app)  # the alert mails the first drain queued


def _delivery(post: Post, channel: Channel) -> Delivery:
    delivery = next(d for d in post.deliveries if d.channel_id == channel.id)
    db.session.refresh(delivery)
    return delivery


def _schedule(
    agency: Agency, users: dict[Role, User], channel: Channel, number: str, slot_offset: timedelta
) -> Post:
    coordinator = users[Role.COORDINATOR]
    appeal = stored_appeal(agency, users, number, f"Appeal {number}")
    from portal.publishing.services.deliveries import utcnow

    post = create_post(
        agency, coordinator, [appeal.public_id], utcnow() + slot_offset, [channel.public_id]
    )
    schedule_post(post, coordinator)
    db.session.commit()
    return post


def test_cap_used_up_since_scheduling_waits_until_it_frees_then_sends_once(
    app: Flask,
    signed_in: Callable[[User], FlaskClient],
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    one_a_day: None,
    inbox: Inbox,
) -> None:
    channel, world = fake_channel(new_york, "Fake")
    start = clock.now
    # 25 hours apart: each passes the cap when scheduled.
    early = _schedule(new_york, users, channel, "C-1", timedelta(hours=1))
    late = _schedule(new_york, users, channel, "C-2", timedelta(hours=26))
    # The scheduler was down for a day; the operator catches up at start + 25 h and the
    # early post goes out then, an hour before the late one's slot.
    _tick(app, clock, timedelta(hours=25))
    assert _delivery(early, channel).status == "sent"
    _tick(app, clock, timedelta(hours=1))
    waiting = _delivery(late, channel)
    assert waiting.status == "retrying"
    assert waiting.reason == (
        "The daily cap is reached: Fake takes 1 posts from one account in 24 hours and "
        "this account has 1 in the last 24 hours. Nothing was sent; it goes when the cap "
        "frees."
    )
    # It frees 24 hours after the early post went.
    assert waiting.next_attempt_at == start + timedelta(hours=25 + 24)
    assert world.publish_calls == 1 and len(world.landed()) == 1
    [mail] = inbox.messages
    assert mail["To"] == users[Role.COORDINATOR].email
    assert mail["Subject"] == "A post on Fake waits for fake's daily cap"
    assert "Fake takes 1 posts from one account in 24 hours" in mail.get_content()

    # The post page says why and until when (in the agency's zone: 13:00 UTC is 08:00).
    client = signed_in(users[Role.COORDINATOR])
    page = client.get(f"/staff/posts/{late.public_id}").get_data(as_text=True)
    assert "Waiting for the daily cap; next try" in page
    assert "08:00" in page

    _tick(app, clock, timedelta(hours=22, minutes=59))
    assert _delivery(late, channel).status == "retrying"
    assert world.publish_calls == 1 and len(inbox.messages) == 1  # told once
    _tick(app, clock, timedelta(minutes=1))
    sent = _delivery(late, channel)
    assert sent.status == "sent" and sent.sent_at == start + timedelta(hours=49)
    assert world.created == [_delivery(early, channel).public_id, sent.public_id]
    assert [p["text"] for p in world.landed()] == [
        "#TattletaleTuesday fake: Appeal C-1",
        "#TattletaleTuesday fake: Appeal C-2",
    ]


def test_network_says_cap_reached_keeps_the_upload_and_costs_no_attempt(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    inbox: Inbox,
) -> None:
    channel, world = fake_channel(new_york, "Fake")
    # Posts made in the network's app used the day: only the network knows, and says
    # so before every post call, for longer than the attempts a failure is given.
    world.faults.extend(["cap"] * (MAX_ATTEMPTS + 2))
    post = _schedule(new_york, users, channel, "C-1", timedelta(hours=1))
    _tick(app, clock, timedelta(hours=1))
    delivery = _delivery(post, channel)
    assert delivery.status == "retrying"
    assert delivery.reason.startswith(
        "The daily cap is reached: fake says the account posted 25 of 25 today."
    )
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=deliveries.CAP_RECHECK_S)
    for _ in range(MAX_ATTEMPTS + 1):
        _tick(app, clock, timedelta(seconds=deliveries.CAP_RECHECK_S))
        assert _delivery(post, channel).status == "retrying"
    _tick(app, clock, timedelta(seconds=deliveries.CAP_RECHECK_S))
    delivery = _delivery(post, channel)
    assert delivery.status == "sent"
    assert world.uploads == 1  # uploaded once, kept through every wait
    assert len(world.landed()) == 1
    assert [m["Subject"] for m in inbox.messages] == ["A post on Fake waits for fake's daily cap"]


def test_cap_that_never_frees_fails_for_a_person_after_the_longest_wait(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deliveries, "CAP_RECHECK_S", 24 * 3600.0)
    channel, world = fake_channel(new_york, "Fake")
    world.faults.extend(["cap"] * 10)
    post = _schedule(new_york, users, channel, "C-1", timedelta(hours=1))
    _tick(app, clock, timedelta(hours=1))
    for _ in range(3):
        assert _delivery(post, channel).status == "retrying"
        _tick(app, clock, timedelta(hours=24))
    delivery = _delivery(post, channel)
    assert delivery.status == "failed"
    assert delivery.reason.startswith("The daily cap is still reached after waiting 72 hours")
    assert world.landed() == []
    assert [m["Subject"] for m in inbox.messages] == [
        "A post on Fake waits for fake's daily cap",
        "A post could not go out on Fake",
    ]


def test_two_posts_of_one_channel_sent_at_once_do_not_both_take_the_last_post_of_the_day(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock, one_a_day: None
) -> None:
    from portal.publishing.services.deliveries import cap_reached

    channel, world = fake_channel(new_york, "Fake")
    first = _schedule(new_york, users, channel, "C-1", timedelta(hours=1))
    second = _schedule(new_york, users, channel, "C-2", timedelta(hours=30))
    a, b = _delivery(first, channel), _delivery(second, channel)
    a.status = b.status = "sending"  # both claimed at this moment
    db.session.commit()
    assert cap_reached(channel.id, "fake", a.id, clock.now) is None  # made first: goes
    capped = cap_reached(channel.id, "fake", b.id, clock.now)
    assert capped is not None
    assert capped[1] == clock.now + timedelta(seconds=deliveries.CAP_RECHECK_S)
