"""Publishing's test fixtures: a controlled clock, a fake network that fails in every
way the adapter interface names, a webhook receiver on loopback, and published
appeals whose renditions are really in the store.

The fake network is registered here only (network ``"fake"``). It keeps its own
"server side" (``World``): the posts it holds, by the key each delivery sends, so a
test can count what landed on the network independently of what the database says.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.execution import execute_job
from portal.models import Agency, Appeal, Job, JobStatus, Rendition, Role, User
from portal.models.base import utcnow
from portal.publishing.channels.base import (
    CapReached,
    CredentialError,
    Draft,
    OutcomeUnknown,
    Published,
    RejectedError,
    Reply,
    ReplyPage,
    Steps,
    TransientError,
)
from portal.publishing.channels.base import (
    Channel as Adapter,
)
from portal.publishing.channels.registry import register
from portal.publishing.models import Channel
from portal.services.clips import renditions_digest
from portal.services.storage import get_store
from tests.portal.conftest import listed_appeal
from tests.portal.publishing.receiver import WebhookReceiver

# -- the fake network ---------------------------------------------------------------------


@dataclass
class World:
    """The network's side: what it holds and what it will do next."""

    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # every create call that landed
    # Faults for the next publish calls, one consumed per call ("ok" for none).
    faults: list[str] = field(default_factory=list)
    find_faults: list[str] = field(default_factory=list)
    update_faults: list[str] = field(default_factory=list)
    uploads: int = 0
    publish_calls: int = 0
    find_calls: int = 0
    updates: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    media_seen: list[str] = field(default_factory=list)
    # Replies under the posts, oldest first (by remote id of the post), as a network
    # lists them: pages of ``page_size``, a cursor that is the index after the last.
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    reply_faults: list[str] = field(default_factory=list)
    page_size: int = 100
    list_calls: int = 0
    hidden: list[str] = field(default_factory=list)
    answers: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The "gate" fault: the call stops here until the test lets it go.
    gate_entered: threading.Event = field(default_factory=threading.Event)
    gate_release: threading.Event = field(default_factory=threading.Event)

    def landed(self) -> list[dict[str, Any]]:
        """What the network shows; a key posted twice shows twice."""
        return [self.posts[key] for key in self.created]


WORLDS: dict[str, World] = {}


@register
class FakeNetwork(Adapter):
    """Two calls per post, like the real networks: upload the media (its id stored
    through ``steps``), then create the post."""

    network: ClassVar[str] = "fake"
    edits_in_place: ClassVar[bool] = False
    can_delete: ClassVar[bool] = True

    @property
    def world(self) -> World:
        return WORLDS[str(self.settings["world"])]

    def _fault(self, queue: list[str]) -> str:
        with self.world.lock:
            return queue.pop(0) if queue else "ok"

    def test_connection(self) -> str:
        return "fake account"

    def publish(self, draft: Draft, steps: Steps) -> Published:
        world = self.world
        fault = self._fault(world.faults)
        world.publish_calls += 1
        if self.credentials.get("token") != "good":
            raise CredentialError("fake refused the channel's credentials")
        if fault == "transient":
            raise TransientError("fake answered 503")
        if fault == "rotate_then_transient":
            # The network renewed the token (single use) and then failed the call.
            self.updated_credentials = {"token": "good", "refresh": "r2"}
            raise TransientError("fake answered 503 after renewing the token")
        if fault == "429":
            raise TransientError("fake rate limit reached", retry_after=900)
        if fault == "credential":
            raise CredentialError("fake says the token expired")
        if fault == "rejected":
            raise RejectedError("fake refused the video: longer than 140 s")
        if fault == "timeout_before":
            raise OutcomeUnknown("fake did not answer (ReadTimeout)")
        if fault == "gate":
            world.gate_entered.set()
            assert world.gate_release.wait(10), "the test never let the call go"
        if "media_id" not in steps.state:
            digest = ""
            if draft.media is not None:
                digest = hashlib.sha256(Path(draft.media.path).read_bytes()).hexdigest()
                assert digest == draft.media.sha256, "the file sent is not the rendition"
                world.media_seen.append(digest)
            world.uploads += 1
            steps.save("uploaded", media_id=f"m{world.uploads}", media_sha=digest)
        if fault == "transient_after_upload":
            raise TransientError("fake answered 502 to the post")
        if fault == "cap":
            # The network's own count (posts made in its app included), before posting.
            raise CapReached("fake says the account posted 25 of 25 today")
        if fault == "crash_before":
            raise RuntimeError("the adapter has a bug")
        with world.lock:
            # A second create is recorded, not refused: the networks would show both.
            world.created.append(draft.key)
            world.posts[draft.key] = {
                "id": f"p-{draft.key}",
                "text": draft.text,
                "media_id": steps.state["media_id"],
                "media_sha": steps.state["media_sha"],
                "link": draft.link,
            }
        if fault == "accepted_then_timeout":
            raise OutcomeUnknown("fake did not answer (ReadTimeout)")
        if fault == "accepted_then_crash":
            raise ValueError("fake answered garbage")
        return Published(remote_id=f"p-{draft.key}", url=f"https://fake.example/{draft.key}")

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        world = self.world
        world.find_calls += 1
        if self._fault(world.find_faults) == "cannot_tell":
            raise OutcomeUnknown("fake's search is down")
        found = world.posts.get(draft.key)
        if found is None:
            return None
        return Published(remote_id=found["id"], url=f"https://fake.example/{draft.key}")

    def update(self, published: Published, text: str) -> Published:
        fault = self._fault(self.world.update_faults)
        if fault == "credential":
            raise CredentialError("fake says the token expired")
        self.world.updates.append((published.remote_id, text))
        if fault == "timeout_after":
            raise OutcomeUnknown("fake did not answer (ReadTimeout)")
        return Published(remote_id=f"r-{published.remote_id}", url=f"{published.url}#solved")

    def delete(self, published: Published) -> None:
        self.world.deleted.append(published.remote_id)

    lists_replies: ClassVar[bool] = True
    can_hide_replies: ClassVar[bool] = True
    can_delete_replies: ClassVar[bool] = False
    can_answer_replies: ClassVar[bool] = True

    def list_replies(self, published: Published, cursor: Any) -> ReplyPage:
        world = self.world
        fault = self._fault(world.reply_faults)
        world.list_calls += 1
        if fault == "429":
            raise TransientError("fake rate limit reached", retry_after=900)
        if fault == "credential":
            raise CredentialError("fake says the token expired")
        if fault == "garbage":
            raise KeyError("data")  # what a parser does with an answer it never expected
        start = int(cursor or 0)
        if fault == "forever":
            return ReplyPage(replies=[], cursor=cursor, more=True)
        with world.lock:
            replies = list(world.replies.get(published.remote_id, []))
        page = replies[start : start + world.page_size]
        end = start + len(page)
        return ReplyPage(replies=page, cursor=end, more=end < len(replies))

    def look_up_replies(self, published: Published, remote_ids: list[str]) -> dict[str, Reply]:
        assert len(remote_ids) <= 25
        with self.world.lock:
            now = {r.remote_id: r for r in self.world.replies.get(published.remote_id, [])}
        return {rid: now[rid] for rid in remote_ids if rid in now}

    def hide_reply(self, published: Published, remote_id: str) -> None:
        self.world.hidden.append(remote_id)

    def answer_reply(self, published: Published, remote_id: str, text: str) -> Published:
        self.world.answers.append((remote_id, text))
        return Published(remote_id=f"a-{remote_id}", url=f"https://fake.example/a-{remote_id}")


# -- the clock ------------------------------------------------------------------------------


class Clock:
    """The publishing services' ``utcnow``, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from portal.publishing.services import deliveries, followups, posts, replies

    clock = Clock(datetime(2027, 2, 24, 12, 0, tzinfo=UTC))
    for module in (deliveries, followups, posts, replies):
        monkeypatch.setattr(module, "utcnow", clock)
    return clock


# -- preflight ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def preflight(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """Preflight by its contract, ``prepare_delivery(network, appeals, agency) ->
    Prepared(text, rendition_id)`` or ``PreflightFailed(problems)``: the fake network
    is not one the real limits know. Returns the networks it was asked about. A test
    that asks for ``real_preflight`` gets pub-plan's preflight itself."""
    from portal.publishing import preflight as module

    asked: list[str] = []
    if "real_preflight" in request.fixturenames:
        yield asked
        return

    def prepare_delivery(network: str, appeals: list[Appeal], agency: Agency) -> Any:
        asked.append(network)
        if any("too long" in appeal.title for appeal in appeals):
            raise module.PreflightFailed([f"the caption is over {network}'s limit"])
        version = appeals[0].clips[0].version
        video = next(r for r in version.renditions if r.role == "video")
        text = f"#TattletaleTuesday {network}: " + " / ".join(a.title for a in appeals)
        # The portal's own page shows the appeal's renditions itself: nothing is sent.
        return module.Prepared(text=text, rendition_id=None if network == "portal" else video.id)

    monkeypatch.setattr(module, "prepare_delivery", prepare_delivery, raising=False)
    yield asked


@pytest.fixture
def real_preflight() -> None:
    """Asked for by a test that schedules through pub-plan's preflight itself."""


# -- rows -------------------------------------------------------------------------------------


@pytest.fixture
def new_york(agency: Agency) -> Agency:
    agency.timezone = "America/New_York"
    db.session.commit()
    return agency


@pytest.fixture
def coordinator(users: dict[Role, User]) -> User:
    return users[Role.COORDINATOR]


def stored_appeal(agency: Agency, users: dict[Role, User], number: str, title: str) -> Appeal:
    """A published appeal whose web rendition's bytes are in the app's store."""
    appeal = listed_appeal(
        agency, users[Role.OFFICER], users[Role.SUPERVISOR], number=number, title=title
    )
    video = next(r for r in appeal.clips[0].version.renditions if r.role == "video")
    payload = f"mp4 bytes of {number}".encode()
    import io

    get_store().put_stream(video.storage_key, io.BytesIO(payload), "video/mp4")
    video.sha256 = hashlib.sha256(payload).hexdigest()
    video.size = len(payload)
    # The supervisor approved these bytes: the approval binds their hash.
    version = appeal.clips[0].version
    for approval in version.approvals:
        approval.renditions_digest = renditions_digest(version.renditions)
    db.session.commit()
    return appeal


def rendition_of(appeal: Appeal) -> Rendition:
    return next(r for r in appeal.clips[0].version.renditions if r.role == "video")


def fake_channel(
    agency: Agency,
    name: str,
    *,
    token: str = "good",  # noqa: S107 (the fake network's token)
) -> tuple[Channel, World]:
    import json

    WORLDS[name] = World()
    row = Channel(
        agency_id=agency.id,
        network="fake",
        name=name,
        settings={"world": name},
        credentials=json.dumps({"token": token}),
    )
    db.session.add(row)
    db.session.commit()
    return row, WORLDS[name]


def webhook_channel(agency: Agency, receiver: WebhookReceiver, name: str = "Our CMS") -> Channel:
    import json

    row = Channel(
        agency_id=agency.id,
        network="webhook",
        name=name,
        settings={"url": receiver.url, "timeout_s": 5.0},
        credentials=json.dumps({"key": receiver.key}),
    )
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    from portal.publishing.channels.webhook import WebhookChannel

    # The receiver listens on loopback, which a real webhook may never reach.
    monkeypatch.setattr(WebhookChannel, "allow_private", True)
    with WebhookReceiver() as running:
        yield running


# -- running jobs like workers do -------------------------------------------------------------


def _publishing_job_ids() -> list[int]:
    """Due publishing jobs (and periodic ticks of publishing's tasks)."""
    rows = db.session.execute(
        select(Job.id, Job.name, Job.args).where(
            Job.status == JobStatus.QUEUED.value, Job.run_after <= utcnow()
        )
    ).all()
    db.session.commit()
    return [
        job_id
        for job_id, name, args in rows
        if name.startswith("publishing.")
        or (name == "periodic.run" and str(args.get("task", "")).startswith("publishing."))
    ]


def _pending() -> bool:
    rows = db.session.execute(
        select(Job.name, Job.args).where(
            Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
        )
    ).all()
    db.session.commit()
    return any(
        name.startswith("publishing.")
        or (name == "periodic.run" and str(args.get("task", "")).startswith("publishing."))
        for name, args in rows
    )


def drain(app: Flask, workers: int = 2, timeout_s: float = 20.0) -> list[str]:
    """Run publishing's jobs until none is left, in ``workers`` threads that all look
    at the same due rows (each claim decides who runs one). Returns the outcomes."""
    outcomes: list[str] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + timeout_s

    def work(name: str) -> None:
        try:
            with app.app_context():
                idle = 0
                while time.monotonic() < deadline:
                    ids = _publishing_job_ids()
                    if not ids:
                        if not _pending():
                            idle += 1
                            if idle >= 2:
                                return
                        time.sleep(0.02)
                        continue
                    idle = 0
                    for job_id in ids:
                        outcomes.append(execute_job(job_id, f"test:{name}"))
        except BaseException as exc:  # noqa: BLE001 (reported to the test below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 5)
    assert not errors, errors
    assert time.monotonic() < deadline, "jobs were still pending when the time ran out"
    db.session.expire_all()
    return outcomes


def sent_through(
    app: Flask,
    agency: Agency,
    coordinator: User,
    clock: Clock,
    appeal: Appeal,
    channel: Channel,
    *,
    at_slot: Callable[[datetime], None] | None = None,
) -> tuple[Any, Any]:
    """``appeal`` posted to ``channel`` at a slot an hour ahead, through the delivery
    engine (``at_slot`` moves a fake's own clock there too): the post and its
    delivery on the channel, sent."""
    from portal.publishing.services.deliveries import publish_due
    from portal.publishing.services.posts import create_post, schedule_post

    db.session.add(channel)
    db.session.commit()
    slot = clock.now + timedelta(hours=1)
    post = create_post(agency, coordinator, [appeal.public_id], slot, [channel.public_id])
    schedule_post(post, coordinator)
    db.session.commit()
    clock.now = slot
    if at_slot is not None:
        at_slot(slot)
    publish_due(clock.now)
    drain(app)
    delivery = next(d for d in post.deliveries if d.channel_id == channel.id)
    db.session.refresh(delivery)
    assert delivery.status == "sent", delivery.reason
    return post, delivery


def comment_tips() -> list[Any]:
    """The tips filed from replies under posts, oldest first."""
    from portal.models import Tip

    return list(db.session.scalars(select(Tip).where(Tip.origin == "comment").order_by(Tip.id)))
