"""Replies under a sent post become tips: each filed once, in turns, marked when they
change on the network; a detective who may moderate hides or answers one there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Agency, Role, Tip, User
from portal.publishing.channels.base import Reply
from portal.publishing.models import Channel, Delivery, Post, PublicReply
from portal.publishing.services.deliveries import publish_due
from portal.publishing.services.posts import create_post, schedule_post
from portal.publishing.services.replies import (
    NO_RECEIPT,
    fetch_replies,
    request_action,
    schedule_fetches,
)
from portal.services.errors import NotFound, PermissionDenied, ValidationFailed
from portal.services.tips import open_tip
from tests.portal.conftest import csrf_token
from tests.portal.publishing.conftest import Clock, World, drain, fake_channel, stored_appeal

Login = Callable[[User], FlaskClient]

POLL = timedelta(seconds=300)  # TATTLETALE_REPLIES_POLL_SECONDS' default


def _replies(n: int, start: int = 0) -> list[Reply]:
    return [
        Reply(
            remote_id=f"c{i}",
            text=f"I know the rider of the bike, number {i}",
            author=f"@neighbour{i}",
            created_at=datetime(2027, 2, 24, 12, 5, tzinfo=UTC),
            url=f"https://fake.example/c{i}",
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def sent(
    app: Flask, new_york: Agency, users: dict[Role, User], coordinator: User, clock: Clock
) -> tuple[Post, Delivery, World]:
    appeal = stored_appeal(new_york, users, "T-1", "Who took the bike?")
    channel, world = fake_channel(new_york, "Fake")
    slot = clock.now + timedelta(hours=1)
    post = create_post(new_york, coordinator, [appeal.public_id], slot, [channel.public_id])
    schedule_post(post, coordinator)
    db.session.commit()
    clock.now = slot
    publish_due(clock.now)
    drain(app)
    delivery = next(d for d in post.deliveries if d.channel_id == channel.id)
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    return post, delivery, world


def _poll(app: Flask, clock: Clock, after: timedelta = POLL) -> None:
    clock.now += after
    schedule_fetches(clock.now)
    drain(app, timeout_s=120)


def _comment_tips() -> list[Tip]:
    return list(db.session.scalars(select(Tip).where(Tip.origin == "comment").order_by(Tip.id)))


def test_a_viral_posts_replies_are_each_filed_once_within_one_interval_and_hidden_on_request(
    app: Flask, sent: tuple[Post, Delivery, World], clock: Clock, users: dict[Role, User]
) -> None:
    post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(3000)
    _poll(app, clock, timedelta(0))
    tips = _comment_tips()
    assert len(tips) == 3000
    assert db.session.scalar(select(func.count(func.distinct(PublicReply.remote_id)))) == 3000
    # 30 pages of 100, taken 10 a fetch: three fetches, each behind the rest of the queue.
    assert world.list_calls == 30
    db.session.refresh(delivery)
    assert delivery.replies_runs == 3 and delivery.replies_problem == ""
    first = tips[0]
    appeal = post.appeals[0].appeal
    assert first.case_id == appeal.case_id and first.appeal_id == appeal.id
    assert first.body == "I know the rider of the bike, number 0"
    assert first.contact_name == "@neighbour0"
    assert first.public_reply is not None and first.public_reply.url == "https://fake.example/c0"
    # Nobody can open a comment as a tipster: it has no receipt.
    assert first.receipt_hash == NO_RECEIPT
    with pytest.raises(NotFound):
        open_tip(first.number, "any passphrase at all")

    # Caught up: the next interval costs one page and files only what is new.
    world.replies[delivery.remote_id] += _replies(5, start=3000)
    calls = world.list_calls
    _poll(app, clock)
    assert len(_comment_tips()) == 3005
    assert world.list_calls == calls + 1

    # A detective who may moderate (the supervisor) hides one on the network.
    supervisor = users[Role.SUPERVISOR]
    target = _comment_tips()[7]
    request_action(supervisor, target, "hide")
    db.session.commit()
    drain(app)
    assert world.hidden == ["c7"]
    db.session.refresh(target.public_reply)
    assert target.public_reply.state == "hidden" and target.public_reply.pending_action == ""
    with pytest.raises(ValidationFailed, match="already hidden"):
        request_action(supervisor, target, "hide")
    # Deleting is not something this network lets an account do.
    with pytest.raises(ValidationFailed, match="does not let an account delete"):
        request_action(supervisor, target, "delete")


def test_the_public_answer_links_the_tip_form_and_is_sent_once(
    app: Flask, sent: tuple[Post, Delivery, World], clock: Clock, users: dict[Role, User]
) -> None:
    post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(1)
    _poll(app, clock, timedelta(0))
    [tip] = _comment_tips()
    request_action(users[Role.SUPERVISOR], tip, "answer")
    db.session.commit()
    drain(app)
    [(remote_id, text)] = world.answers
    assert remote_id == "c0"
    assert f"/appeals/{post.appeals[0].appeal.public_id}" in text
    assert "Please don't name anyone" in text
    db.session.refresh(tip.public_reply)
    assert tip.public_reply.answered_url == "https://fake.example/a-c0"
    with pytest.raises(ValidationFailed, match="answered already"):
        request_action(users[Role.SUPERVISOR], tip, "answer")


def test_only_staff_who_may_moderate_and_handle_the_tip_can_act_on_a_comment(
    app: Flask, sent: tuple[Post, Delivery, World], clock: Clock, users: dict[Role, User]
) -> None:
    _post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(1)
    _poll(app, clock, timedelta(0))
    [tip] = _comment_tips()
    # An officer handles no tips; a coordinator alone may moderate but sees no tips.
    for role in (Role.OFFICER, Role.COORDINATOR, Role.DETECTIVE):
        with pytest.raises(PermissionDenied):
            request_action(users[role], tip, "hide")
    assert world.hidden == []


def test_edited_and_deleted_replies_are_marked_and_the_tip_keeps_what_was_filed(
    app: Flask, sent: tuple[Post, Delivery, World], clock: Clock
) -> None:
    _post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(3)
    _poll(app, clock, timedelta(0))
    replies = world.replies[delivery.remote_id]
    replies[0] = Reply(
        remote_id="c0", text="never mind", author="@neighbour0", created_at=replies[0].created_at
    )
    del replies[1]
    _poll(app, clock)
    rows = {row.remote_id: row for row in db.session.scalars(select(PublicReply))}
    assert rows["c0"].state == "edited" and rows["c0"].edited_text == "never mind"
    assert rows["c1"].state == "removed"
    assert rows["c2"].state == "live"
    tips = {tip.public_reply.remote_id: tip for tip in _comment_tips() if tip.public_reply}
    assert tips["c0"].body == "I know the rider of the bike, number 0"
    assert tips["c1"].body == "I know the rider of the bike, number 1"


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("429", "fake rate limit reached"),
        ("garbage", "could not read"),
        ("forever", "same page of replies twice"),
    ],
)
def test_a_network_that_fails_pages_forever_or_answers_garbage_is_bounded_and_reported(
    app: Flask, sent: tuple[Post, Delivery, World], clock: Clock, fault: str, problem: str
) -> None:
    _post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(3)
    world.reply_faults.append(fault)
    _poll(app, clock, timedelta(0))
    db.session.refresh(delivery)
    assert problem in delivery.replies_problem
    assert world.list_calls == 1
    assert _comment_tips() == []
    if fault == "429":
        # Not before the network's reset time.
        assert delivery.replies_next_at is not None
        assert delivery.replies_next_at >= clock.now + timedelta(seconds=900)
    # The next interval (after the reset) files everything and clears the problem.
    _poll(app, clock, timedelta(seconds=901))
    db.session.refresh(delivery)
    assert len(_comment_tips()) == 3 and delivery.replies_problem == ""


def test_a_refused_token_marks_the_channel_and_stops_fetching(
    app: Flask, sent: tuple[Post, Delivery, World], clock: Clock
) -> None:
    _post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(3)
    world.reply_faults.append("credential")
    _poll(app, clock, timedelta(0))
    channel = db.session.get(Channel, delivery.channel_id)
    assert channel is not None and channel.status == "needs_reconnect"
    _poll(app, clock)
    assert world.list_calls == 1 and _comment_tips() == []


def test_a_reply_seen_by_two_fetches_is_filed_once(
    app: Flask, sent: tuple[Post, Delivery, World], clock: Clock
) -> None:
    _post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(2)
    fetch_replies(delivery.id)
    db.session.refresh(delivery)
    delivery.replies_cursor = None  # a second fetch that starts from the beginning
    db.session.commit()
    fetch_replies(delivery.id)
    assert len(_comment_tips()) == 2


def test_the_tip_page_shows_the_comment_and_hides_it_on_request(
    app: Flask,
    sent: tuple[Post, Delivery, World],
    clock: Clock,
    users: dict[Role, User],
    signed_in: Login,
) -> None:
    _post, delivery, world = sent
    world.replies[delivery.remote_id] = _replies(1)
    _poll(app, clock, timedelta(0))
    [tip] = _comment_tips()
    page = f"/staff/tips/{tip.public_id}"
    action = f"{page}/comment/hide"

    client = signed_in(users[Role.SUPERVISOR])
    html = client.get(page).get_data(as_text=True)
    assert "Public comment on Fake" in html
    assert 'href="https://fake.example/c0"' in html
    assert "Send to the tipster" not in html  # a comment has nobody to write back to
    assert client.post(action).status_code == 400  # no CSRF token: refused
    assert (
        client.post(
            f"{page}/comment/burn", data={"csrf_token": csrf_token(client, page)}
        ).status_code
        == 404
    )
    response = client.post(action, data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    db.session.commit()
    drain(app)
    assert world.hidden == ["c0"]
    assert "hidden" in client.get(page).get_data(as_text=True)


def test_the_post_page_says_why_replies_could_not_be_fetched(
    app: Flask,
    sent: tuple[Post, Delivery, World],
    clock: Clock,
    users: dict[Role, User],
    signed_in: Login,
) -> None:
    post, delivery, world = sent
    world.reply_faults.append("garbage")
    _poll(app, clock, timedelta(0))
    html = (
        signed_in(users[Role.COORDINATOR])
        .get(f"/staff/posts/{post.public_id}")
        .get_data(as_text=True)
    )
    assert "Fetching its replies: Fake gave an answer the portal could not read (KeyError)." in html


def test_comment_tips_count_per_network_and_a_link_cannot_pose_as_a_comment() -> None:
    from portal.services.appeals import channel_of, reply_channel
    from portal.services.outcomes import channel_label

    assert reply_channel("facebook") == "reply:facebook"
    assert channel_label("reply:facebook") == "Facebook comments"
    assert channel_label("reply:bluesky") == "Bluesky replies"
    # ?via= names only the links' channels.
    assert channel_of("reply:facebook") == "web"
    assert channel_of("facebook") == "facebook"
