"""Replies under a post sent to X become tips: a real X channel row pointing at X's
loopback fake (fakes/x.py), the post published through the engine, a viral post's
replies filed each once within one polling interval, and a detective's hide and answer
reaching X."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.channels.x import X
from portal.publishing.models import Channel, Delivery, Post, PublicReply
from portal.publishing.services.replies import request_action, schedule_fetches
from portal.services.errors import ValidationFailed
from tests.portal.publishing.conftest import Clock, comment_tips, drain, sent_through, stored_appeal
from tests.portal.publishing.fakes import Clock as NetworkClock
from tests.portal.publishing.fakes.x import TOKEN, FakeX

POLL = timedelta(seconds=300)  # TATTLETALE_REPLIES_POLL_SECONDS' default
VIRAL = 2000


@pytest.fixture
def x_fake(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeX]:
    """X on loopback, on the engine's time; the adapter waits for nothing real."""
    network_clock = NetworkClock(start=clock.now.timestamp())
    monkeypatch.setattr(X, "now", staticmethod(network_clock.now))
    monkeypatch.setattr(X, "sleep", staticmethod(network_clock.sleep))
    # Basic access's recent search limit with a user token: 60 per 15 minutes.
    with FakeX(clock=network_clock, search_limit=60).running() as server:
        yield server


@pytest.fixture
def sent(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    x_fake: FakeX,
) -> tuple[Post, Delivery]:
    appeal = stored_appeal(new_york, users, "X-1", "Who took the bike?")
    channel = Channel(
        agency_id=new_york.id,
        network="x",
        name="Springfield PD on X",
        settings={"api_url": x_fake.url, "timeout_s": 1.5},
        credentials=json.dumps({"access_token": TOKEN}),
    )
    post, delivery = sent_through(
        app,
        new_york,
        coordinator,
        clock,
        appeal,
        channel,
        at_slot=lambda slot: setattr(x_fake.clock, "t", slot.timestamp()),
    )
    assert delivery.remote_id in x_fake.posts
    return post, delivery


def _poll(app: Flask, clock: Clock, x_fake: FakeX, after: timedelta = POLL) -> None:
    clock.now += after
    x_fake.clock.t += after.total_seconds()
    schedule_fetches(clock.now)
    drain(app, timeout_s=120)


def test_a_viral_x_posts_replies_are_filed_once_within_one_interval_and_hidden_on_request(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, x_fake: FakeX, users: dict[Role, User]
) -> None:
    post, delivery = sent
    ids = [
        x_fake.add_reply(delivery.remote_id, f"I saw the bike at the station, {i}", f"witness{i}")
        for i in range(VIRAL)
    ]

    _poll(app, clock, x_fake, timedelta(0))  # the schedule's tick, nothing waited for

    tips = comment_tips()
    assert len(tips) == VIRAL
    assert db.session.scalar(select(func.count(func.distinct(PublicReply.remote_id)))) == VIRAL
    assert {t.public_reply.remote_id for t in tips if t.public_reply} == set(ids)
    # The conversation holds the post itself too (the account's: no tip): 21 pages of
    # at most a hundred, ten a fetch, so three fetches, and no page asked twice.
    searches = x_fake.calls("search")
    assert len(searches) == 21
    assert len({tuple(s.args.get("next_token", [""])) for s in searches}) == len(searches)
    db.session.refresh(delivery)
    assert delivery.replies_runs == 3 and delivery.replies_problem == ""
    appeal = post.appeals[0].appeal
    by_remote = {t.public_reply.remote_id: t for t in tips if t.public_reply}
    first = by_remote[ids[0]]
    assert first.case_id == appeal.case_id and first.appeal_id == appeal.id
    assert first.channel == "reply:x"
    assert first.body == "I saw the bike at the station, 0"
    assert first.contact_name == "@witness0"
    assert first.public_reply is not None
    assert first.public_reply.url == f"https://x.com/witness0/status/{ids[0]}"

    # The next interval: one search since the newest, nothing filed again.
    _poll(app, clock, x_fake)
    assert len(comment_tips()) == VIRAL
    assert len(x_fake.calls("search")) == len(searches) + 1
    assert x_fake.calls("search")[-1].args["since_id"] == [ids[-1]]

    # A detective who may moderate (the supervisor) hides one on X.
    supervisor = users[Role.SUPERVISOR]
    target = by_remote[ids[7]]
    request_action(supervisor, target, "hide")
    db.session.commit()
    drain(app)
    assert x_fake.others[ids[7]]["hidden"]
    assert [r.path for r in x_fake.calls("hide")] == [f"/2/tweets/{ids[7]}/hidden"]
    db.session.refresh(target.public_reply)
    assert target.public_reply.state == "hidden" and target.public_reply.pending_action == ""
    assert target.public_reply.action_problem == ""
    with pytest.raises(ValidationFailed, match="does not let an account delete"):
        request_action(supervisor, by_remote[ids[8]], "delete")


def test_an_x_answer_links_the_tip_form_and_new_or_edited_replies_come_in_later(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, x_fake: FakeX, users: dict[Role, User]
) -> None:
    post, delivery = sent
    first = x_fake.add_reply(delivery.remote_id, "It was my neighbour's bike", "witness")
    _poll(app, clock, x_fake, timedelta(0))
    [tip] = comment_tips()

    request_action(users[Role.SUPERVISOR], tip, "answer")
    db.session.commit()
    drain(app)

    [answer] = [p for p in x_fake.posts.values() if p["in_reply_to"] == first]
    assert f"/appeals/{post.appeals[0].appeal.public_id}" in answer["sent_text"]
    assert "Please don't name anyone" in answer["sent_text"]
    db.session.refresh(tip.public_reply)
    assert tip.public_reply.answered_url == f"https://x.com/i/web/status/{answer['id']}"

    # The account's answer is in the conversation, but it is no tip; an edit and a new
    # reply are found at the next interval.
    x_fake.edit_reply(first, "It was the bike of the man at number 12")
    x_fake.add_reply(delivery.remote_id, "I have a photo of it", "other")
    _poll(app, clock, x_fake)
    tips = comment_tips()
    assert [t.body for t in tips] == ["It was my neighbour's bike", "I have a photo of it"]
    row = db.session.scalar(select(PublicReply).where(PublicReply.remote_id == first))
    assert row is not None and row.state == "edited"
    assert row.edited_text == "It was the bike of the man at number 12"


def test_an_x_rate_limit_stops_the_fetch_until_the_reset(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, x_fake: FakeX
) -> None:
    _post, delivery = sent
    x_fake.add_reply(delivery.remote_id, "seen it", "witness")
    x_fake.search_limit = 0
    _poll(app, clock, x_fake, timedelta(0))
    db.session.refresh(delivery)
    assert comment_tips() == []
    assert "rate limit" in delivery.replies_problem
    assert delivery.replies_next_at is not None
    assert delivery.replies_next_at.replace(tzinfo=None) == (
        clock.now + timedelta(seconds=15 * 60)
    ).replace(tzinfo=None)
