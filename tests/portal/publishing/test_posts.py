"""Posts: what may be put in one, scheduling through preflight, sending now,
cancelling, a withdrawn or revoked appeal taken down, the agency's retention, the
operator's command, and the coordinators' alert mail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from config import Settings
from portal.extensions import db
from portal.models import Agency, AppealStatus, Job, Role, User
from portal.publishing.models import Channel, Delivery, Post
from portal.publishing.services.deliveries import publish_due
from portal.publishing.services.posts import (
    PreflightRefused,
    cancel_post,
    create_post,
    post_now,
    remove_expired_posts,
    schedule_post,
)
from portal.services.appeals import withdraw_appeal
from portal.services.clips import revoke_approval
from portal.services.errors import PermissionDenied, ValidationFailed
from tests.portal.conftest import listed_appeal
from tests.portal.mail_server import Inbox, free_port, smtp_server
from tests.portal.publishing.conftest import (
    Clock,
    World,
    drain,
    fake_channel,
    rendition_of,
    stored_appeal,
    webhook_channel,
)
from tests.portal.publishing.receiver import WebhookReceiver


@pytest.fixture
def fake(new_york: Agency) -> tuple[Channel, World]:
    return fake_channel(new_york, "Fake")


def _deliveries(post: Post) -> dict[str, Delivery]:
    db.session.expire_all()
    rows = db.session.scalars(select(Delivery).where(Delivery.post_id == post.id))
    return {d.channel.network: d for d in rows}


def test_create_post_adds_the_portal_and_one_delivery_per_channel(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock, fake: tuple[Channel, World]
) -> None:
    appeal = stored_appeal(new_york, users, "P-1", "First")
    channel, _ = fake
    post = create_post(
        new_york,
        users[Role.COORDINATOR],
        [appeal.public_id],
        clock.now + timedelta(days=1),
        [channel.public_id, channel.public_id],
    )
    db.session.commit()
    assert post.status == "draft"
    assert sorted(d.channel.network for d in post.deliveries) == ["fake", "portal"]
    assert all(d.status == "queued" for d in post.deliveries)


@pytest.mark.parametrize(
    "problem",
    ["unpublished", "other agency", "past", "disconnected", "no appeal", "too many"],
)
def test_create_post_refuses_what_cannot_go_out(
    app: Flask,
    new_york: Agency,
    other_agency: Agency,
    users: dict[Role, User],
    clock: Clock,
    fake: tuple[Channel, World],
    problem: str,
) -> None:
    channel, _ = fake
    appeal = stored_appeal(new_york, users, "P-1", "First")
    appeals = [appeal.public_id]
    slot = clock.now + timedelta(days=1)
    if problem == "unpublished":
        appeal.status = AppealStatus.DRAFT.value
    elif problem == "other agency":
        foreign = listed_appeal(
            other_agency, users[Role.OFFICER], users[Role.SUPERVISOR], number="X-1", title="X"
        )
        appeals = [foreign.public_id]
    elif problem == "past":
        slot = clock.now - timedelta(minutes=5)
    elif problem == "disconnected":
        channel.status = "needs_reconnect"
    elif problem == "no appeal":
        appeals = []
    elif problem == "too many":
        appeals.append(stored_appeal(new_york, users, "P-2", "Second").public_id)
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        create_post(new_york, users[Role.COORDINATOR], appeals, slot, [channel.public_id])
    expected_field = {"past": "slot_at", "disconnected": "channels"}.get(problem, "appeals")
    assert refused.value.field == expected_field
    db.session.rollback()
    assert db.session.scalar(select(Post)) is None


def test_create_post_is_refused_to_an_officer_and_to_another_agencys_coordinator(
    app: Flask,
    new_york: Agency,
    other_agency: Agency,
    users: dict[Role, User],
    make_user: object,
    clock: Clock,
) -> None:
    appeal = stored_appeal(new_york, users, "P-1", "First")
    slot = clock.now + timedelta(days=1)
    with pytest.raises(PermissionDenied):
        create_post(new_york, users[Role.OFFICER], [appeal.public_id], slot, [])
    outsider = make_user(Role.COORDINATOR, agency_=other_agency)  # type: ignore[operator]
    with pytest.raises(PermissionDenied):
        create_post(new_york, outsider, [appeal.public_id], slot, [])


def test_schedule_post_fixes_caption_and_rendition_or_says_what_must_change(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    fake: tuple[Channel, World],
    preflight: list[str],
) -> None:
    channel, _ = fake
    good = stored_appeal(new_york, users, "P-1", "First")
    bad = stored_appeal(new_york, users, "P-2", "A caption too long")
    coordinator = users[Role.COORDINATOR]
    slot = clock.now + timedelta(days=1)
    refused = create_post(new_york, coordinator, [bad.public_id], slot, [channel.public_id])
    with pytest.raises(PreflightRefused) as problems:
        schedule_post(refused, coordinator)
    assert sorted(problems.value.problems) == [
        "Appeal pages and Atom feed: the caption is over portal's limit",
        "Fake: the caption is over fake's limit",
    ]
    db.session.rollback()
    post = create_post(new_york, coordinator, [good.public_id], slot, [channel.public_id])
    schedule_post(post, coordinator)
    db.session.commit()
    assert sorted(preflight) == ["fake", "fake", "portal", "portal"]
    by_network = _deliveries(post)
    video = next(r for r in good.clips[0].version.renditions if r.role == "video")
    assert by_network["fake"].rendition_id == video.id
    assert by_network["fake"].text == "#TattletaleTuesday fake: First"
    assert by_network["portal"].rendition_id is None
    assert by_network["portal"].text == "#TattletaleTuesday portal: First"
    assert post.status == "scheduled"


@pytest.mark.usefixtures("real_preflight")
def test_schedule_post_with_the_real_preflight_sends_its_caption_and_cut(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    receiver: WebhookReceiver,
) -> None:
    hook = webhook_channel(new_york, receiver)
    appeal = stored_appeal(new_york, users, "P-1", "Who stole the tip jar?")
    coordinator = users[Role.COORDINATOR]
    post = create_post(new_york, coordinator, [appeal.public_id], clock.now, [hook.public_id])
    post_now(post, coordinator)
    db.session.commit()
    drain(app)
    by_network = _deliveries(post)
    assert by_network["webhook"].status == "sent"
    assert by_network["webhook"].rendition_id == rendition_of(appeal).id
    [event] = receiver.published()
    assert event["text"] == by_network["webhook"].text
    assert "Who stole the tip jar?" in event["text"]
    assert event["media"]["sha256"] == rendition_of(appeal).sha256


def test_post_now_sends_at_once_and_cancel_stops_what_waits(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock, fake: tuple[Channel, World]
) -> None:
    channel, world = fake
    coordinator = users[Role.COORDINATOR]
    first = stored_appeal(new_york, users, "P-1", "First")
    second = stored_appeal(new_york, users, "P-2", "Second")
    now = create_post(
        new_york, coordinator, [first.public_id], clock.now + timedelta(days=3), [channel.public_id]
    )
    post_now(now, coordinator)
    later = create_post(
        new_york,
        coordinator,
        [second.public_id],
        clock.now + timedelta(days=3),
        [channel.public_id],
    )
    schedule_post(later, coordinator)
    db.session.commit()
    drain(app)
    assert {d.status for d in _deliveries(now).values()} == {"sent"}
    db.session.refresh(now)
    assert now.status == "done"
    cancel_post(later, coordinator)
    db.session.commit()
    clock.now += timedelta(days=3)
    publish_due(clock.now)
    drain(app)
    assert {d.status for d in _deliveries(later).values()} == {"cancelled"}
    db.session.refresh(later)
    assert later.status == "cancelled"
    assert len(world.landed()) == 1


def test_withdrawn_appeal_is_taken_down_and_its_next_post_cancelled(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock, fake: tuple[Channel, World]
) -> None:
    channel, world = fake
    coordinator = users[Role.COORDINATOR]
    appeal = stored_appeal(new_york, users, "P-1", "First")
    sent = create_post(new_york, coordinator, [appeal.public_id], clock.now, [channel.public_id])
    post_now(sent, coordinator)
    waiting = create_post(
        new_york,
        coordinator,
        [appeal.public_id],
        clock.now + timedelta(days=7),
        [channel.public_id],
    )
    schedule_post(waiting, coordinator)
    db.session.commit()
    drain(app)
    remote = _deliveries(sent)["fake"].remote_id
    withdraw_appeal(appeal, coordinator, "The suspect was identified as a minor.")
    db.session.commit()
    drain(app)
    after = _deliveries(sent)
    assert after["fake"].status == "removed" and after["fake"].removed_at is not None
    assert after["portal"].status == "removed"
    assert world.deleted == [remote]
    assert {d.status for d in _deliveries(waiting).values()} == {"cancelled"}
    db.session.refresh(waiting)
    assert waiting.status == "cancelled"


def test_revoked_approval_takes_the_posts_of_its_appeals_down(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock, fake: tuple[Channel, World]
) -> None:
    channel, world = fake
    coordinator = users[Role.COORDINATOR]
    appeal = stored_appeal(new_york, users, "P-1", "First")
    post = create_post(new_york, coordinator, [appeal.public_id], clock.now, [channel.public_id])
    post_now(post, coordinator)
    db.session.commit()
    drain(app)
    revoke_approval(appeal.clips[0].version, users[Role.SUPERVISOR], "A bystander's face shows.")
    db.session.commit()
    drain(app)
    assert _deliveries(post)["fake"].status == "removed"
    assert len(world.deleted) == 1


def test_remove_expired_posts_after_the_agencys_retention(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock, fake: tuple[Channel, World]
) -> None:
    channel, world = fake
    coordinator = users[Role.COORDINATOR]
    appeal = stored_appeal(new_york, users, "P-1", "First")
    post = create_post(new_york, coordinator, [appeal.public_id], clock.now, [channel.public_id])
    post_now(post, coordinator)
    db.session.commit()
    drain(app)
    new_york.remove_posts_after_days = 30
    db.session.commit()
    assert remove_expired_posts(clock.now + timedelta(days=29)) == 0
    assert remove_expired_posts(clock.now + timedelta(days=30)) == 1
    db.session.commit()
    drain(app)
    by_network = _deliveries(post)
    assert by_network["fake"].status == "removed"
    assert by_network["portal"].status == "sent"  # the appeal page stays while published
    assert len(world.deleted) == 1


def test_cli_publish_due_at_an_instant(
    app: Flask,
    cli: FlaskCliRunner,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    fake: tuple[Channel, World],
) -> None:
    channel, _ = fake
    appeal = stored_appeal(new_york, users, "P-1", "First")
    slot = clock.now + timedelta(days=1)
    post = create_post(
        new_york, users[Role.COORDINATOR], [appeal.public_id], slot, [channel.public_id]
    )
    schedule_post(post, users[Role.COORDINATOR])
    db.session.commit()
    early = cli.invoke(
        args=["posts", "publish-due", "--at", (slot - timedelta(seconds=1)).isoformat()]
    )
    assert early.exit_code == 0 and "posts started: 0" in early.output
    due = cli.invoke(args=["posts", "publish-due", "--at", slot.isoformat().replace("+00:00", "Z")])
    assert due.exit_code == 0, due.output
    assert "posts started: 1, deliveries queued: 2" in due.output
    again = cli.invoke(args=["posts", "publish-due", "--at", slot.isoformat()])
    assert "posts started: 0, deliveries queued: 2" in again.output
    assert len(db.session.scalars(select(Job).where(Job.name == "publishing.deliver")).all()) == 2
    for bad in ("next tuesday", "2027-03-02T10:00:00"):
        refused = cli.invoke(args=["posts", "publish-due", "--at", bad])
        assert refused.exit_code == 2


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
