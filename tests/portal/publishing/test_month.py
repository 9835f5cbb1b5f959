"""A month of #TattletaleTuesday with a controlled clock.

Five weekly posts, Tuesdays 10:00 in New York, across the start of daylight-saving
time (Sunday 14 March 2027), to four channels: the portal itself, two fake networks
that fail in a different documented way each week (a 503, a 429 with its reset time,
a timeout after the network took the post, a timeout before it did, an answer the
adapter chokes on, a failure after the upload), and a real webhook receiver on
loopback (a 500, an answer lost after it took the event). Two workers run the jobs;
every scheduler tick is sent twice (a beat restarted within the minute), by the
periodic task, by the engine directly, or by the operator's CLI. Then every case is
solved. Every post lands on every channel exactly once, at its slot, with its own
appeal's rendition, and every post gets its "SOLVED" update once.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.periodic import enqueue_due_ticks
from portal.models import Agency, Role, User
from portal.publishing.models import Delivery, Post
from portal.publishing.services.deliveries import publish_due
from portal.publishing.services.posts import create_post, schedule_post
from portal.services.case_life import Solution, solve_case
from tests.portal.publishing.conftest import (
    Clock,
    drain,
    fake_channel,
    rendition_of,
    stored_appeal,
    webhook_channel,
)
from tests.portal.publishing.receiver import WebhookReceiver

NEW_YORK = ZoneInfo("America/New_York")
TUESDAYS = [2, 9, 16, 23, 30]  # March 2027
# 10:00 in New York, written out: EST (UTC-5) before 14 March, EDT (UTC-4) after.
EXPECTED_UTC = {
    2: datetime(2027, 3, 2, 15, 0, tzinfo=UTC),
    9: datetime(2027, 3, 9, 15, 0, tzinfo=UTC),
    16: datetime(2027, 3, 16, 14, 0, tzinfo=UTC),
    23: datetime(2027, 3, 23, 14, 0, tzinfo=UTC),
    30: datetime(2027, 3, 30, 14, 0, tzinfo=UTC),
}
# What each fake network does on each Tuesday (one fault per publish call).
FAULTS_A = {
    2: ["transient"],
    9: ["429"],
    16: ["accepted_then_timeout"],
    23: ["transient_after_upload"],
    30: [],
}
FAULTS_B = {
    2: [],
    9: ["accepted_then_timeout"],
    16: ["timeout_before"],
    23: ["crash_before", "accepted_then_crash"],
    30: [],
}
FAULTS_HOOK = {2: ["500"], 9: [], 16: ["slow"], 23: [], 30: ["500", "500"]}


def _minute_ceiling(moment: datetime) -> datetime:
    seconds = math.ceil(moment.timestamp() / 60) * 60
    return datetime.fromtimestamp(seconds, UTC)


def _tick(app: Flask, cli: FlaskCliRunner, clock: Clock, at: datetime, how: int) -> None:
    """One scheduler minute, sent twice (a beat restarted within it), then the workers."""
    clock.now = at
    if how % 3 == 0:
        enqueue_due_ticks(at)  # the periodic task's tick row...
        enqueue_due_ticks(at)  # ...and the restarted beat's: the same row
    elif how % 3 == 1:
        publish_due(at)
        publish_due(at)
    else:
        for _ in range(2):
            result = cli.invoke(args=["posts", "publish-due", "--at", at.isoformat()])
            assert result.exit_code == 0, result.output
    drain(app, workers=2)


def test_month_of_weekly_posts_goes_out_exactly_once_across_daylight_saving(
    app: Flask,
    cli: FlaskCliRunner,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    receiver: WebhookReceiver,
) -> None:
    channel_a, world_a = fake_channel(new_york, "Fake A")
    channel_b, world_b = fake_channel(new_york, "Fake B")
    hook = webhook_channel(new_york, receiver)
    posts: dict[int, Post] = {}
    appeals = {}
    for day in TUESDAYS:
        appeal = stored_appeal(new_york, users, f"T-{day}", f"Appeal of March {day}")
        appeals[day] = appeal
        slot = datetime(2027, 3, day, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)
        assert slot == EXPECTED_UTC[day]
        post = create_post(
            new_york,
            coordinator,
            [appeal.public_id],
            slot,
            [channel_a.public_id, channel_b.public_id, hook.public_id],
        )
        schedule_post(post, coordinator)
        db.session.commit()
        posts[day] = post

    how = 0
    for day in TUESDAYS:
        post, slot = posts[day], EXPECTED_UTC[day]
        world_a.faults[:] = FAULTS_A[day]
        world_b.faults[:] = FAULTS_B[day]
        receiver.faults[:] = FAULTS_HOOK[day]
        # A minute early: nothing of it moves.
        _tick(app, cli, clock, slot - timedelta(minutes=1), how)
        db.session.refresh(post)
        assert post.status == "scheduled"
        assert all(d.attempts == 0 for d in post.deliveries)
        at = slot
        for _ in range(12):
            how += 1
            _tick(app, cli, clock, at, how)
            db.session.refresh(post)
            if post.status == "done":
                break
            waiting = [
                d.next_attempt_at
                for d in db.session.scalars(select(Delivery).where(Delivery.post_id == post.id))
                if d.status == "retrying" and d.next_attempt_at is not None
            ]
            assert waiting, [(d.status, d.reason) for d in post.deliveries]
            at = _minute_ceiling(min(waiting))
        assert post.status == "done", [
            (d.channel.name, d.status, d.reason) for d in post.deliveries
        ]
        for delivery in post.deliveries:
            db.session.refresh(delivery)
            assert delivery.status == "sent", (day, delivery.channel.name, delivery.reason)
            assert delivery.sent_at is not None and delivery.sent_at >= slot
        # Those that met no fault went out in the slot's own minute.
        clean = {"portal"}
        clean |= set() if FAULTS_A[day] else {"Fake A"}
        clean |= set() if FAULTS_B[day] else {"Fake B"}
        for delivery in post.deliveries:
            name = "portal" if delivery.channel.network == "portal" else delivery.channel.name
            if name in clean:
                assert delivery.sent_at == slot, (day, name)

    # Every post on every channel exactly once, with its own appeal's rendition.
    for channel, world in ((channel_a, world_a), (channel_b, world_b)):
        assert len(world.landed()) == len(TUESDAYS)
        for day in TUESDAYS:
            key = next(d.public_id for d in posts[day].deliveries if d.channel_id == channel.id)
            assert world.posts[key]["media_sha"] == rendition_of(appeals[day]).sha256
            assert f"Appeal of March {day}" in world.posts[key]["text"]
    published = receiver.published()
    assert len(published) == len(TUESDAYS) and receiver.refused == []
    for day in TUESDAYS:
        key = next(d.public_id for d in posts[day].deliveries if d.channel_id == hook.id)
        assert receiver.events[key]["media"]["sha256"] == rendition_of(appeals[day]).sha256
    # The lost answer was sent again with the same event id; the receiver kept one.
    assert len(receiver.deliveries) > len(receiver.events)

    # The cases are solved: every post gets its update, once.
    for day in TUESDAYS:
        solve_case(
            appeals[day].case, users[Role.OFFICER], reason="Arrested.", solution=Solution(False)
        )
    db.session.commit()
    drain(app, workers=2)
    drain(app, workers=2)
    for world in (world_a, world_b):
        assert sorted(remote for remote, _ in world.updates) == sorted(
            p["id"] for p in world.landed()
        )
        assert all(text.startswith("SOLVED — thank you") for _, text in world.updates)
    updated = [e for e in receiver.events.values() if e["type"] == "post.updated"]
    assert len(updated) == len(TUESDAYS)
    for day in TUESDAYS:
        for delivery in posts[day].deliveries:
            db.session.refresh(delivery)
            assert delivery.solved_at is not None, (day, delivery.channel.name)
