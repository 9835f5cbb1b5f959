"""A viral appeal on a real Facebook Page channel, against the local Graph fake: the
video is posted through the adapter, thousands of comments come in across pages, and
the replies engine files each one once, within one polling interval, as a tip of the
appeal's case; a detective's hide, delete and answer reach Facebook."""

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
    appeal = stored_appeal(new_york, users, "T-7", "Who broke into the bakery?")
    channel = Channel(
        agency_id=new_york.id,
        network="facebook",
        name="Springfield PD",
        settings=graph.settings(),
        credentials=json.dumps(
            {"page_access_token": graph.page_token, "user_access_token": graph.user_token}
        ),
    )
    post, delivery = sent_through(app, new_york, coordinator, clock, appeal, channel)
    # The delivery stores the video's id: that is what the comments are under.
    assert delivery.remote_id in graph.videos
    return post, delivery


def _poll(app: Flask, clock: Clock, after: timedelta = POLL) -> None:
    clock.now += after
    schedule_fetches(clock.now)
    drain(app, timeout_s=120)


def _listings(graph: GraphFake) -> int:
    return graph.ops().count("fb_comments")


def test_a_viral_videos_comments_are_filed_once_within_one_interval_and_moderated(
    app: Flask,
    sent: tuple[Post, Delivery],
    clock: Clock,
    users: dict[Role, User],
    graph: GraphFake,
) -> None:
    post, delivery = sent
    video = delivery.remote_id
    # 2,000 comments, some of them replies to others, and the Page's own in between.
    for i in range(2000):
        parent = graph.comments[-1].id if i % 10 == 9 else ""
        graph.comment(video, f"The man in the red cap is on Elm St, number {i}", parent=parent)
        if i % 500 == 0:
            graph.comment(video, "Thank you, use our tip form", author=(graph.page_id, "PD"))

    _poll(app, clock, timedelta(0))  # one polling interval: nothing else moves the clock

    tips = comment_tips()
    assert len(tips) == 2000
    assert db.session.scalar(select(func.count(func.distinct(PublicReply.remote_id)))) == 2000
    # 2,004 comments on pages of 100: 21 listings, 10 a fetch, in three fetches.
    assert _listings(graph) == 21
    db.session.refresh(delivery)
    assert delivery.replies_problem == "" and delivery.replies_runs == 3
    appeal = post.appeals[0].appeal
    assert {(tip.case_id, tip.appeal_id) for tip in tips} == {(appeal.case_id, appeal.id)}
    assert {tip.channel for tip in tips} == {"reply:facebook"}
    by_text = {tip.body: tip for tip in tips}
    first = by_text["The man in the red cap is on Elm St, number 0"]
    assert first.contact_name == "Neighbour 0"
    assert first.public_reply is not None
    assert first.public_reply.remote_id == graph.comments[0].id
    assert first.public_reply.url.startswith("https://www.facebook.com/")
    assert "Thank you, use our tip form" not in by_text

    # The next interval: one listing from the stored cursor, and only the new comment.
    calls = _listings(graph)
    graph.comment(video, "He drives a grey van")
    _poll(app, clock)
    assert _listings(graph) == calls + 1
    assert len(comment_tips()) == 2001
    assert comment_tips()[-1].body == "He drives a grey van"

    # A supervisor hides one, deletes another and answers a third, on Facebook.
    supervisor = users[Role.SUPERVISOR]
    hide, delete, answer = comment_tips()[7:10]
    for tip, action in ((hide, "hide"), (delete, "delete"), (answer, "answer")):
        request_action(supervisor, tip, action)
        db.session.commit()
    drain(app)
    hidden = graph.comment_by_id(hide.public_reply.remote_id)  # type: ignore[union-attr]
    assert hidden is not None and hidden.hidden is True
    assert graph.comment_by_id(delete.public_reply.remote_id) is None  # type: ignore[union-attr]
    (ours,) = [c for c in graph.comments if f"/appeals/{appeal.public_id}" in c.text]
    assert ours.author_id == graph.page_id
    answered = graph.comment_by_id(answer.public_reply.remote_id)  # type: ignore[union-attr]
    # In the answered comment's thread (a reply's thread is its comment's: two deep).
    assert answered is not None and ours.parent in {answered.id, answered.parent} - {""}
    for tip, state in ((hide, "hidden"), (delete, "deleted")):
        db.session.refresh(tip.public_reply)
        assert tip.public_reply.state == state  # type: ignore[union-attr]
        assert tip.public_reply.action_problem == ""  # type: ignore[union-attr]

    # The Page's answer is not filed back as a tip.
    _poll(app, clock)
    assert len(comment_tips()) == 2001


def test_comments_edited_or_deleted_on_facebook_are_marked_and_the_tip_keeps_its_text(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, graph: GraphFake
) -> None:
    _post, delivery = sent
    ids = [graph.comment(delivery.remote_id, f"Plate starts with {i}").id for i in range(3)]
    _poll(app, clock, timedelta(0))
    graph.edit_comment(ids[0], "sorry, wrong car")
    graph.delete_comment(ids[1])
    _poll(app, clock)

    rows = {row.remote_id: row for row in db.session.scalars(select(PublicReply))}
    assert rows[ids[0]].state == "edited" and rows[ids[0]].edited_text == "sorry, wrong car"
    assert rows[ids[1]].state == "removed"
    assert rows[ids[2]].state == "live"
    bodies = {tip.public_reply.remote_id: tip.body for tip in comment_tips() if tip.public_reply}
    assert bodies[ids[0]] == "Plate starts with 0"
    assert "batch" in graph.ops()


def test_a_throttled_page_stops_the_fetch_until_the_usage_headers_time(
    app: Flask, sent: tuple[Post, Delivery], clock: Clock, graph: GraphFake
) -> None:
    _post, delivery = sent
    graph.comment(delivery.remote_id, "I know who it is")
    graph.fail("fb_comments", "throttle_80001")
    _poll(app, clock, timedelta(0))
    db.session.refresh(delivery)
    assert "rate limit" in delivery.replies_problem and comment_tips() == []
    assert delivery.replies_next_at is not None
    assert delivery.replies_next_at >= clock.now + timedelta(minutes=3)
    _poll(app, clock, timedelta(minutes=5))
    assert len(comment_tips()) == 1
