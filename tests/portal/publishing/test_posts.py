"""Posts: what may be put in one, scheduling through preflight, sending now,
cancelling, a withdrawn or revoked appeal taken down, the agency's retention, the
operator's command, and the coordinators' alert mail."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, AppealStatus, Job, Role, User
from portal.publishing.channels.registry import register
from portal.publishing.models import Channel, Delivery, Post
from portal.publishing.services.deliveries import publish_due
from portal.publishing.services.followups import SOLVING_KEY
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
from tests.portal.publishing.conftest import (
    Clock,
    FakeNetwork,
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


@register
class UndeletableNetwork(FakeNetwork):
    """A network whose API has no deletion (as some do not)."""

    network: ClassVar[str] = "fake_undeletable"
    can_delete: ClassVar[bool] = False


def test_withdrawn_appeal_on_a_network_without_deletion_waits_for_a_person(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock
) -> None:
    channel, world = fake_channel(new_york, "Undeletable")
    channel.network = "fake_undeletable"
    db.session.commit()
    coordinator = users[Role.COORDINATOR]
    appeal = stored_appeal(new_york, users, "P-1", "First")
    post = create_post(new_york, coordinator, [appeal.public_id], clock.now, [channel.public_id])
    post_now(post, coordinator)
    db.session.commit()
    drain(app)
    withdraw_appeal(appeal, coordinator, "Identified.")
    db.session.commit()
    drain(app)
    stuck = _deliveries(post)["fake_undeletable"]
    assert stuck.status == "needs_attention"
    assert stuck.reason.startswith("fake_undeletable does not let an app delete posts")
    assert stuck.remote_url in stuck.reason and world.deleted == []


def test_solved_case_cancels_its_waiting_post_before_it_goes(
    app: Flask, new_york: Agency, users: dict[Role, User], clock: Clock, fake: tuple[Channel, World]
) -> None:
    from portal.services.case_life import Solution, solve_case

    channel, world = fake
    coordinator = users[Role.COORDINATOR]
    appeal = stored_appeal(new_york, users, "P-1", "First")
    waiting = create_post(
        new_york,
        coordinator,
        [appeal.public_id],
        clock.now + timedelta(days=1),
        [channel.public_id],
    )
    schedule_post(waiting, coordinator)
    db.session.commit()
    solve_case(appeal.case, users[Role.OFFICER], reason="Arrested.", solution=Solution(False))
    db.session.commit()
    assert {d.status for d in _deliveries(waiting).values()} == {"cancelled"}
    db.session.refresh(waiting)
    assert waiting.status == "cancelled" and waiting.status_reason == "Case P-1 was solved."
    clock.now += timedelta(days=1)
    publish_due(clock.now)
    drain(app)
    assert world.publish_calls == 0


@pytest.mark.parametrize("fault", ["timeout_after", "credential"])
def test_solved_update_is_never_replied_twice(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    fake: tuple[Channel, World],
    fault: str,
) -> None:
    from portal.services.case_life import Solution, solve_case

    channel, world = fake
    coordinator = users[Role.COORDINATOR]
    appeal = stored_appeal(new_york, users, "P-1", "First")
    post = create_post(new_york, coordinator, [appeal.public_id], clock.now, [channel.public_id])
    post_now(post, coordinator)
    db.session.commit()
    drain(app)
    world.update_faults[:] = [fault]
    solve_case(appeal.case, users[Role.OFFICER], reason="Arrested.", solution=Solution(False))
    db.session.commit()
    drain(app)
    delivery = _deliveries(post)["fake"]
    job = db.session.scalar(
        select(Job).where(Job.name == "publishing.solved", Job.subject_id == delivery.id)
    )
    assert job is not None
    if fault == "timeout_after":
        # The reply may be there: recorded as done, not sent again.
        assert delivery.solved_at is not None and delivery.solved_url == ""
        assert len(world.updates) == 1 and job.status == "succeeded"
    else:
        # Refused: nothing went out, the channel asks for a reconnect, the job says why.
        assert delivery.solved_at is None and world.updates == []
        assert job.status == "failed" and job.error == "fake says the token expired"
        assert delivery.channel.status == "needs_reconnect"
        assert SOLVING_KEY not in delivery.state  # a later retry may send it


def test_schedule_post_refuses_a_second_post_past_the_networks_daily_cap(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    clock: Clock,
    fake: tuple[Channel, World],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from portal.publishing.limits import LIMITS, Limit, NetworkLimits

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
    channel, _ = fake
    coordinator = users[Role.COORDINATOR]
    first = stored_appeal(new_york, users, "P-1", "First")
    second = stored_appeal(new_york, users, "P-2", "Second")
    slot = clock.now + timedelta(days=1)
    schedule_post(
        create_post(new_york, coordinator, [first.public_id], slot, [channel.public_id]),
        coordinator,
    )
    db.session.commit()
    crowded = create_post(
        new_york, coordinator, [second.public_id], slot + timedelta(hours=2), [channel.public_id]
    )
    with pytest.raises(PreflightRefused) as refused:
        schedule_post(crowded, coordinator)
    [problem] = refused.value.problems
    assert problem.startswith("Fake: Fake already has 1 posts within 24 hours of this time")
    db.session.rollback()
    spaced = create_post(
        new_york, coordinator, [second.public_id], slot + timedelta(days=1), [channel.public_id]
    )
    assert schedule_post(spaced, coordinator).status == "scheduled"
