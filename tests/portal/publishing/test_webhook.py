"""The signed webhook against a receiver on loopback that checks the signature
itself: what it receives, what a refused key means, and a lost answer resent with
the same event id (which the receiver dedups)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.channels.base import RejectedError
from portal.publishing.channels.webhook import WebhookChannel, sign
from portal.publishing.models import Channel, Delivery, Post
from portal.publishing.services.deliveries import BACKOFF_BASE_S, publish_due
from portal.publishing.services.posts import create_post, schedule_post
from tests.portal.publishing.conftest import (
    Clock,
    drain,
    rendition_of,
    stored_appeal,
    webhook_channel,
)
from tests.portal.publishing.receiver import WebhookReceiver


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # Written out from the documentation, not from the function.
    expected = hmac.new(b"k3y", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert sign("k3y", "1700000000", b'{"a":1}') == f"sha256={expected}"


def test_webhook_refuses_an_address_that_is_not_https() -> None:
    with pytest.raises(RejectedError, match="https"):
        WebhookChannel({"key": "k"}, {"url": "http://cms.example/hook"})


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
    ],
)
def test_webhook_refuses_an_address_that_is_not_on_the_internet(url: str) -> None:
    with pytest.raises(RejectedError, match="not a public address"):
        WebhookChannel({"key": "k"}, {"url": url})


def test_webhook_accepts_a_public_address() -> None:
    # A literal address: no DNS lookup leaves this machine.
    assert WebhookChannel({"key": "k"}, {"url": "https://93.184.215.14/hook"})


def _scheduled(
    agency: Agency, users: dict[Role, User], coordinator: User, clock: Clock, channel: Channel
) -> tuple[Post, Delivery]:
    appeal = stored_appeal(agency, users, "W-1", "Who broke the window?")
    post = create_post(
        agency, coordinator, [appeal.public_id], clock.now + timedelta(hours=1), [channel.public_id]
    )
    schedule_post(post, coordinator)
    db.session.commit()
    clock.now += timedelta(hours=1)
    return post, next(d for d in post.deliveries if d.channel_id == channel.id)


def test_webhook_delivers_signed_json_the_receiver_verifies(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    receiver: WebhookReceiver,
) -> None:
    channel = webhook_channel(new_york, receiver)
    post, delivery = _scheduled(new_york, users, coordinator, clock, channel)
    publish_due(clock.now)
    drain(app)
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    assert delivery.remote_url == f"https://cms.example/{delivery.public_id}"
    assert receiver.refused == []
    [event] = receiver.published()
    appeal = post.appeals[0].appeal
    assert event["id"] == delivery.public_id
    assert event["text"] == "#TattletaleTuesday webhook: Who broke the window?"
    assert event["link"].endswith(f"/appeals/{appeal.public_id}")
    assert event["media"]["sha256"] == rendition_of(appeal).sha256
    assert "path" not in event["media"]  # nothing of this machine's files
    assert receiver.key not in json.dumps(event)


def test_webhook_with_a_key_the_receiver_does_not_hold_asks_for_a_reconnect(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    receiver: WebhookReceiver,
) -> None:
    channel = webhook_channel(new_york, receiver)
    channel.credentials = json.dumps({"key": "not the receiver's key"})
    db.session.commit()
    _, delivery = _scheduled(new_york, users, coordinator, clock, channel)
    publish_due(clock.now)
    drain(app)
    assert receiver.refused == ["signature"] and receiver.events == {}
    db.session.refresh(delivery)
    db.session.refresh(channel)
    assert delivery.status == "failed"
    assert channel.status == "needs_reconnect"
    assert channel.status_reason == "webhook refused the channel's credentials"
    clock.now += timedelta(hours=2)
    publish_due(clock.now)
    drain(app)
    assert receiver.refused == ["signature"]  # nothing retried in a loop


def test_webhook_answer_lost_after_the_receiver_took_it_is_resent_with_the_same_id(
    app: Flask,
    new_york: Agency,
    users: dict[Role, User],
    coordinator: User,
    clock: Clock,
    receiver: WebhookReceiver,
) -> None:
    channel = webhook_channel(new_york, receiver)
    _, delivery = _scheduled(new_york, users, coordinator, clock, channel)
    receiver.faults[:] = ["slow"]
    publish_due(clock.now)
    drain(app)
    db.session.refresh(delivery)
    assert delivery.status == "retrying" and "did not answer" in delivery.reason
    clock.now += timedelta(seconds=BACKOFF_BASE_S)
    publish_due(clock.now)
    drain(app)
    db.session.refresh(delivery)
    assert delivery.status == "sent"
    assert receiver.deliveries == [delivery.public_id, delivery.public_id]
    assert len(receiver.published()) == 1


def test_webhook_test_connection_sends_a_signed_ping(receiver: WebhookReceiver) -> None:
    adapter = WebhookChannel({"key": receiver.key}, {"url": receiver.url, "timeout_s": 2})
    assert adapter.test_connection() == receiver.url
    [ping] = receiver.events.values()
    assert ping["type"] == "ping" and receiver.refused == []
