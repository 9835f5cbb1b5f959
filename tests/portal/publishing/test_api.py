# Test responses' .json is "Any | None" to mypy; each test checks the status first.
# mypy: disable-error-code="index"
"""The posts, schedule and channels API: what a coordinator does with a token, what
others are refused, and that no credential ever leaves in an answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, Role, User
from portal.services.users import create_api_token
from tests.portal.publishing.conftest import Clock, drain, fake_channel, stored_appeal


def bearer(user: User) -> dict[str, str]:
    _, secret = create_api_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_api_post_created_scheduled_moved_sent_and_shown_per_channel(
    app: Flask, client: FlaskClient, new_york: Agency, users: dict[Role, User], clock: Clock
) -> None:
    channel, world = fake_channel(new_york, "Fake")
    appeal = stored_appeal(new_york, users, "A-1", "Who is this?")
    auth = bearer(users[Role.COORDINATOR])
    slot = clock.now + timedelta(days=6)
    created = client.post(
        "/api/v1/posts",
        json={
            "appeals": [appeal.public_id],
            "slot_at": slot.isoformat(),
            "channels": [channel.public_id],
        },
        headers=auth,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.json
    assert created.headers["Location"].endswith(f"/api/v1/posts/{body['id']}")
    assert body["status"] == "scheduled" and body["appeals"] == [appeal.public_id]
    assert sorted(d["network"] for d in body["deliveries"]) == ["fake", "portal"]
    assert {d["status"] for d in body["deliveries"]} == {"queued"}

    later = slot + timedelta(days=1)
    moved = client.patch(
        f"/api/v1/posts/{body['id']}", json={"slot_at": later.isoformat()}, headers=auth
    )
    assert moved.status_code == 200 and moved.json["slot_at"] == later.isoformat()
    schedule = client.get("/api/v1/schedule", headers=auth).json
    assert [p["id"] for p in schedule["posts"]] == [body["id"]]

    sent = client.patch(f"/api/v1/posts/{body['id']}", json={"action": "now"}, headers=auth)
    assert sent.status_code == 200 and sent.json["status"] == "publishing"
    drain(app)
    shown = client.get(f"/api/v1/posts/{body['id']}", headers=auth).json
    fake = next(d for d in shown["deliveries"] if d["network"] == "fake")
    assert fake["status"] == "sent" and fake["url"] == f"https://fake.example/{fake['id']}"
    assert shown["status"] == "done" and len(world.landed()) == 1
    listing = client.get("/api/v1/posts?status=done", headers=auth).json
    assert listing["total"] == 1 and listing["posts"][0]["id"] == body["id"]
    # Gone out: it can no longer be cancelled, nor moved.
    assert client.delete(f"/api/v1/posts/{body['id']}", headers=auth).status_code == 409
    again = client.patch(
        f"/api/v1/posts/{body['id']}", json={"slot_at": later.isoformat()}, headers=auth
    )
    assert again.status_code == 409


def test_api_post_cancelled_before_it_goes(
    app: Flask, client: FlaskClient, new_york: Agency, users: dict[Role, User], clock: Clock
) -> None:
    appeal = stored_appeal(new_york, users, "A-1", "Who is this?")
    auth = bearer(users[Role.COORDINATOR])
    slot = (clock.now + timedelta(days=1)).isoformat()
    post = client.post(
        "/api/v1/posts", json={"appeals": [appeal.public_id], "slot_at": slot}, headers=auth
    ).json
    assert client.delete(f"/api/v1/posts/{post['id']}", headers=auth).status_code == 204
    shown = client.get(f"/api/v1/posts/{post['id']}", headers=auth).json
    assert shown["status"] == "cancelled"
    assert {d["status"] for d in shown["deliveries"]} == {"cancelled"}


def test_api_post_refuses_a_past_slot_and_an_unknown_appeal(
    app: Flask, client: FlaskClient, new_york: Agency, users: dict[Role, User], clock: Clock
) -> None:
    appeal = stored_appeal(new_york, users, "A-1", "Who is this?")
    auth = bearer(users[Role.COORDINATOR])
    past = client.post(
        "/api/v1/posts",
        json={
            "appeals": [appeal.public_id],
            "slot_at": (clock.now - timedelta(hours=1)).isoformat(),
        },
        headers=auth,
    )
    assert past.status_code == 422 and past.json["field"] == "slot_at"
    unknown = client.post(
        "/api/v1/posts",
        json={"appeals": ["nope"], "slot_at": (clock.now + timedelta(hours=1)).isoformat()},
        headers=auth,
    )
    assert unknown.status_code == 422 and unknown.json["field"] == "appeals"


def test_api_posts_are_refused_to_an_officer_and_hidden_from_another_agency(
    app: Flask,
    client: FlaskClient,
    new_york: Agency,
    other_agency: Agency,
    users: dict[Role, User],
    make_user: Callable[..., User],
    clock: Clock,
) -> None:
    appeal = stored_appeal(new_york, users, "A-1", "Who is this?")
    slot = (clock.now + timedelta(days=1)).isoformat()
    post = client.post(
        "/api/v1/posts",
        json={"appeals": [appeal.public_id], "slot_at": slot},
        headers=bearer(users[Role.COORDINATOR]),
    ).json
    officer = bearer(users[Role.OFFICER])
    for method, path in [
        ("GET", "/api/v1/posts"),
        ("GET", f"/api/v1/posts/{post['id']}"),
        ("DELETE", f"/api/v1/posts/{post['id']}"),
        ("GET", "/api/v1/schedule"),
        ("GET", "/api/v1/channels"),
    ]:
        assert client.open(path, method=method, headers=officer).status_code == 403, path
    outsider = bearer(make_user(Role.COORDINATOR, agency_=other_agency))
    assert client.get(f"/api/v1/posts/{post['id']}", headers=outsider).status_code == 404
    assert client.delete(f"/api/v1/posts/{post['id']}", headers=outsider).status_code == 404
    assert client.get("/api/v1/posts", headers=outsider).json["total"] == 0


def test_api_channels_never_show_credentials_or_settings(
    app: Flask, client: FlaskClient, new_york: Agency, users: dict[Role, User]
) -> None:
    channel, _ = fake_channel(new_york, "Fake")
    channel.credentials = '{"token": "s3cr3t-t0ken-value"}'
    channel.settings = {"world": "Fake", "url": "https://hooks.example/abc?key=hidden-in-url"}
    db.session.commit()
    response = client.get("/api/v1/channels", headers=bearer(users[Role.COORDINATOR]))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "s3cr3t-t0ken-value" not in text and "hidden-in-url" not in text
    [shown] = response.json["channels"]
    assert shown == {
        "id": channel.public_id,
        "network": "fake",
        "name": "Fake",
        "status": "connected",
        "status_reason": "",
    }
