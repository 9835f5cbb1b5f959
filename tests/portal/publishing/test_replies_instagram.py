"""A viral appeal on a real Instagram channel, against the local Graph fake: the Reel
is published through the adapter, thousands of comments (and replies under them) come
in across pages, and the replies engine files each one once, within one polling
interval, as a tip of the appeal's case; a detective's hide, delete and answer reach
Instagram."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.models import Channel, Delivery, Post, PublicReply
from portal.publishing.services.replies import request_action, schedule_fetches
from tests.portal.publishing.conftest import Clock, comment_tips, drain, sent_through, stored_appeal
from tests.portal.publishing.fakes.graph_fake import GraphFake, running_fake

POLL = timedelta(seconds=300)  # TATTLETALE_REPLIES_POLL_SECONDS' default


@pytest.fixture
def graph() -> Iterator[GraphFake]:
    yield from running_fake()


@pytest.fixture
def sent(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    graph: GraphFake,
) -> tuple[Post, Delivery]:
    appeal = stored_appeal(new_york, users, "T-8", "Who took the scooter?")
    channel = Channel(
        agency_id=new_york.id,
        network="instagram",
        name="@springfieldpd",
        settings=graph.settings(ig_username=graph.ig_username),
        credentials=json.dumps({"user_access_token": graph.user_token}),
    )
    post, delivery = sent_through(app, new_york, coordinator, clock, appeal, channel)
    # The delivery stores the media's id: that is what the comments are under.
    assert delivery.remote_id in graph.media
    return post, delivery


def _poll(app: Flask, clock: Clock, after: timedelta = POLL) -> None:
    clock.now += after
    schedule_fetches(clock.now)
    drain(app, timeout_s=120)


def _listings(graph: GraphFake) -> int:
    return graph.ops().count("ig_comments")


def test_a_viral_reels_comments_are_filed_once_within_one_interval_and_moderated(
    app: Flask,
    sent: tuple[Post, Delivery],
    clock: Clock,
    users: dict[Role, User],
    graph: GraphFake,
) -> None:
    post, delivery = sent
    media = delivery.remote_id
    # 2,000 comments: 1,800 under the Reel, 200 replies under them; and the account's own.
    top = ""
    for i in range(2000):
        if i % 10 == 9:
            graph.comment(media, f"Replying: it is the scooter from Oak St, {i}", parent=top)
        else:
            top = graph.comment(media, f"I saw it near the school, number {i}").id
        if i % 500 == 0:
            graph.comment(media, "Thanks, tell us privately", author=(graph.ig_user_id, "pd"))

    _poll(app, clock, timedelta(0))  # one polling interval: nothing else moves the clock

    tips = comment_tips()
    assert len(tips) == 2000
    assert db.session.scalar(select(func.count(func.distinct(PublicReply.remote_id)))) == 2000
    # 1,804 top-level comments on pages of 100: 19 listings, 10 a fetch, two fetches.
    assert _listings(graph) == 19
    db.session.refresh(delivery)
    assert delivery.replies_problem == "" and delivery.replies_runs == 2
    appeal = post.appeals[0].appeal
    assert {tip.case_id for tip in tips} == {appeal.case_id}
    assert {tip.channel for tip in tips} == {"reply:instagram"}
    by_text = {tip.body: tip for tip in tips}
    zero = by_text["I saw it near the school, number 0"]
    assert zero.contact_name == "@neighbour0"
    assert "Replying: it is the scooter from Oak St, 9" in by_text
    assert "Thanks, tell us privately" not in by_text

    # The next interval: one listing, and only the new comment.
    calls = _listings(graph)
    graph.comment(media, "The scooter is blue")
    _poll(app, clock)
    assert _listings(graph) == calls + 1
    assert len(comment_tips()) == 2001

    # A supervisor hides one, deletes another and answers a third, on Instagram.
    supervisor = users[Role.SUPERVISOR]
    hide = by_text["I saw it near the school, number 1"]
    delete = by_text["I saw it near the school, number 2"]
    answer = by_text["I saw it near the school, number 3"]
    for tip, action in ((hide, "hide"), (delete, "delete"), (answer, "answer")):
        request_action(supervisor, tip, action)
        db.session.commit()
    drain(app)
    hidden = graph.comment_by_id(hide.public_reply.remote_id)  # type: ignore[union-attr]
    assert hidden is not None and hidden.hidden is True
    assert graph.comment_by_id(delete.public_reply.remote_id) is None  # type: ignore[union-attr]
    (ours,) = [c for c in graph.comments if f"/appeals/{appeal.public_id}" in c.text]
    assert ours.author_id == graph.ig_user_id
    assert ours.parent == answer.public_reply.remote_id  # type: ignore[union-attr]
    for tip, state in ((hide, "hidden"), (delete, "deleted")):
        db.session.refresh(tip.public_reply)
        assert tip.public_reply.state == state  # type: ignore[union-attr]
        assert tip.public_reply.action_problem == ""  # type: ignore[union-attr]

    # The account's answer is not filed back as a tip.
    _poll(app, clock)
    assert len(comment_tips()) == 2001


def test_comments_edited_or_deleted_on_instagram_are_marked_and_the_tip_keeps_its_text(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, graph: GraphFake
) -> None:
    _post, delivery = sent
    ids = [graph.comment(delivery.remote_id, f"Plate starts with {i}").id for i in range(3)]
    _poll(app, clock, timedelta(0))
    graph.edit_comment(ids[0], "sorry, wrong scooter")
    graph.delete_comment(ids[1])
    _poll(app, clock)
    rows = {row.remote_id: row for row in db.session.scalars(select(PublicReply))}
    assert rows[ids[0]].state == "edited" and rows[ids[0]].edited_text == "sorry, wrong scooter"
    assert rows[ids[1]].state == "removed"
    assert rows[ids[2]].state == "live"
    bodies = {tip.public_reply.remote_id: tip.body for tip in comment_tips() if tip.public_reply}
    assert bodies[ids[0]] == "Plate starts with 0"


def test_answering_a_hidden_comment_is_refused_with_the_reason(
    app: Flask,
    sent: tuple[Post, Delivery],
    clock: Clock,
    users: dict[Role, User],
    graph: GraphFake,
) -> None:
    _post, delivery = sent
    comment = graph.comment(delivery.remote_id, "It was my cousin")
    _poll(app, clock, timedelta(0))
    [tip] = comment_tips()
    comment.hidden = True  # hidden in the app meanwhile
    request_action(users[Role.SUPERVISOR], tip, "answer")
    db.session.commit()
    drain(app)
    db.session.refresh(tip.public_reply)
    assert "hidden comment" in tip.public_reply.action_problem  # type: ignore[union-attr]
    assert tip.public_reply.answered_at is None  # type: ignore[union-attr]
    assert [c.id for c in graph.comments] == [comment.id]
