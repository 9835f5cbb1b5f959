# Test responses' .json is "Any | None" to mypy; each test checks the status first.
# mypy: disable-error-code="index"
"""A scheduled post's caption rewritten for one channel on the post page (and through
``PATCH /api/v1/posts/{id}``, the same service): counted as
the network counts it (a Mastodon link is 23 characters however long), refused with
by how much when it would not be taken, audited, and fixed once the post is being
sent; and the live count the page asks for as the caption is typed says the same."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.extensions import db
from portal.models import Agency, AuditEvent, Role, User
from portal.models.base import utcnow
from portal.publishing.models import Channel, Delivery, Post, PostStatus
from portal.publishing.services.posts import create_post, edit_caption, schedule_post
from portal.services.errors import Conflict, ValidationFailed
from portal.services.users import create_api_token
from tests.portal.conftest import csrf_token
from tests.portal.publishing.conftest import stored_appeal

Login = Callable[[User], FlaskClient]
LONG_LINK = "https://tips.springfield.example/appeals/" + "k" * 120
#: 490 + a space + the link (23 to Mastodon) = 514: over Mastodon's 500 by 14.
TOO_LONG = "x" * 490 + " " + LONG_LINK


@pytest.fixture
def scheduled(agency: Agency, users: dict[Role, User]) -> tuple[Post, Delivery]:
    """A post scheduled for tomorrow on a Mastodon account."""
    appeal = stored_appeal(agency, users, "28-1", "Who took the bike?")
    channel = Channel(
        agency_id=agency.id, network="mastodon", name="Springfield PD", credentials=json.dumps({})
    )
    db.session.add(channel)
    db.session.commit()
    coordinator = users[Role.COORDINATOR]
    post = create_post(
        agency, coordinator, [appeal.public_id], utcnow() + timedelta(days=1), [channel.public_id]
    )
    schedule_post(post, coordinator)
    db.session.commit()
    return post, next(d for d in post.deliveries if d.channel_id == channel.id)


def test_edit_caption_counts_a_link_as_mastodon_does_and_is_audited(
    app: Flask, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    text = "y" * 476 + " " + LONG_LINK  # 476 + 1 + 23 = 500: exactly Mastodon's limit
    edit_caption(delivery, users[Role.COORDINATOR], text)
    db.session.commit()
    db.session.refresh(delivery)
    assert delivery.text == text
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "post.caption")
    ).one()
    assert event.object_id == post.public_id
    assert event.details["after"] == text and event.details["network"] == "mastodon"


def test_edit_caption_too_long_is_refused_with_by_how_much(
    app: Flask, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    _, delivery = scheduled
    before = delivery.text
    with pytest.raises(ValidationFailed) as refused:
        edit_caption(delivery, users[Role.COORDINATOR], TOO_LONG)
    assert refused.value.message == (
        "The caption is 514 long as Mastodon counts it, over its 500: shorten it by 14."
    )
    db.session.rollback()
    db.session.refresh(delivery)
    assert delivery.text == before


def test_edit_caption_is_refused_once_the_post_is_being_sent(
    app: Flask, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    post.status = PostStatus.PUBLISHING.value
    db.session.commit()
    with pytest.raises(Conflict, match="Only a scheduled post's captions can change"):
        edit_caption(delivery, users[Role.COORDINATOR], "Too late")


def test_edit_caption_of_the_portals_own_pages_is_refused(
    app: Flask, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, _ = scheduled
    portal = next(d for d in post.deliveries if d.channel.network == "portal")
    with pytest.raises(Conflict, match="no caption"):
        edit_caption(portal, users[Role.COORDINATOR], "Words nobody would see")


def _post_page(client: FlaskClient, post: Post) -> str:
    return client.get(f"/staff/posts/{post.public_id}").get_data(as_text=True)


def test_post_page_saves_a_rewritten_caption_and_shows_a_refused_one_as_written(
    app: Flask, users: dict[Role, User], signed_in: Login, scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    client = signed_in(users[Role.COORDINATOR])
    page = _post_page(client, post)
    action = f"/staff/posts/{post.public_id}/deliveries/{delivery.public_id}/caption"
    assert f'action="{action}"' in page
    assert page.count('class="caption-edit"') == 1  # Mastodon's; not the portal's pages
    token = csrf_token(client, f"/staff/posts/{post.public_id}")
    saved = client.post(action, data={"csrf_token": token, "text": "Have you seen this bike?"})
    assert saved.status_code == 302
    db.session.refresh(delivery)
    assert delivery.text == "Have you seen this bike?"
    page = _post_page(client, post)
    assert "<span data-count>24 / 500</span>" in page

    refused = client.post(action, data={"csrf_token": token, "text": TOO_LONG})
    assert refused.status_code == 422
    page = html.unescape(refused.get_data(as_text=True))
    assert "over its 500: shorten it by 14." in page
    assert re.search(r'<textarea[^>]*aria-invalid="true"[^>]*>\s*x{490} https://', page)
    db.session.refresh(delivery)
    assert delivery.text == "Have you seen this bike?"


def test_live_count_of_a_caption_being_rewritten_says_what_saving_it_would(
    app: Flask, users: dict[Role, User], signed_in: Login, scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    client = signed_in(users[Role.COORDINATOR])
    token = csrf_token(client, f"/staff/posts/{post.public_id}")
    url = f"/staff/posts/{post.public_id}/deliveries/{delivery.public_id}/caption/preview"
    answer = client.post(url, data={"csrf_token": token, "text": TOO_LONG}).get_json()
    assert answer["count"] == "514 / 500" and answer["fits"] is False
    assert answer["warning"] == (
        "The caption is 514 long as Mastodon counts it, over its 500: shorten it by 14."
    )
    assert answer["text"] == TOO_LONG  # a person's caption is never cut
    fits = client.post(url, data={"csrf_token": token, "text": "Seen it?"}).get_json()
    assert (fits["count"], fits["warning"], fits["problems"]) == ("8 / 500", "", {})
    before = delivery.text
    db.session.refresh(delivery)
    assert delivery.text == before  # nothing saved
    assert client.post(url, data={"text": "no token"}).status_code == 400


def test_post_page_offers_no_caption_edit_once_sent(
    app: Flask, users: dict[Role, User], signed_in: Login, scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    post.status = PostStatus.DONE.value
    delivery.status = "sent"
    db.session.commit()
    page = _post_page(signed_in(users[Role.COORDINATOR]), post)
    assert "/caption" not in page and "caption-preview.js" not in page


# -- the same edit through PATCH /api/v1/posts/{id} ---------------------------------------


def _bearer(user: User, scopes: list[Role] | None = None) -> dict[str, str]:
    _, secret = create_api_token(user, scopes=scopes)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def _patch_captions(
    client: FlaskClient, post: Post, auth: dict[str, str], *captions: tuple[str, str]
) -> TestResponse:
    return client.patch(
        f"/api/v1/posts/{post.public_id}",
        json={"captions": [{"channel": c, "text": t} for c, t in captions]},
        headers=auth,
    )


def test_api_patch_rewrites_a_scheduled_posts_caption_as_the_page_does(
    app: Flask, client: FlaskClient, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    coordinator = users[Role.COORDINATOR]
    before = delivery.text
    text = "y" * 476 + " " + LONG_LINK  # 500 as Mastodon counts it: exactly its limit
    answer = _patch_captions(client, post, _bearer(coordinator), (delivery.channel.public_id, text))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    shown = next(d for d in answer.json["deliveries"] if d["network"] == "mastodon")
    assert (shown["id"], shown["text"], shown["status"]) == (delivery.public_id, text, "queued")
    assert answer.json["status"] == "scheduled"
    db.session.refresh(delivery)
    assert delivery.text == text
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "post.caption")
    ).one()
    assert (event.object_id, event.actor_id) == (post.public_id, coordinator.id)
    assert event.details == {
        "delivery": delivery.public_id,
        "network": "mastodon",
        "before": before,
        "after": text,
    }


def test_api_patch_refuses_a_caption_too_long_for_the_network_saving_nothing(
    app: Flask, client: FlaskClient, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    before = delivery.text
    answer = _patch_captions(
        client, post, _bearer(users[Role.COORDINATOR]), (delivery.channel.public_id, TOO_LONG)
    )
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert answer.json == {
        "type": "about:blank",
        "title": "The caption is 514 long as Mastodon counts it, over its 500: shorten it by 14.",
        "status": 422,
        "field": "captions.0.text",
    }
    db.session.refresh(delivery)
    assert delivery.text == before
    assert not db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "post.caption")
    ).all()


def test_api_patch_refuses_an_empty_caption_as_the_page_does(
    app: Flask, client: FlaskClient, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    before = delivery.text
    for blank in ("", "  \n\t "):
        answer = _patch_captions(
            client, post, _bearer(users[Role.COORDINATOR]), (delivery.channel.public_id, blank)
        )
        assert answer.status_code == 422, blank
        assert answer.json["field"] == "captions.0.text"
    db.session.refresh(delivery)
    assert delivery.text == before


def test_api_patch_saves_no_caption_when_a_later_one_is_refused(
    app: Flask, client: FlaskClient, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    before = delivery.text
    channel = delivery.channel.public_id
    answer = _patch_captions(
        client, post, _bearer(users[Role.COORDINATOR]), (channel, "Seen it?"), ("nope", "Hm")
    )
    assert answer.status_code == 422
    assert answer.json == {
        "type": "about:blank",
        "title": "This post is not sent to that channel.",
        "status": 422,
        "field": "captions.1.channel",
    }
    db.session.refresh(delivery)
    assert delivery.text == before
    twice = _patch_captions(
        client, post, _bearer(users[Role.COORDINATOR]), (channel, "One"), (channel, "Two")
    )
    assert twice.status_code == 422
    assert (twice.json["title"], twice.json["field"]) == (
        "Give each channel at most one caption.",
        "captions",
    )


SENT_ALREADY = {
    "type": "about:blank",
    "title": "Only a scheduled post's captions can change, before it is sent; look again.",
    "status": 409,
}


def test_api_patch_refuses_the_caption_of_a_post_being_sent(
    app: Flask, client: FlaskClient, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    before = delivery.text
    post.status = PostStatus.PUBLISHING.value
    delivery.status = "sending"
    db.session.commit()
    answer = _patch_captions(
        client, post, _bearer(users[Role.COORDINATOR]), (delivery.channel.public_id, "Late")
    )
    assert answer.status_code == 409 and answer.json == SENT_ALREADY
    db.session.refresh(delivery)
    assert delivery.text == before


def test_api_patch_refuses_the_caption_of_a_post_already_sent(
    app: Flask, client: FlaskClient, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, delivery = scheduled
    before = delivery.text
    post.status = PostStatus.DONE.value
    delivery.status = "sent"
    db.session.commit()
    answer = _patch_captions(
        client, post, _bearer(users[Role.COORDINATOR]), (delivery.channel.public_id, "Late")
    )
    assert answer.status_code == 409 and answer.json == SENT_ALREADY
    db.session.refresh(delivery)
    assert delivery.text == before


def test_api_patch_refuses_a_caption_for_the_portals_own_pages(
    app: Flask, client: FlaskClient, users: dict[Role, User], scheduled: tuple[Post, Delivery]
) -> None:
    post, _ = scheduled
    portal = next(d for d in post.deliveries if d.channel.network == "portal")
    answer = _patch_captions(
        client, post, _bearer(users[Role.COORDINATOR]), (portal.channel.public_id, "Unseen")
    )
    assert answer.status_code == 409
    assert answer.json == {
        "type": "about:blank",
        "title": "The portal's own pages show the appeal itself: there is no caption.",
        "status": 409,
    }


def test_api_patch_caption_needs_a_token_that_may_manage_posts(
    app: Flask,
    client: FlaskClient,
    users: dict[Role, User],
    make_user: Callable[..., User],
    other_agency: Agency,
    scheduled: tuple[Post, Delivery],
) -> None:
    post, delivery = scheduled
    before = delivery.text
    channel = delivery.channel.public_id
    both = make_user(Role.COORDINATOR, Role.OFFICER)
    refused = {"type": "about:blank", "title": "This token may not do that.", "status": 403}
    for auth in (_bearer(users[Role.OFFICER]), _bearer(both, scopes=[Role.OFFICER])):
        answer = _patch_captions(client, post, auth, (channel, "Not mine to say"))
        assert answer.status_code == 403 and answer.json == refused
    outsider = _bearer(make_user(Role.COORDINATOR, agency_=other_agency))
    assert _patch_captions(client, post, outsider, (channel, "Nor mine")).status_code == 404
    db.session.refresh(delivery)
    assert delivery.text == before


def test_api_openapi_documents_the_caption_patch(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    operation = document["paths"]["/posts/{post_id}"]["patch"]
    assert {"200", "409", "422"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    captions = schemas["PostPatch"]["properties"]["captions"]
    assert captions["type"] == "array" and captions["maxItems"] == 20
    item = schemas["CaptionPatch"]
    assert sorted(item["required"]) == ["channel", "text"]
    assert item["properties"]["text"]["maxLength"] == 70000
