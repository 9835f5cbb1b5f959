"""The delivery engine against a fake network that fails in every way the adapter
interface names: what each failure leaves on the delivery, and that nothing is ever
posted twice or left where no person can act on it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.execution import execute_job, requeue_stale_jobs
from portal.models import Agency, AuditEvent, Job, Role, User
from portal.publishing.models import Channel, Delivery, Post
from portal.publishing.services.deliveries import (
    BACKOFF_BASE_S,
    MAX_ATTEMPTS,
    UNKNOWN_KEY,
    publish_due,
)
from portal.publishing.services.posts import (
    create_post,
    mark_delivery_sent,
    retry_delivery,
    schedule_post,
)
from portal.services.errors import Conflict, PermissionDenied, ValidationFailed
from tests.portal.publishing.conftest import (
    Clock,
    World,
    drain,
    fake_channel,
    rendition_of,
    stored_appeal,
)


@pytest.fixture
def setup(
    app: Flask, new_york: Agency, users: dict[Role, User], coordinator: User, clock: Clock
) -> Callable[..., tuple[Post, Delivery, World]]:
    """A scheduled post to one fake channel, due at the clock's time + 1 hour."""

    def build(*faults: str, find_faults: tuple[str, ...] = ()) -> tuple[Post, Delivery, World]:
        appeal = stored_appeal(new_york, users, "T-1", "Who took the bike?")
        channel, world = fake_channel(new_york, "Fake")
        world.faults.extend(faults)
        world.find_faults.extend(find_faults)
        slot = clock.now + timedelta(hours=1)
        post = create_post(new_york, coordinator, [appeal.public_id], slot, [channel.public_id])
        schedule_post(post, coordinator)
        db.session.commit()
        clock.now = slot
        delivery = next(d for d in post.deliveries if d.channel_id == channel.id)
        return post, delivery, world

    return build


def _tick(app: Flask, clock: Clock, after: timedelta = timedelta(0)) -> None:
    clock.now += after
    publish_due(clock.now)
    drain(app)


def test_delivery_sends_once_with_the_rendition_from_the_store(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    post, delivery, world = setup()
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    assert delivery.remote_url == f"https://fake.example/{delivery.public_id}"
    assert delivery.sent_at == clock.now
    [landed] = world.landed()
    assert landed["text"].startswith("#TattletaleTuesday fake: Who took the bike?")
    assert world.media_seen == [rendition_of(post.appeals[0].appeal).sha256]
    db.session.refresh(post)
    assert post.status == "done"
    # The portal's own channel went too, with the appeal page as its link.
    portal = next(d for d in post.deliveries if d.channel.network == "portal")
    assert portal.status == "sent" and portal.remote_url.endswith(
        f"/appeals/{post.appeals[0].appeal.public_id}"
    )
    _tick(app, clock, timedelta(minutes=1))
    assert len(world.landed()) == 1 and world.publish_calls == 1


def test_delivery_retries_a_transient_failure_with_backoff_then_sends(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    post, delivery, world = setup("transient", "transient")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "retrying" and delivery.reason == "fake answered 503"
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=BACKOFF_BASE_S)
    _tick(app, clock, timedelta(seconds=30))  # not yet
    db.session.refresh(delivery)
    assert delivery.status == "retrying" and world.publish_calls == 1
    _tick(app, clock, timedelta(seconds=30))
    db.session.refresh(delivery)
    assert delivery.status == "retrying" and delivery.attempts == 2
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=2 * BACKOFF_BASE_S)
    _tick(app, clock, timedelta(seconds=2 * BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "sent" and delivery.attempts == 3
    assert len(world.landed()) == 1


def test_delivery_stores_credentials_the_network_rotated_even_when_the_call_failed(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    post, delivery, world = setup("rotate_then_transient")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "retrying"
    channel = db.session.get(Channel, delivery.channel_id)
    assert channel is not None
    db.session.refresh(channel)
    assert json.loads(channel.credentials) == {"token": "good", "refresh": "r2"}
    # Encrypted at rest like the rest of the credentials.
    raw = db.session.execute(
        sa.text("SELECT credentials FROM channels WHERE id = :id"), {"id": channel.id}
    ).scalar_one()
    assert "r2" not in raw
    _tick(app, clock, timedelta(seconds=BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "sent" and len(world.landed()) == 1


def test_delivery_waits_for_the_networks_rate_limit_reset(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    _, delivery, world = setup("429")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "retrying"
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=900)
    _tick(app, clock, timedelta(seconds=899))
    assert world.publish_calls == 1
    _tick(app, clock, timedelta(seconds=1))
    db.session.refresh(delivery)
    assert delivery.status == "sent" and world.publish_calls == 2


def test_delivery_resumes_from_the_stored_step_without_uploading_again(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    _, delivery, world = setup("transient_after_upload")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "retrying"
    assert delivery.step == "uploaded" and delivery.state["media_id"] == "m1"
    _tick(app, clock, timedelta(seconds=BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    assert world.uploads == 1 and world.landed()[0]["media_id"] == "m1"


def test_delivery_gives_up_after_bounded_attempts_with_the_reason(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    post, delivery, world = setup(*["transient"] * MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS):
        _tick(app, clock, timedelta(hours=2))
    db.session.refresh(delivery)
    assert delivery.status == "failed"
    assert delivery.reason == f"Gave up after {MAX_ATTEMPTS} attempts: fake answered 503"
    assert world.publish_calls == MAX_ATTEMPTS and world.landed() == []
    _tick(app, clock, timedelta(hours=2))
    assert world.publish_calls == MAX_ATTEMPTS  # no loop
    db.session.refresh(post)
    assert post.status == "done"


def test_delivery_after_a_lost_answer_finds_the_post_instead_of_posting_again(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    _, delivery, world = setup("accepted_then_timeout")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "retrying"
    assert delivery.state[UNKNOWN_KEY] == "fake did not answer (ReadTimeout)"
    _tick(app, clock, timedelta(seconds=BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "sent" and delivery.remote_id == f"p-{delivery.public_id}"
    assert world.find_calls == 1 and world.publish_calls == 1
    assert len(world.landed()) == 1


def test_delivery_publishes_again_when_the_network_certainly_has_nothing(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    _, delivery, world = setup("timeout_before")
    _tick(app, clock)
    _tick(app, clock, timedelta(seconds=BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    assert world.find_calls == 1 and world.publish_calls == 2 and len(world.landed()) == 1
    assert UNKNOWN_KEY not in delivery.state


def test_delivery_that_the_network_cannot_find_waits_for_a_person(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    post, delivery, world = setup("accepted_then_timeout", find_faults=("cannot_tell",))
    _tick(app, clock)
    _tick(app, clock, timedelta(seconds=BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "needs_attention"
    assert "cannot tell" in delivery.reason and "Look on the account" in delivery.reason
    for _ in range(3):
        _tick(app, clock, timedelta(hours=2))
    assert world.publish_calls == 1 and len(world.landed()) == 1  # never re-posted
    db.session.refresh(post)
    assert post.status == "done"


def test_delivery_treats_an_adapter_bug_after_the_call_as_an_unknown_outcome(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    _, delivery, world = setup("accepted_then_crash")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "retrying"
    assert "ValueError: fake answered garbage" in delivery.reason
    _tick(app, clock, timedelta(seconds=BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "sent" and len(world.landed()) == 1


def test_delivery_credential_refused_fails_marks_the_channel_and_stops(
    app: Flask,
    setup: Callable[..., tuple[Post, Delivery, World]],
    clock: Clock,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
) -> None:
    post, delivery, world = setup("credential")
    # The next week's post to the same channel, scheduled already.
    other = stored_appeal(new_york, users, "T-2", "Second")
    later = create_post(
        new_york,
        coordinator,
        [other.public_id],
        clock.now + timedelta(days=7),
        [delivery.channel.public_id],
    )
    schedule_post(later, coordinator)
    db.session.commit()
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "failed"
    assert delivery.reason.startswith("fake says the token expired")
    channel = db.session.get(Channel, delivery.channel_id)
    assert channel is not None
    assert channel.status == "needs_reconnect"
    assert channel.status_reason == "fake says the token expired"
    # The next post to that channel fails at its claim, without a call to the network.
    _tick(app, clock, timedelta(days=7))
    assert world.publish_calls == 1
    refused = next(d for d in later.deliveries if d.channel_id == channel.id)
    db.session.refresh(refused)
    assert refused.status == "failed"
    assert refused.reason.startswith("The channel Fake must be connected again")
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"delivery.sending", "delivery.failed", "channel.needs_reconnect"} <= actions


def test_delivery_rejected_fails_with_the_networks_reason(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    _, delivery, world = setup("rejected")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "failed"
    assert delivery.reason == "fake refused the video: longer than 140 s"
    _tick(app, clock, timedelta(hours=3))
    assert world.publish_calls == 1


def test_delivery_of_a_stalled_worker_is_taken_over_and_the_stale_run_writes_nothing(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    _, delivery, world = setup("gate")
    publish_due(clock.now)
    job = db.session.scalar(
        select(Job).where(Job.name == "publishing.deliver", Job.subject_id == delivery.id)
    )
    assert job is not None
    out: dict[str, str] = {}

    def stalled() -> None:
        with app.app_context():
            out["a"] = execute_job(job.id, "worker-a")

    thread = threading.Thread(target=stalled)
    thread.start()
    assert world.gate_entered.wait(10)
    # Worker A looks dead: the reaper gives its job back, worker B runs it.
    assert requeue_stale_jobs(timedelta(0)) == [job.id]
    assert execute_job(job.id, "worker-b") == "succeeded"
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    assert world.find_calls == 1  # B did not know whether A had posted: it looked first
    world.gate_release.set()
    thread.join(10)
    # A's upload was already on its way; storing its id matched nothing, so A stopped
    # there and never created a post.
    assert out["a"] == "lost"
    assert world.uploads == 2 and len(world.landed()) == 1
    assert world.landed()[0]["media_id"] == "m1"  # B's upload (B went first)
    db.session.refresh(delivery)
    assert delivery.status == "sent" and delivery.claim_token == ""


def test_delivery_a_person_found_is_marked_sent_and_never_sent_again(
    app: Flask,
    setup: Callable[..., tuple[Post, Delivery, World]],
    clock: Clock,
    users: dict[Role, User],
) -> None:
    _, delivery, world = setup("accepted_then_timeout", find_faults=("cannot_tell",))
    _tick(app, clock)
    _tick(app, clock, timedelta(seconds=BACKOFF_BASE_S))
    db.session.refresh(delivery)
    assert delivery.status == "needs_attention"
    with pytest.raises(ValidationFailed):
        mark_delivery_sent(delivery, users[Role.COORDINATOR], "javascript:alert(1)")
    mark_delivery_sent(delivery, users[Role.COORDINATOR], "https://fake.example/found-it")
    db.session.commit()
    with pytest.raises(Conflict):
        retry_delivery(delivery, users[Role.COORDINATOR])
    _tick(app, clock, timedelta(hours=1))
    db.session.refresh(delivery)
    assert delivery.status == "sent" and delivery.remote_url == "https://fake.example/found-it"
    assert world.publish_calls == 1 and len(world.landed()) == 1


def test_delivery_failed_for_credentials_is_sent_after_a_reconnect_and_a_retry(
    app: Flask,
    setup: Callable[..., tuple[Post, Delivery, World]],
    clock: Clock,
    users: dict[Role, User],
) -> None:
    post, delivery, world = setup("credential")
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "failed"
    coordinator = users[Role.COORDINATOR]
    with pytest.raises(Conflict, match="Connect Fake again first"):
        retry_delivery(delivery, coordinator)
    db.session.rollback()
    with pytest.raises(PermissionDenied):
        retry_delivery(delivery, users[Role.OFFICER])
    channel = db.session.get(Channel, delivery.channel_id)
    assert channel is not None
    channel.status = "connected"  # an admin connected it again (the channels pages)
    db.session.commit()
    retry_delivery(delivery, coordinator)
    db.session.commit()
    drain(app)
    db.session.refresh(delivery)
    db.session.refresh(post)
    assert delivery.status == "sent" and post.status == "done"
    assert world.publish_calls == 2 and len(world.landed()) == 1


def test_delivery_job_that_gives_up_leaves_it_for_a_person_not_sending(
    app: Flask,
    setup: Callable[..., tuple[Post, Delivery, World]],
    clock: Clock,
    users: dict[Role, User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from portal.publishing.services import deliveries

    _, delivery, world = setup()
    publish_due(clock.now)
    job = db.session.scalar(
        select(Job).where(Job.name == "publishing.deliver", Job.subject_id == delivery.id)
    )
    assert job is not None
    job.max_attempts = 1
    db.session.commit()

    def broken(*args: object) -> str:
        raise RuntimeError("the database went away mid-attempt")

    working = deliveries._attempt
    monkeypatch.setattr(deliveries, "_attempt", broken)
    assert execute_job(job.id, "w1") == "failed"
    db.session.refresh(delivery)
    # It was claimed (sending) when the engine failed: whether it went out is unknown.
    assert delivery.status == "needs_attention" and delivery.claim_token == ""
    assert "the database went away mid-attempt" in delivery.reason
    assert world.publish_calls == 0
    # The person looked, found nothing on the account, and sends it again.
    monkeypatch.setattr(deliveries, "_attempt", working)
    retry_delivery(delivery, users[Role.COORDINATOR])
    db.session.commit()
    drain(app)
    db.session.refresh(delivery)
    assert delivery.status == "sent" and world.created == [delivery.public_id]


def test_publishing_jobs_and_periodic_tasks_are_found_by_the_app(app: Flask) -> None:
    from portal.jobs.periodic import all_periodic
    from portal.jobs.registry import all_job_names

    assert {
        "publishing.deliver",
        "publishing.solved",
        "publishing.remove",
        "publishing.alert",
    } <= set(all_job_names())
    every = {task.name: task.interval_s for task in all_periodic()}
    assert every["publishing.publish_due"] == 60
    assert every["publishing.remove_expired"] == 3600


def test_delivery_whose_outcome_could_not_be_recorded_is_found_not_sent_again(
    app: Flask,
    setup: Callable[..., tuple[Post, Delivery, World]],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import OperationalError

    from portal.publishing.services import deliveries

    _, delivery, world = setup()
    real_sent = deliveries._sent
    failures = [OperationalError("UPDATE deliveries", {}, Exception("disk I/O error"))]

    def sent_once_failing(attempt: deliveries._Attempt, *args: object, **kwargs: object) -> str:
        if attempt.network == "fake" and failures:
            raise failures.pop()
        return real_sent(attempt, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(deliveries, "_sent", sent_once_failing)
    # The network took the post; recording it failed; the job's retry takes the row
    # over, asks the network, and finds it.
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    assert world.created == [delivery.public_id] and world.find_calls == 1


def test_delivery_whose_rendition_left_the_store_fails_without_a_call(
    app: Flask, setup: Callable[..., tuple[Post, Delivery, World]], clock: Clock
) -> None:
    from portal.services.storage import get_store

    post, delivery, world = setup()
    get_store().delete(rendition_of(post.appeals[0].appeal).storage_key)
    _tick(app, clock)
    db.session.refresh(delivery)
    assert delivery.status == "failed" and delivery.reason
    assert world.publish_calls == 0
