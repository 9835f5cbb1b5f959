"""The admin's channel pages: connect with OAuth against the local Graph fake, test,
disconnect; only an admin of the agency, with CSRF, and a state bound to the session."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import Agency, AuditEvent, Outcome, Role, User
from portal.publishing.channels import registry
from portal.publishing.channels.base import Channel as ChannelAdapter
from portal.publishing.channels.base import CredentialError, Draft, Published, Steps
from portal.publishing.channels.connect import Connection, OAuthApp
from portal.publishing.models import Channel, ChannelStatus
from tests.portal.conftest import csrf_token, sign_in
from tests.portal.publishing.fakes import bluesky as bluesky_fake
from tests.portal.publishing.fakes import mastodon as mastodon_fake
from tests.portal.publishing.fakes import x as x_fake
from tests.portal.publishing.fakes.graph_fake import VERSION, GraphFake, running_fake

CONNECT = "/staff/admin/channels/connect/facebook"
CALLBACK = "http://localhost/staff/admin/channels/callback"


@pytest.fixture
def graph() -> Iterator[GraphFake]:
    yield from running_fake()


@pytest.fixture
def admin(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> FlaskClient:
    return signed_in(users[Role.ADMIN])


def events(action: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(db.session.scalars(query))


def the_channel() -> Channel:
    db.session.expire_all()
    (row,) = db.session.scalars(select(Channel)).all()
    return row


def start(client: FlaskClient, graph: GraphFake, name: str = "Main Page") -> dict[str, list[str]]:
    response = client.post(
        CONNECT,
        data={
            "name": name,
            "client_id": graph.app_id,
            "client_secret": graph.app_secret,
            "base_url": graph.url,
            "account_id": graph.page_id,
            "csrf_token": csrf_token(client, CONNECT),
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    link = re.search(r'id="authorize" href="([^"]+)"', response.get_data(as_text=True))
    assert link
    url = urlsplit(unescape(link.group(1)))
    assert (url.netloc, url.path) == ("www.facebook.com", f"/{VERSION}/dialog/oauth")
    return parse_qs(url.query)


def connect(client: FlaskClient, graph: GraphFake) -> Channel:
    query = start(client, graph)
    graph.codes["code-1"] = query["redirect_uri"][0]
    response = client.get(
        "/staff/admin/channels/callback",
        query_string={"state": query["state"][0], "code": "code-1"},
    )
    assert response.status_code == 302
    return the_channel()


def test_oauth_connect_stores_tokens_encrypted_and_shows_the_account(
    admin: FlaskClient, graph: GraphFake, agency: Agency, users: dict[Role, User]
) -> None:
    page = admin.get(CONNECT).get_data(as_text=True)
    assert CALLBACK in page  # the redirect address to register at the network

    query = start(admin, graph)
    assert query["client_id"] == [graph.app_id]
    assert query["redirect_uri"] == [CALLBACK]
    pending = the_channel()
    assert pending.status == ChannelStatus.DISCONNECTED.value  # nothing posts to it yet

    graph.codes["code-1"] = CALLBACK
    response = admin.get(
        "/staff/admin/channels/callback",
        query_string={"state": query["state"][0], "code": "code-1"},
    )
    assert response.status_code == 302
    row = the_channel()
    assert (row.status, row.agency_id, row.connected_by_id) == (
        "connected",
        agency.id,
        users[Role.ADMIN].id,
    )
    assert row.settings["account_name"] == "Springfield Police Department"
    assert row.settings["page_id"] == graph.page_id
    assert '"page_access_token": "page-token"' in row.credentials
    raw = db.session.execute(text("SELECT credentials FROM channels")).scalar_one()
    assert "page-token" not in raw and "app-secret" not in raw  # encrypted at rest

    listing = admin.get("/staff/admin/channels").get_data(as_text=True)
    assert "Main Page" in listing and "Springfield Police Department" in listing
    assert "page-token" not in listing and "app-secret" not in listing
    assert [e.outcome for e in events("channel.connect")] == [Outcome.SUCCESS.value]
    assert len(events("channel.authorize")) == 1


def test_oauth_callback_with_another_state_is_refused(admin: FlaskClient, graph: GraphFake) -> None:
    graph.codes["code-1"] = CALLBACK
    for forged in ("forged", "\u00e9t\u00e9"):  # not ASCII either: refused, not a crash
        start(admin, graph)
        response = admin.get(
            "/staff/admin/channels/callback", query_string={"state": forged, "code": "code-1"}
        )
        assert response.status_code == 403
    assert the_channel().status == ChannelStatus.DISCONNECTED.value
    assert "token" not in [r.op for r in graph.requests]  # the code was never traded
    assert [e.outcome for e in events("channel.connect")] == [Outcome.DENIED.value] * 2


def test_oauth_callback_is_single_use(admin: FlaskClient, graph: GraphFake) -> None:
    query = start(admin, graph)
    graph.codes["code-1"] = CALLBACK
    callback = {"state": query["state"][0], "code": "code-1"}
    assert admin.get("/staff/admin/channels/callback", query_string=callback).status_code == 302
    replay = admin.get("/staff/admin/channels/callback", query_string=callback)
    assert replay.status_code == 400


def test_oauth_callback_in_another_session_is_refused(
    app: Flask, admin: FlaskClient, graph: GraphFake, make_user: Callable[..., User]
) -> None:
    query = start(admin, graph)
    other = app.test_client()
    assert sign_in(other, make_user(Role.ADMIN).email).status_code == 302
    graph.codes["code-1"] = CALLBACK
    response = other.get(
        "/staff/admin/channels/callback",
        query_string={"state": query["state"][0], "code": "code-1"},
    )
    assert response.status_code == 400
    assert the_channel().status == ChannelStatus.DISCONNECTED.value


def test_oauth_code_the_network_refuses_is_reported(admin: FlaskClient, graph: GraphFake) -> None:
    query = start(admin, graph)
    response = admin.get(
        "/staff/admin/channels/callback",
        query_string={"state": query["state"][0], "code": "never-issued"},
    )
    assert response.status_code == 302
    listing = admin.get("/staff/admin/channels").get_data(as_text=True)
    assert "The network refused the connection" in listing
    row = the_channel()
    assert row.status == ChannelStatus.DISCONNECTED.value
    assert "oauth_pending" not in row.credentials  # used up
    assert [e.outcome for e in events("channel.connect")] == [Outcome.FAILURE.value]


def test_connect_without_csrf_token_is_refused(admin: FlaskClient, graph: GraphFake) -> None:
    admin.get(CONNECT)
    response = admin.post(CONNECT, data={"name": "Main", "client_id": "2002", "account_id": "1001"})
    assert response.status_code == 400
    assert db.session.scalars(select(Channel)).all() == []


BAD_INPUT = [
    ("name", "Main\u202ePage"),  # a bidirectional override
    ("base_url", "ftp://graph.example"),
    ("base_url", "https://user:pw@graph.example"),
    ("account_id", "1001/../../me"),
    ("client_id", ""),
]


def test_connect_form_refuses_bad_input(admin: FlaskClient, graph: GraphFake) -> None:
    for field, value in BAD_INPUT:
        data = {"name": "Main", "client_id": "2002", "base_url": graph.url, "account_id": "1001"}
        data[field] = value
        response = admin.post(CONNECT, data={**data, "csrf_token": csrf_token(admin, CONNECT)})
        assert response.status_code == 400, (field, value)
    assert db.session.scalars(select(Channel)).all() == []


def test_unknown_network_is_not_found(admin: FlaskClient) -> None:
    assert admin.get("/staff/admin/channels/connect/myspace").status_code == 404


def test_test_connection_names_the_account_or_asks_to_reconnect(
    admin: FlaskClient, graph: GraphFake
) -> None:
    row = connect(admin, graph)
    url = f"/staff/admin/channels/{row.public_id}/test"
    admin.post(url, data={"csrf_token": csrf_token(admin, "/staff/admin/channels")})
    page = admin.get("/staff/admin/channels")
    assert "Main Page: connected as Springfield Police Department." in page.get_data(as_text=True)

    graph.page_token = "a-newer-token"  # the stored one was revoked at the network
    admin.post(url, data={"csrf_token": csrf_token(admin, "/staff/admin/channels")})
    html = admin.get("/staff/admin/channels").get_data(as_text=True)
    row = the_channel()
    assert row.status == ChannelStatus.NEEDS_RECONNECT.value
    assert "190" in row.status_reason
    assert "needs reconnect" in html and "Invalid OAuth access token" in html
    assert [e.outcome for e in events("channel.test")] == [
        Outcome.SUCCESS.value,
        Outcome.FAILURE.value,
    ]


def test_disconnect_forgets_the_credentials(admin: FlaskClient, graph: GraphFake) -> None:
    row = connect(admin, graph)
    response = admin.post(
        f"/staff/admin/channels/{row.public_id}/disconnect",
        data={"csrf_token": csrf_token(admin, "/staff/admin/channels")},
    )
    assert response.status_code == 302
    row = the_channel()
    assert (row.status, row.credentials) == (ChannelStatus.DISCONNECTED.value, "{}")
    assert len(events("channel.disconnect")) == 1


def test_test_and_disconnect_without_csrf_token_are_refused(
    admin: FlaskClient, graph: GraphFake
) -> None:
    row = connect(admin, graph)
    for action in ("test", "disconnect"):
        assert admin.post(f"/staff/admin/channels/{row.public_id}/{action}").status_code == 400
    assert the_channel().status == ChannelStatus.CONNECTED.value


def test_another_agencys_channel_is_not_found(admin: FlaskClient, other_agency: Agency) -> None:
    foreign = Channel(agency_id=other_agency.id, network="facebook", name="Theirs", settings={})
    db.session.add(foreign)
    db.session.commit()
    assert "Theirs" not in admin.get("/staff/admin/channels").get_data(as_text=True)
    page_token = csrf_token(admin, CONNECT)
    for action in ("test", "disconnect"):
        response = admin.post(
            f"/staff/admin/channels/{foreign.public_id}/{action}", data={"csrf_token": page_token}
        )
        assert response.status_code == 404
    db.session.expire_all()
    assert foreign.status == ChannelStatus.CONNECTED.value


def test_channel_pages_are_for_admins_only(app: Flask, users: dict[Role, User]) -> None:
    for role in (r for r in Role if r is not Role.ADMIN):
        staff = app.test_client()
        assert sign_in(staff, users[role].email).status_code == 302
        for path in ("/staff/admin/channels", CONNECT, "/staff/admin/channels/callback?state=x"):
            assert staff.get(path).status_code == 403, (role, path)
        token = csrf_token(staff, "/staff/account")
        assert staff.post(CONNECT, data={"csrf_token": token, "name": "x"}).status_code == 403
    assert db.session.scalars(select(Channel)).all() == []


# -- the other ways to connect, through adapters written for these tests --------------


class _Stub(ChannelAdapter):
    """Connecting only: these adapters never post."""

    def test_connection(self) -> str:
        return str(self.settings.get("account_name", ""))

    def publish(self, draft: Draft, steps: Steps) -> Published:
        raise NotImplementedError

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        raise NotImplementedError

    def update(self, published: Published, text: str) -> Published:
        raise NotImplementedError

    def delete(self, published: Published) -> None:
        raise NotImplementedError


class PkceAdapter(_Stub):
    """An OAuth network with PKCE (as X is): checks the verifier against the challenge."""

    network = "test_pkce"
    connect_with = "oauth"
    uses_pkce = True
    challenges: ClassVar[dict[str, str]] = {}

    @classmethod
    def authorize_url(cls, app: OAuthApp, *, state: str, code_challenge: str | None = None) -> str:
        assert code_challenge
        cls.challenges["issued-code"] = code_challenge
        query = {"state": state, "code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"https://auth.example/authorize?{urlencode(query)}"

    @classmethod
    def exchange_code(
        cls, app: OAuthApp, *, code: str, code_verifier: str | None = None
    ) -> Connection:
        digest = hashlib.sha256((code_verifier or "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != cls.challenges.get(code):
            raise CredentialError("PKCE verification failed")
        return Connection({"access_token": "pkce-token"}, {}, "@agency")


class PasswordAdapter(_Stub):
    network = "test_password"
    connect_with = "app_password"

    @classmethod
    def connect_password(cls, settings: Any, *, identifier: str, password: str) -> Connection:
        if password != "abcd-efgh-ijkl-mnop":
            raise CredentialError("Invalid identifier or password")
        return Connection({"app_password": password}, dict(settings), identifier)


class KeyAdapter(_Stub):
    network = "test_key"
    connect_with = "key"

    @classmethod
    def connect_key(cls, settings: Any, *, key: str) -> Connection:
        return Connection({"secret": key}, {"url": settings["base_url"]}, "receiver")


@pytest.fixture
def stub_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (PkceAdapter, PasswordAdapter, KeyAdapter):
        monkeypatch.setitem(registry._adapters, cls.network, cls)


def test_pkce_verifier_sent_matches_the_challenge(admin: FlaskClient, stub_networks: None) -> None:
    path = "/staff/admin/channels/connect/test_pkce"
    response = admin.post(
        path, data={"name": "X", "client_id": "cid", "csrf_token": csrf_token(admin, path)}
    )
    link = re.search(r'id="authorize" href="([^"]+)"', response.get_data(as_text=True))
    assert link
    query = parse_qs(urlsplit(unescape(link.group(1))).query)
    assert query["code_challenge_method"] == ["S256"]
    callback = {"state": query["state"][0], "code": "issued-code"}
    assert admin.get("/staff/admin/channels/callback", query_string=callback).status_code == 302
    row = the_channel()
    assert row.status == ChannelStatus.CONNECTED.value
    assert "pkce-token" in row.credentials and "verifier" not in row.credentials


def test_app_password_connects_or_says_why(admin: FlaskClient, stub_networks: None) -> None:
    path = "/staff/admin/channels/connect/test_password"
    data = {"name": "Sky", "identifier": "spd.example", "password": "wrong"}
    response = admin.post(path, data={**data, "csrf_token": csrf_token(admin, path)})
    assert response.status_code == 400
    assert "Invalid identifier or password" in response.get_data(as_text=True)
    assert db.session.scalars(select(Channel)).all() == []

    data["password"] = "abcd-efgh-ijkl-mnop"
    response = admin.post(path, data={**data, "csrf_token": csrf_token(admin, path)})
    assert response.status_code == 302
    row = the_channel()
    assert (row.status, row.settings["account_name"]) == ("connected", "spd.example")
    assert "abcd-efgh" not in admin.get("/staff/admin/channels").get_data(as_text=True)


def test_key_is_generated_and_shown_once(admin: FlaskClient, stub_networks: None) -> None:
    path = "/staff/admin/channels/connect/test_key"
    data = {"name": "Hook", "base_url": "https://hooks.example/tattletale"}
    response = admin.post(path, data={**data, "csrf_token": csrf_token(admin, path)})
    assert response.status_code == 200
    key = re.search(r'<code class="secret">([^<]+)</code>', response.get_data(as_text=True))
    assert key and len(key.group(1)) >= 40
    row = the_channel()
    assert f'"secret": "{key.group(1)}"' in row.credentials
    assert key.group(1) not in admin.get("/staff/admin/channels").get_data(as_text=True)


def test_reconnect_keeps_the_client_secret_and_clears_the_reason(
    admin: FlaskClient, graph: GraphFake
) -> None:
    row = connect(admin, graph)
    row.status, row.status_reason = ChannelStatus.NEEDS_RECONNECT.value, "token expired"
    db.session.commit()
    page = admin.get(CONNECT, query_string={"name": "Main Page"}).get_data(as_text=True)
    assert 'value="Main Page"' in page and "app-secret" not in page
    response = admin.post(
        CONNECT,
        data={
            "name": "Main Page",
            "client_id": graph.app_id,
            "base_url": graph.url,
            "account_id": graph.page_id,
            "csrf_token": csrf_token(admin, CONNECT),
        },
    )
    link = re.search(r'id="authorize" href="([^"]+)"', response.get_data(as_text=True))
    assert link
    state = parse_qs(urlsplit(unescape(link.group(1))).query)["state"][0]
    graph.codes["code-2"] = CALLBACK
    admin.get("/staff/admin/channels/callback", query_string={"state": state, "code": "code-2"})
    row = the_channel()  # the same row, connected again with the stored secret
    assert (row.status, row.status_reason) == (ChannelStatus.CONNECTED.value, "")


# -- the networks' own adapters, end to end against their fakes ---------------------


def authorize_query(response: Any, expected: str) -> dict[str, list[str]]:
    """The consent page link the connect form showed, checked to lead to ``expected``."""
    assert response.status_code == 200, response.get_data(as_text=True)
    link = re.search(r'id="authorize" href="([^"]+)"', response.get_data(as_text=True))
    assert link
    url = urlsplit(unescape(link.group(1)))
    assert f"{url.scheme}://{url.netloc}{url.path}" == expected
    return parse_qs(url.query)


def check_and_read_the_page(admin: FlaskClient, row: Channel) -> str:
    admin.post(
        f"/staff/admin/channels/{row.public_id}/test",
        data={"csrf_token": csrf_token(admin, "/staff/admin/channels")},
    )
    return admin.get("/staff/admin/channels").get_data(as_text=True)


def stored_raw() -> str:
    return str(db.session.execute(text("SELECT credentials FROM channels")).scalar_one())


def test_mastodon_connects_on_the_agencys_instance(admin: FlaskClient) -> None:
    path = "/staff/admin/channels/connect/mastodon"
    with mastodon_fake.FakeMastodon().running() as fake:
        data = {"name": "Toots", "client_id": mastodon_fake.CLIENT_ID, "base_url": fake.url}
        # Without the instance's address there is nowhere to send the admin.
        response = admin.post(
            path, data={**data, "base_url": "", "csrf_token": csrf_token(admin, path)}
        )
        assert response.status_code == 400 and "instance" in response.get_data(as_text=True)
        assert db.session.scalars(select(Channel)).all() == []

        response = admin.post(
            path,
            data={
                **data,
                "client_secret": mastodon_fake.CLIENT_SECRET,
                "csrf_token": csrf_token(admin, path),
            },
        )
        query = authorize_query(response, f"{fake.url}/oauth/authorize")
        assert query["redirect_uri"] == [CALLBACK]
        code = fake.authorize(query)
        callback = {"state": query["state"][0], "code": code}
        assert admin.get("/staff/admin/channels/callback", query_string=callback).status_code == 302

        row = the_channel()
        account = f"@tattletale@{urlsplit(fake.url).netloc}"
        assert (row.status, row.settings["account_name"]) == ("connected", account)
        assert row.settings["base_url"] == fake.url
        assert f'"access_token": "{mastodon_fake.TOKEN}"' in row.credentials
        raw = stored_raw()
        assert mastodon_fake.TOKEN not in raw and mastodon_fake.CLIENT_SECRET not in raw
        html = check_and_read_the_page(admin, row)
        assert f"Toots: connected as {account}." in html
        assert mastodon_fake.TOKEN not in html and mastodon_fake.CLIENT_SECRET not in html


def test_x_connects_and_a_renewal_during_the_test_is_stored(admin: FlaskClient) -> None:
    path = "/staff/admin/channels/connect/x"
    with x_fake.FakeX().running() as fake:
        response = admin.post(
            path,
            data={
                "name": "Posts",
                "client_id": x_fake.CLIENT_ID,
                "client_secret": x_fake.CLIENT_SECRET,
                "base_url": fake.url,
                "csrf_token": csrf_token(admin, path),
            },
        )
        query = authorize_query(response, "https://x.com/i/oauth2/authorize")
        assert query["code_challenge_method"] == ["S256"]
        code = fake.authorize(query)
        callback = {"state": query["state"][0], "code": code}
        assert admin.get("/staff/admin/channels/callback", query_string=callback).status_code == 302

        row = the_channel()
        assert (row.status, row.settings["account_name"]) == ("connected", "@tattletale")
        assert '"refresh_token": "x-refresh-1"' in row.credentials
        raw = stored_raw()
        assert "x-access-1" not in raw and "x-refresh-1" not in raw
        assert x_fake.CLIENT_SECRET not in raw

        # Two hours later: the check renews the token, and the rotated pair is kept, so
        # the next renewal works too (the first refresh token is spent at X).
        for generation in (2, 3):
            fake.expire_access_tokens()
            html = check_and_read_the_page(admin, row)
            assert "Posts: connected as @tattletale." in html
            row = the_channel()
            assert f'"refresh_token": "x-refresh-{generation}"' in row.credentials
            assert f"x-refresh-{generation}" not in stored_raw()


def test_x_code_the_network_refuses_is_shown_to_the_admin(admin: FlaskClient) -> None:
    path = "/staff/admin/channels/connect/x"
    with x_fake.FakeX().running() as fake:
        response = admin.post(
            path,
            data={
                "name": "Posts",
                "client_id": x_fake.CLIENT_ID,
                "client_secret": "not-the-secret",
                "base_url": fake.url,
                "csrf_token": csrf_token(admin, path),
            },
        )
        query = authorize_query(response, "https://x.com/i/oauth2/authorize")
        callback = {"state": query["state"][0], "code": fake.authorize(query)}
        admin.get("/staff/admin/channels/callback", query_string=callback)
        html = admin.get("/staff/admin/channels").get_data(as_text=True)
        assert "The network refused the connection: X refused the authorization" in html
        assert "invalid_client" in html
        assert the_channel().status == ChannelStatus.DISCONNECTED.value
        assert [e.outcome for e in events("channel.connect")] == [Outcome.FAILURE.value]


def test_bluesky_connects_with_an_app_password_or_says_why(admin: FlaskClient) -> None:
    path = "/staff/admin/channels/connect/bluesky"
    with bluesky_fake.FakeBluesky().running() as fake:
        data = {"name": "Sky", "base_url": fake.url, "identifier": bluesky_fake.IDENTIFIER}
        response = admin.post(
            path, data={**data, "password": "wrong", "csrf_token": csrf_token(admin, path)}
        )
        assert response.status_code == 400
        assert "Invalid identifier or password" in response.get_data(as_text=True)
        assert db.session.scalars(select(Channel)).all() == []
        assert [e.outcome for e in events("channel.connect")] == [Outcome.FAILURE.value]

        response = admin.post(
            path,
            data={
                **data,
                "password": bluesky_fake.APP_PASSWORD,
                "csrf_token": csrf_token(admin, path),
            },
        )
        assert response.status_code == 302
        row = the_channel()
        handle = f"@{bluesky_fake.IDENTIFIER}"
        assert (row.status, row.settings["account_name"]) == ("connected", handle)
        assert (row.settings["did"], row.settings["pds_url"]) == (bluesky_fake.DID, fake.url)
        assert bluesky_fake.APP_PASSWORD in row.credentials
        assert bluesky_fake.APP_PASSWORD not in stored_raw()
        html = check_and_read_the_page(admin, row)
        assert f"Sky: connected as {handle}." in html
        assert bluesky_fake.APP_PASSWORD not in html


def test_webhook_connects_with_a_key_and_its_test_is_a_signed_ping(
    admin: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.publishing.channels.webhook import WebhookChannel
    from tests.portal.publishing.receiver import WebhookReceiver

    # The receiver listens on loopback, which a real webhook may never reach.
    monkeypatch.setattr(WebhookChannel, "allow_private", True)
    path = "/staff/admin/channels/connect/webhook"
    with WebhookReceiver() as receiver:
        short = {"name": "CMS", "base_url": receiver.url, "key": "too-short"}
        response = admin.post(path, data={**short, "csrf_token": csrf_token(admin, path)})
        assert response.status_code == 400
        assert "at least 32 characters" in response.get_data(as_text=True)
        assert db.session.scalars(select(Channel)).all() == []

        data = {"name": "CMS", "base_url": receiver.url, "key": receiver.key}
        response = admin.post(path, data={**data, "csrf_token": csrf_token(admin, path)})
        assert response.status_code in (200, 302)
        row = the_channel()
        assert (row.network, row.settings["url"], row.status) == (
            "webhook",
            receiver.url,
            "connected",
        )
        raw = db.session.execute(
            text("SELECT credentials FROM channels WHERE id = :id"), {"id": row.id}
        ).scalar_one()
        assert receiver.key not in raw  # encrypted at rest
        assert receiver.deliveries == []  # connecting sends nothing

        test = f"/staff/admin/channels/{row.public_id}/test"
        response = admin.post(test, data={"csrf_token": csrf_token(admin, "/staff/admin/channels")})
        assert response.status_code == 302
        (event_id,) = receiver.deliveries  # verified by the receiver's own HMAC check
        assert receiver.events[event_id]["type"] == "ping" and receiver.refused == []
