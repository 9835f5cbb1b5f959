"""Replies under a post sent to a real Bluesky channel (the adapter against the loopback
PDS and AppView of fakes/bluesky.py) become tips: a viral thread filed once, within one
polling interval, and a detective's hide and answer reaching the network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Agency, Role, Tip, User
from portal.publishing.models import Channel, Delivery, Post, PublicReply
from portal.publishing.services.replies import request_action, schedule_fetches
from portal.services.errors import ValidationFailed
from tests.portal.publishing.conftest import Clock, drain, sent_through, stored_appeal
from tests.portal.publishing.fakes.bluesky import (
    APP_PASSWORD,
    DID,
    IDENTIFIER,
    POST,
    FakeBluesky,
)

POLL = timedelta(seconds=300)  # TATTLETALE_REPLIES_POLL_SECONDS' default


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky(processing_polls=0).running() as server:
        yield server


@pytest.fixture
def sent(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    fake: FakeBluesky,
) -> tuple[Post, Delivery]:
    """An appeal posted to the agency's Bluesky channel through the delivery engine."""
    appeal = stored_appeal(new_york, users, "T-1", "Who took the bike?")
    channel = Channel(
        agency_id=new_york.id,
        network="bluesky",
        name="Springfield on Bluesky",
        # 10 s, not the adapter's 60: a fake that hangs fails fast; but a thread of 2,000
        # replies takes the fake more than 1.5 s to serve on a loaded CI machine.
        settings={"pds_url": fake.url, "video_url": fake.url, "did": DID, "timeout_s": 10},
        credentials=json.dumps({"identifier": IDENTIFIER, "app_password": APP_PASSWORD}),
    )
    post, delivery = sent_through(app, new_york, coordinator, clock, appeal, channel)
    assert delivery.remote_id.startswith(f"at://{DID}/{POST}/")
    return post, delivery


def _poll(app: Flask, clock: Clock, after: timedelta = POLL) -> None:
    clock.now += after
    schedule_fetches(clock.now)
    drain(app, timeout_s=120)


def _comment_tips(limit: int | None = None) -> list[Tip]:
    query = select(Tip).where(Tip.origin == "comment").order_by(Tip.id).limit(limit)
    return list(db.session.scalars(query))


def _count_tips() -> int:
    return db.session.scalar(select(func.count(Tip.id)).where(Tip.origin == "comment")) or 0


def test_a_viral_bluesky_thread_is_filed_once_within_one_interval_and_hidden_on_request(
    app: Flask,
    sent: tuple[Post, Delivery],
    fake: FakeBluesky,
    clock: Clock,
    users: dict[Role, User],
) -> None:
    post, delivery = sent
    added: list[str] = []
    for i in range(2000):
        # One in ten answers the reply before it: replies to replies are tips too.
        parent = added[-1] if i % 10 == 9 else delivery.remote_id
        added.append(
            fake.add_reply(parent, f"I know the rider, number {i}", handle=f"n{i}.bsky.social")
        )

    _poll(app, clock, timedelta(0))

    assert _count_tips() == 2000
    assert db.session.scalar(select(func.count(func.distinct(PublicReply.remote_id)))) == 2000
    assert set(db.session.scalars(select(PublicReply.remote_id))) == set(added)
    # Twenty pages of 100, ten a fetch: two fetches, the second queued behind the rest.
    assert len(fake.calls("get_post_thread")) == 20
    db.session.refresh(delivery)
    assert delivery.replies_runs == 2 and delivery.replies_problem == ""
    first = _comment_tips(limit=1)[0]
    appeal = post.appeals[0].appeal
    assert (first.case_id, first.appeal_id) == (appeal.case_id, appeal.id)
    assert first.body == "I know the rider, number 0"
    assert first.contact_name == "n0.bsky.social"
    assert first.public_reply is not None
    rkey = added[0].rsplit("/", 1)[-1]
    assert first.public_reply.url == f"https://bsky.app/profile/n0.bsky.social/post/{rkey}"

    # The next interval costs one call and files only what is new.
    late = [fake.add_reply(delivery.remote_id, f"late {i}") for i in range(3)]
    calls = len(fake.calls("get_post_thread"))
    _poll(app, clock)
    assert _count_tips() == 2003
    assert len(fake.calls("get_post_thread")) == calls + 1
    newest = db.session.scalars(select(PublicReply.remote_id).order_by(PublicReply.id.desc()))
    assert list(newest)[:3] == late[::-1]

    # A detective who may moderate (the supervisor) hides one: the threadgate says so.
    supervisor = users[Role.SUPERVISOR]
    target = _comment_tips(limit=8)[7]
    request_action(supervisor, target, "hide")
    db.session.commit()
    drain(app)
    gate = fake.threadgates[delivery.remote_id.rsplit("/", 1)[-1]]["value"]
    assert gate["post"] == delivery.remote_id
    assert gate["hiddenReplies"] == [added[7]]
    row = target.public_reply
    assert row is not None
    db.session.refresh(row)
    assert row.state == "hidden" and row.action_problem == ""
    # One sign-in for all of it: the session is kept with the channel's credentials
    # (createSession allows 300 a day).
    assert len(fake.calls("create_session")) == 1
    # Bluesky lets no account delete another's post.
    with pytest.raises(ValidationFailed, match="does not let an account delete"):
        request_action(supervisor, target, "delete")


def test_a_bluesky_reply_is_answered_once_and_the_answer_is_not_filed(
    app: Flask,
    sent: tuple[Post, Delivery],
    fake: FakeBluesky,
    clock: Clock,
    users: dict[Role, User],
) -> None:
    post, delivery = sent
    reply = fake.add_reply(delivery.remote_id, "It's Bob from the garage")
    _poll(app, clock, timedelta(0))
    [tip] = _comment_tips()

    request_action(users[Role.SUPERVISOR], tip, "answer")
    db.session.commit()
    drain(app)

    answers = [r for r in fake.records.values() if (r["value"].get("reply") or {}).get("parent")]
    assert len(answers) == 1
    value = answers[0]["value"]
    assert value["reply"]["parent"] == {"uri": reply, "cid": fake.others[reply]["cid"]}
    assert value["reply"]["root"]["uri"] == delivery.remote_id
    assert f"/appeals/{post.appeals[0].appeal.public_id}" in value["text"]
    row = tip.public_reply
    assert row is not None
    db.session.refresh(row)
    rkey = answers[0]["uri"].rsplit("/", 1)[-1]
    assert row.answered_url == f"https://bsky.app/profile/{IDENTIFIER}/post/{rkey}"
    # The account's own answer sits in the thread and is no tip.
    _poll(app, clock)
    assert _count_tips() == 1


def test_a_rewritten_or_deleted_bluesky_reply_is_marked_and_its_tip_keeps_what_was_filed(
    app: Flask, sent: tuple[Post, Delivery], fake: FakeBluesky, clock: Clock
) -> None:
    _post, delivery = sent
    rewritten, deleted, kept = (
        fake.add_reply(delivery.remote_id, f"It was the man from number {i}") for i in range(3)
    )
    _poll(app, clock, timedelta(0))
    fake.rewrite_post(rewritten, "never mind")
    fake.delete_post(deleted)

    _poll(app, clock)

    rows = {row.remote_id: row for row in db.session.scalars(select(PublicReply))}
    assert (rows[rewritten].state, rows[rewritten].edited_text) == ("edited", "never mind")
    assert rows[deleted].state == "removed"
    assert rows[kept].state == "live"
    tips = {tip.id: tip.body for tip in _comment_tips()}
    bodies = {row.remote_id: tips[row.tip_id] for row in rows.values()}
    assert bodies[rewritten] == "It was the man from number 0"
    assert bodies[deleted] == "It was the man from number 1"
