"""A person's decisions on the post page, over HTTP as staff make them: "Try again"
on a delivery that failed or needs attention, and "It is on the network" with the
address found, for one whose outcome was unknown."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, AuditEvent, Role, User
from portal.models.base import utcnow
from portal.publishing.models import Channel, Delivery, DeliveryStatus, Post, PostStatus
from portal.publishing.services.posts import create_post, schedule_post
from tests.portal.conftest import csrf_token
from tests.portal.publishing.conftest import World, drain, fake_channel, stored_appeal

Login = Callable[[User], FlaskClient]
Stopped = Callable[[str], tuple[Post, Delivery, World]]


@pytest.fixture
def stopped(agency: Agency, users: dict[Role, User]) -> Stopped:
    """A scheduled post whose delivery to the fake network stopped in ``status``."""

    def make(status: str) -> tuple[Post, Delivery, World]:
        appeal = stored_appeal(agency, users, "27-1", "Robbery at the Kwik-E-Mart")
        channel, world = fake_channel(agency, "Fake")
        coordinator = users[Role.COORDINATOR]
        post = create_post(
            agency,
            coordinator,
            [appeal.public_id],
            utcnow() + timedelta(days=1),
            [channel.public_id],
        )
        schedule_post(post, coordinator)
        # The slot came and went: the portal's own delivery was sent, the network's stopped.
        post.status = PostStatus.DONE.value
        for other in post.deliveries:
            other.status = DeliveryStatus.SENT.value
        delivery = next(d for d in post.deliveries if d.channel_id == channel.id)
        delivery.status = status
        delivery.reason = "The network did not answer; it may or may not have posted."
        db.session.commit()
        return post, delivery, world

    return make


def _page(client: FlaskClient, post: Post) -> str:
    return f"/staff/posts/{post.public_id}"


def _retry_url(post: Post, delivery: Delivery) -> str:
    return f"/staff/posts/{post.public_id}/deliveries/{delivery.public_id}/retry"


def _sent_url(post: Post, delivery: Delivery) -> str:
    return f"/staff/posts/{post.public_id}/deliveries/{delivery.public_id}/sent"


def _status_of(delivery: Delivery) -> str:
    db.session.expire_all()
    row = db.session.get(Delivery, delivery.id)
    assert row is not None
    return row.status


def _audited(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_post_page_offers_the_decisions_only_on_a_stopped_delivery(
    app: Flask, stopped: Stopped, users: dict[Role, User], signed_in: Login
) -> None:
    post, delivery, _ = stopped(DeliveryStatus.NEEDS_ATTENTION.value)
    client = signed_in(users[Role.COORDINATOR])
    page = client.get(_page(client, post)).get_data(as_text=True)
    assert f'action="{_retry_url(post, delivery)}"' in page
    assert f'action="{_sent_url(post, delivery)}"' in page
    # Failed: the network said no, so there is nothing to find, only a retry.
    delivery.status = DeliveryStatus.FAILED.value
    db.session.commit()
    page = client.get(_page(client, post)).get_data(as_text=True)
    assert f'action="{_retry_url(post, delivery)}"' in page
    assert f'action="{_sent_url(post, delivery)}"' not in page
    delivery.status = DeliveryStatus.QUEUED.value
    db.session.commit()
    page = client.get(_page(client, post)).get_data(as_text=True)
    assert "/retry" not in page and "/sent" not in page


def test_try_again_by_a_coordinator_sends_it_and_is_audited(
    app: Flask, stopped: Stopped, users: dict[Role, User], signed_in: Login
) -> None:
    post, delivery, world = stopped(DeliveryStatus.FAILED.value)
    client = signed_in(users[Role.COORDINATOR])
    token = csrf_token(client, _page(client, post))
    response = client.post(_retry_url(post, delivery), data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(_page(client, post))
    assert _status_of(delivery) == "retrying"
    assert "Sending to Fake again." in client.get(_page(client, post)).get_data(as_text=True)
    [event] = _audited("delivery.retry")
    assert event.actor_id == users[Role.COORDINATOR].id
    assert event.details["delivery"] == delivery.public_id
    drain(app)
    assert _status_of(delivery) == "sent"
    assert len(world.landed()) == 1
    db.session.expire_all()
    assert db.session.get(Post, post.id).status == "done"  # type: ignore[union-attr]


def test_try_again_on_a_disconnected_channel_says_to_connect_it(
    app: Flask, stopped: Stopped, users: dict[Role, User], signed_in: Login
) -> None:
    post, delivery, _ = stopped(DeliveryStatus.FAILED.value)
    channel = db.session.get(Channel, delivery.channel_id)
    assert channel is not None
    channel.status = "disconnected"
    db.session.commit()
    client = signed_in(users[Role.COORDINATOR])
    token = csrf_token(client, _page(client, post))
    assert client.post(_retry_url(post, delivery), data={"csrf_token": token}).status_code == 302
    assert "Connect Fake again first." in client.get(_page(client, post)).get_data(as_text=True)
    assert _status_of(delivery) == "failed"
    assert _audited("delivery.retry") == []


def test_found_on_the_network_is_recorded_sent_and_never_sent_again(
    app: Flask, stopped: Stopped, users: dict[Role, User], signed_in: Login
) -> None:
    post, delivery, world = stopped(DeliveryStatus.NEEDS_ATTENTION.value)
    client = signed_in(users[Role.COORDINATOR])
    token = csrf_token(client, _page(client, post))
    response = client.post(
        _sent_url(post, delivery),
        data={"csrf_token": token, "url": "https://fake.example/springfield/99"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    row = db.session.get(Delivery, delivery.id)
    assert row is not None
    assert row.status == "sent" and row.remote_url == "https://fake.example/springfield/99"
    page = client.get(_page(client, post)).get_data(as_text=True)
    assert 'href="https://fake.example/springfield/99"' in page
    assert "/retry" not in page  # nothing left to decide
    [event] = _audited("delivery.marked_sent")
    assert event.details["url"] == "https://fake.example/springfield/99"
    drain(app)
    assert world.publish_calls == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://fake.example/springfield/99", "Give the post's https:// address."),
        ("javascript:alert(1)", "Give the post's https:// address."),
        ("", "Give the post's https:// address."),
        ("https://fake.example/" + "a" * 2000, "2000"),
    ],
)
def test_found_on_the_network_refuses_an_address_that_is_not_https(
    app: Flask,
    stopped: Stopped,
    users: dict[Role, User],
    signed_in: Login,
    url: str,
    message: str,
) -> None:
    post, delivery, _ = stopped(DeliveryStatus.NEEDS_ATTENTION.value)
    client = signed_in(users[Role.COORDINATOR])
    token = csrf_token(client, _page(client, post))
    response = client.post(_sent_url(post, delivery), data={"csrf_token": token, "url": url})
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    error = re.search(r'<p class="error" role="alert" id="found-url-[^"]+-error">([^<]*)</p>', page)
    assert error is not None and message in error.group(1)
    assert 'aria-invalid="true"' in page
    assert _status_of(delivery) == "needs_attention"
    assert _audited("delivery.marked_sent") == []


def test_decisions_refused_to_officers(
    app: Flask, stopped: Stopped, users: dict[Role, User], signed_in: Login
) -> None:
    post, delivery, _ = stopped(DeliveryStatus.NEEDS_ATTENTION.value)
    client = signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/account")
    assert client.post(_retry_url(post, delivery), data={"csrf_token": token}).status_code == 403
    response = client.post(
        _sent_url(post, delivery), data={"csrf_token": token, "url": "https://fake.example/1"}
    )
    assert response.status_code == 403
    assert _status_of(delivery) == "needs_attention"


def test_decisions_without_csrf_are_refused(
    app: Flask, stopped: Stopped, users: dict[Role, User], signed_in: Login
) -> None:
    post, delivery, _ = stopped(DeliveryStatus.NEEDS_ATTENTION.value)
    client = signed_in(users[Role.COORDINATOR])
    assert client.post(_retry_url(post, delivery)).status_code == 400
    response = client.post(_sent_url(post, delivery), data={"url": "https://fake.example/1"})
    assert response.status_code == 400
    assert _status_of(delivery) == "needs_attention"


def test_decisions_on_another_agencys_delivery_are_not_found(
    app: Flask,
    stopped: Stopped,
    other_agency: Agency,
    make_user: Callable[..., User],
    signed_in: Login,
) -> None:
    post, delivery, _ = stopped(DeliveryStatus.NEEDS_ATTENTION.value)
    stranger = make_user(Role.COORDINATOR, agency_=other_agency)
    client = signed_in(stranger)
    token = csrf_token(client, "/staff/account")
    assert client.post(_retry_url(post, delivery), data={"csrf_token": token}).status_code == 404
    response = client.post(
        _sent_url(post, delivery), data={"csrf_token": token, "url": "https://fake.example/1"}
    )
    assert response.status_code == 404
    # Nor is a delivery reached through a post of the stranger's own agency.
    own = Post(agency_id=other_agency.id, slot_at=utcnow(), created_by_id=stranger.id)
    db.session.add(own)
    db.session.commit()
    crossed = f"/staff/posts/{own.public_id}/deliveries/{delivery.public_id}/retry"
    assert client.post(crossed, data={"csrf_token": token}).status_code == 404
    assert _status_of(delivery) == "needs_attention"


def test_a_decision_sent_twice_says_there_is_nothing_left_to_decide(
    app: Flask, stopped: Stopped, users: dict[Role, User], signed_in: Login
) -> None:
    post, delivery, _ = stopped(DeliveryStatus.NEEDS_ATTENTION.value)
    client = signed_in(users[Role.COORDINATOR])
    token = csrf_token(client, _page(client, post))
    found = {"csrf_token": token, "url": "https://fake.example/springfield/99"}
    assert client.post(_sent_url(post, delivery), data=found).status_code == 302
    # A second tab still showed the buttons: both answers are refused, nothing changes.
    again = client.post(_sent_url(post, delivery), data=found | {"url": "https://fake.example/2"})
    assert again.status_code == 302
    assert client.post(_retry_url(post, delivery), data={"csrf_token": token}).status_code == 302
    page = html.unescape(client.get(_page(client, post)).get_data(as_text=True))
    assert "This delivery is sent; nothing to decide." in page
    db.session.expire_all()
    row = db.session.get(Delivery, delivery.id)
    assert row is not None
    assert row.status == "sent" and row.remote_url == "https://fake.example/springfield/99"
    assert len(_audited("delivery.marked_sent")) == 1 and _audited("delivery.retry") == []
