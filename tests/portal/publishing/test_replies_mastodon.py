"""Replies under a post sent to Mastodon become tips, end to end: a real Mastodon
channel row, the real adapter, the Mastodon server on loopback (fakes/mastodon.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.models import Channel, Delivery, Post, PublicReply
from portal.publishing.services.replies import request_action, schedule_fetches
from portal.services.errors import ValidationFailed
from tests.portal.publishing.conftest import Clock, comment_tips, drain, sent_through, stored_appeal
from tests.portal.publishing.fakes.mastodon import OWN, TOKEN, FakeMastodon

POLL = timedelta(seconds=300)  # TATTLETALE_REPLIES_POLL_SECONDS' default
VIRAL = 2000


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    # Media processed at upload: the post goes out without polling.
    with FakeMastodon(processing_polls=0).running() as server:
        yield server


@pytest.fixture
def sent(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    fake: FakeMastodon,
) -> tuple[Post, Delivery]:
    appeal = stored_appeal(new_york, users, "M-1", "Who took the bike?")
    channel = Channel(
        agency_id=new_york.id,
        network="mastodon",
        name="Springfield on Mastodon",
        settings={"base_url": fake.url, "timeout_s": 5},
        credentials=json.dumps({"access_token": TOKEN}),
    )
    post, delivery = sent_through(app, new_york, coordinator, clock, appeal, channel)
    assert delivery.remote_id in fake.statuses
    return post, delivery


def test_a_viral_mastodon_posts_replies_are_each_filed_once_within_one_interval_and_answered(
    app: Flask,
    sent: tuple[Post, Delivery],
    clock: Clock,
    users: dict[Role, User],
    fake: FakeMastodon,
) -> None:
    post, delivery = sent
    host = urlsplit(fake.url).netloc
    # Two thousand replies: most to the post, some to other replies, some from other
    # servers; and the account's own reply in the thread, which is not a tip.
    ids: list[str] = []
    for i in range(VIRAL):
        parent = ids[-1] if i % 10 == 9 else delivery.remote_id
        acct = f"neighbour{i}" if i % 3 else f"witness{i}@other.example"
        ids.append(fake.add_reply(parent, f"I know the rider of the bike, number {i}", acct=acct))
    own = fake.add_reply(ids[5], "Thanks, all")
    fake.statuses[own]["account"] = OWN

    # One scheduler tick, no time passing: everything is filed before the next one.
    schedule_fetches(clock.now)
    drain(app, timeout_s=120)
    tips = comment_tips()
    assert len(tips) == VIRAL
    assert db.session.scalar(select(func.count(func.distinct(PublicReply.remote_id)))) == VIRAL
    # Pages of 100 cut from the context, ten a fetch: two fetches, one context call each.
    assert len(fake.calls("context")) == 2
    db.session.refresh(delivery)
    assert delivery.replies_runs == 2 and delivery.replies_problem == ""
    appeal = post.appeals[0].appeal
    first = tips[0]
    assert first.case_id == appeal.case_id and first.appeal_id == appeal.id
    assert first.body == "@tattletale I know the rider of the bike, number 0"
    assert first.contact_name == "@witness0@other.example"
    assert tips[1].contact_name == f"@neighbour1@{host}"
    assert first.public_reply is not None
    assert (
        first.public_reply.url == f"https://other.example/@witness0/{first.public_reply.remote_id}"
    )
    assert own not in {tip.public_reply.remote_id for tip in tips if tip.public_reply}

    # The next interval: one context call, only the new reply filed.
    late = fake.add_reply(delivery.remote_id, "Saw him again on 5th", acct="neighbour9999")
    clock.now += POLL
    schedule_fetches(clock.now)
    drain(app, timeout_s=60)
    tips = comment_tips()
    assert len(tips) == VIRAL + 1 and len(fake.calls("context")) == 3
    assert tips[-1].public_reply is not None and tips[-1].public_reply.remote_id == late

    # A supervisor answers one publicly; hiding is not something Mastodon offers.
    supervisor = users[Role.SUPERVISOR]
    target = tips[7]
    assert target.public_reply is not None
    with pytest.raises(ValidationFailed, match="does not let an account hide"):
        request_action(supervisor, target, "hide")
    request_action(supervisor, target, "answer")
    db.session.commit()
    drain(app)
    answers = [
        s
        for s in fake.statuses.values()
        if s.get("in_reply_to_id") == target.public_reply.remote_id
    ]
    assert len(answers) == 1
    assert answers[0]["text"].startswith("@neighbour7 Thank you. Please don't name anyone")
    assert f"/appeals/{appeal.public_id}" in answers[0]["text"]
    assert fake.calls("post")[-1].headers["Idempotency-Key"].startswith("reply-")
    db.session.refresh(target.public_reply)
    assert target.public_reply.answered_url == f"{fake.url}/@tattletale/{answers[0]['id']}"
    assert target.public_reply.action_problem == ""

    # The answer is the account's own: the next fetch files nothing for it.
    clock.now += POLL
    schedule_fetches(clock.now)
    drain(app, timeout_s=60)
    assert len(comment_tips()) == VIRAL + 1


def test_a_mastodon_reply_edited_or_deleted_after_filing_is_marked_and_the_tip_keeps_it(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, fake: FakeMastodon
) -> None:
    _post, delivery = sent
    ids = [fake.add_reply(delivery.remote_id, f"Reply {i}") for i in range(3)]
    schedule_fetches(clock.now)
    drain(app)
    fake.edit_reply(ids[0], "never mind")
    del fake.statuses[ids[1]]
    clock.now += POLL
    schedule_fetches(clock.now)
    drain(app)
    rows = {row.remote_id: row for row in db.session.scalars(select(PublicReply))}
    assert rows[ids[0]].state == "edited" and rows[ids[0]].edited_text == "@tattletale never mind"
    assert rows[ids[1]].state == "removed"
    assert rows[ids[2]].state == "live"
    bodies = {t.public_reply.remote_id: t.body for t in comment_tips() if t.public_reply}
    assert bodies[ids[0]] == "@tattletale Reply 0"


def test_a_mastodon_rate_limit_while_fetching_waits_for_the_reset_and_says_so(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, fake: FakeMastodon
) -> None:
    _post, delivery = sent
    fake.add_reply(delivery.remote_id, "I know him")
    fake.fail("context", "rate_limited")
    schedule_fetches(clock.now)
    drain(app)
    db.session.refresh(delivery)
    assert "Mastodon rate limit reached" in delivery.replies_problem
    assert comment_tips() == []
    assert delivery.replies_next_at is not None
