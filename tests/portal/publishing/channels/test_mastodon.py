"""The Mastodon adapter against a Mastodon server on loopback (fakes/mastodon.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.publishing.channels.base import (
    CredentialError,
    Draft,
    OutcomeUnknown,
    Published,
    RejectedError,
    TransientError,
)
from portal.publishing.channels.connect import (
    Connection,
    OAuthApp,
    code_challenge,
    new_code_verifier,
)
from portal.publishing.channels.mastodon import Mastodon
from portal.publishing.channels.registry import adapter_class
from tests.portal.publishing.channels.conftest import TIMEOUT_S, Clock, MemorySteps
from tests.portal.publishing.fakes.mastodon import (
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN,
    FakeMastodon,
)


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with FakeMastodon().running() as server:
        yield server


def make_adapter(
    fake: FakeMastodon, clock: Clock, token: str = TOKEN, **settings: object
) -> Mastodon:
    adapter = Mastodon(
        {"access_token": token},
        {"base_url": fake.url, "timeout_s": TIMEOUT_S, "poll_interval_s": 2, **settings},
    )
    adapter.sleep = clock.sleep
    adapter.now = clock.now
    return adapter


@pytest.fixture
def adapter(fake: FakeMastodon, clock: Clock) -> Mastodon:
    return make_adapter(fake, clock)


def test_mastodon_registered_under_its_network() -> None:
    assert adapter_class("mastodon") is Mastodon


def test_mastodon_publish_uploads_waits_for_processing_and_posts_once(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft, clock: Clock
) -> None:
    steps = MemorySteps()
    published = adapter.publish(draft, steps)

    (status,) = fake.statuses.values()
    assert status["text"] == draft.text
    (media_id,) = status["media_ids"]
    assert fake.media[media_id]["url"] is not None  # processed before it was attached
    assert fake.media[media_id]["size"] == draft.media.size  # type: ignore[union-attr]
    assert published.remote_id == status["id"]
    assert published.url == f"{fake.url}/@tattletale/{status['id']}"
    # Two 206 answers, each followed by one poll interval of the controlled clock.
    assert clock.sleeps == [2.0, 2.0]
    assert steps.saved == ["uploaded", "processed", "posting", "posted"]


def test_mastodon_requests_follow_the_documentation(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    adapter.publish(draft, MemorySteps())

    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/api/v2/media"),
        ("GET", f"/api/v1/media/{next(iter(fake.media))}"),
        ("GET", f"/api/v1/media/{next(iter(fake.media))}"),
        ("GET", f"/api/v1/media/{next(iter(fake.media))}"),
        ("POST", "/api/v1/statuses"),
    ]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    (upload,) = fake.calls("upload")
    assert upload.files["file"] == ("appeal.mp4", "video/mp4", draft.media.size)  # type: ignore[union-attr]
    assert upload.form["description"] == [draft.alt]
    (post,) = fake.calls("post")
    assert post.headers["Idempotency-Key"] == draft.key
    assert post.form["media_ids[]"] == list(fake.media)
    assert post.form["status"] == [draft.text]
    assert post.form["visibility"] == ["public"]


def test_mastodon_media_processed_at_once_is_not_polled(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft, clock: Clock
) -> None:
    fake.processing_polls = 0  # the 200 answer of POST /api/v2/media
    adapter.publish(draft, MemorySteps())
    assert fake.calls("media") == []
    assert clock.sleeps == []
    assert len(fake.statuses) == 1


def test_mastodon_processing_error_rejects_the_post_with_the_reason(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    fake.processing_error = "Error processing thumbnail for uploaded media"
    with pytest.raises(RejectedError, match="Error processing thumbnail"):
        adapter.publish(draft, MemorySteps())
    assert fake.statuses == {}


def test_mastodon_polling_is_bounded_and_a_retry_resumes_without_uploading_again(
    fake: FakeMastodon, clock: Clock, draft: Draft
) -> None:
    fake.processing_polls = 10
    adapter = make_adapter(fake, clock, processing_timeout_s=6)
    steps = MemorySteps()
    with pytest.raises(TransientError, match="still processing"):
        adapter.publish(draft, steps)
    assert sum(clock.sleeps) == 6  # the budget, in controlled time
    assert fake.statuses == {}

    fake.processing_polls = 0
    next(iter(fake.media.values()))["polls_left"] = 0
    make_adapter(fake, clock).publish(draft, steps)
    assert len(fake.calls("upload")) == 1
    assert len(fake.statuses) == 1


def test_mastodon_server_error_while_polling_resumes_from_the_stored_media(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("media", "server_error")
    with pytest.raises(TransientError, match="500"):
        adapter.publish(draft, steps)
    assert steps.state["mastodon_media_id"] in fake.media

    adapter.publish(draft, steps)
    assert len(fake.calls("upload")) == 1
    (status,) = fake.statuses.values()
    assert status["media_ids"] == [steps.state["mastodon_media_id"]]


def test_mastodon_refused_token_asks_for_a_reconnect(
    fake: FakeMastodon, clock: Clock, draft: Draft
) -> None:
    adapter = make_adapter(fake, clock, token="revoked")
    with pytest.raises(CredentialError):
        adapter.test_connection()
    with pytest.raises(CredentialError):
        adapter.publish(draft, MemorySteps())
    assert fake.media == {} and fake.statuses == {}


def test_mastodon_test_connection_names_the_account(adapter: Mastodon, fake: FakeMastodon) -> None:
    # The fediverse address: a local account's acct comes without the instance.
    assert adapter.test_connection() == f"@tattletale@{urlsplit(fake.url).netloc}"


def test_mastodon_rate_limit_waits_until_the_iso_reset(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    fake.fail("upload", "rate_limited")
    with pytest.raises(TransientError) as raised:
        adapter.publish(draft, MemorySteps())
    # The fake's X-RateLimit-Reset is 05:05:00Z; the clock says 04:20:00Z.
    assert raised.value.retry_after == 45 * 60


@pytest.mark.parametrize(
    ("endpoint", "fault", "error"),
    [
        ("upload", "server_error", TransientError),
        ("upload", "garbage", TransientError),
        ("upload", "hang", TransientError),
        ("post", "server_error", OutcomeUnknown),
        ("post", "garbage", OutcomeUnknown),
        ("post", "unauthorized", CredentialError),
    ],
)
def test_mastodon_failures_map_to_what_should_happen_next(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft, endpoint: str, fault: str, error: type
) -> None:
    fake.fail(endpoint, fault)
    with pytest.raises(error):
        adapter.publish(draft, MemorySteps())


def test_mastodon_lost_answer_is_unknown_and_find_returns_the_one_post(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    assert len(fake.statuses) == 1  # it was posted; only the answer was lost

    found = adapter.find(draft, steps)
    (status,) = fake.statuses.values()
    assert found is not None and found.remote_id == status["id"]
    # find() repeated the request with the same key, and Mastodon gave the original.
    assert [r.headers["Idempotency-Key"] for r in fake.calls("post")] == [draft.key] * 2
    assert len(fake.statuses) == 1


def test_mastodon_request_that_never_arrived_is_posted_once_by_find(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("post", "hang")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    assert fake.statuses == {}
    found = adapter.find(draft, steps)
    assert found is not None
    assert list(fake.statuses) == [found.remote_id]


def test_mastodon_find_before_anything_was_sent_is_none(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    assert adapter.find(draft, MemorySteps()) is None
    assert fake.requests == []


def test_mastodon_find_after_the_key_expired_looks_for_the_media_instead(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft, clock: Clock
) -> None:
    steps = MemorySteps()
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    clock.t += 2 * 3600  # Mastodon has forgotten the key
    fake.idempotency.clear()

    found = adapter.find(draft, steps)
    assert found is not None and found.remote_id in fake.statuses
    assert len(fake.calls("post")) == 1  # looked, did not send again
    (look,) = fake.calls("account_statuses")
    assert look.path == "/api/v1/accounts/42/statuses"
    assert look.args["only_media"] == ["true"]


def test_mastodon_find_after_the_key_expired_without_the_post_is_none(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft, clock: Clock
) -> None:
    steps = MemorySteps()
    fake.fail("post", "hang")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    clock.t += 2 * 3600
    assert adapter.find(draft, steps) is None
    assert len(fake.calls("post")) == 1


def test_mastodon_find_after_the_key_expired_without_media_cannot_tell(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft, clock: Clock
) -> None:
    text_only = replace(draft, media=None)
    steps = MemorySteps()
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(text_only, steps)
    clock.t += 2 * 3600
    with pytest.raises(OutcomeUnknown, match="check the account"):
        adapter.find(text_only, steps)
    assert len(fake.statuses) == 1


def test_mastodon_status_refused_while_media_processes_is_retried_later(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    steps = MemorySteps()
    adapter.publish(draft, steps)
    media_id = steps.state["mastodon_media_id"]
    fake.statuses.clear()
    fake.idempotency.clear()
    fake.media[media_id]["url"] = None  # the server re-processes it
    resumed = MemorySteps({"mastodon_media_id": media_id, "mastodon_media_ready": True})
    with pytest.raises(TransientError, match="still processing"):
        adapter.publish(draft, resumed)


def test_mastodon_update_edits_the_post_and_keeps_its_video(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    published = adapter.publish(draft, MemorySteps())
    media_ids = fake.statuses[published.remote_id]["media_ids"]

    updated = adapter.update(published, "SOLVED — thank you")

    assert updated.remote_id == published.remote_id
    status = fake.statuses[published.remote_id]
    assert status["edited"] is True
    assert status["text"] == f"SOLVED — thank you\n\n{draft.text}"
    assert status["media_ids"] == media_ids
    assert len(fake.statuses) == 1


def test_mastodon_update_that_no_longer_fits_becomes_a_reply(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    long_draft = replace(draft, text="x" * 490)
    published = adapter.publish(long_draft, MemorySteps())

    updated = adapter.update(published, "SOLVED — thank you")

    assert fake.statuses[published.remote_id]["text"] == "x" * 490
    reply = fake.statuses[updated.remote_id]
    assert reply["in_reply_to_id"] == published.remote_id
    assert reply["text"] == "SOLVED — thank you"


def test_mastodon_delete_takes_the_post_down_and_a_gone_post_is_fine(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    published = adapter.publish(draft, MemorySteps())
    adapter.delete(published)
    assert fake.statuses == {}
    adapter.delete(published)
    assert [r.path for r in fake.calls("delete")] == [f"/api/v1/statuses/{published.remote_id}"] * 2


def test_mastodon_delete_on_a_server_error_is_retried(
    fake: FakeMastodon, adapter: Mastodon
) -> None:
    fake.fail("delete", "server_error")
    with pytest.raises(TransientError):
        adapter.delete(Published("1", ""))


def test_mastodon_update_reply_repeated_after_a_lost_answer_is_the_same_reply(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    published = adapter.publish(replace(draft, text="x" * 490), MemorySteps())
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.update(published, "SOLVED — thank you")
    again = adapter.update(published, "SOLVED — thank you")
    assert len(fake.statuses) == 2  # the post and one reply
    assert again.remote_id in fake.statuses


def test_mastodon_update_of_a_deleted_post_is_refused_not_replied_to(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    published = adapter.publish(draft, MemorySteps())
    fake.statuses.clear()
    with pytest.raises(RejectedError, match="404"):
        adapter.update(published, "SOLVED — thank you")
    assert len(fake.calls("post")) == 1  # no reply was attempted


@pytest.mark.parametrize(
    "base_url", ["http://mastodon.example", "ftp://mastodon.example", "", "https://"]
)
def test_mastodon_token_is_never_sent_without_https(base_url: str, draft: Draft) -> None:
    adapter = Mastodon({"access_token": TOKEN}, {"base_url": base_url})
    with pytest.raises(CredentialError, match="https://"):
        adapter.test_connection()
    with pytest.raises(CredentialError, match="https://"):
        adapter.publish(draft, MemorySteps())


def test_mastodon_find_whose_own_answer_is_lost_asks_again_later(
    fake: FakeMastodon, adapter: Mastodon, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("post", "lost_answer", times=2)
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    with pytest.raises(TransientError):  # the keyed repeat is safe to make again
        adapter.find(draft, steps)
    found = adapter.find(draft, steps)
    assert found is not None and list(fake.statuses) == [found.remote_id]


# -- connecting (methods/oauth.md) ----------------------------------------------------

REDIRECT = "https://portal.example/staff/admin/channels/callback"


def oauth_app(fake: FakeMastodon, secret: str = CLIENT_SECRET) -> OAuthApp:
    return OAuthApp(CLIENT_ID, secret, REDIRECT, {"base_url": fake.url, "timeout_s": TIMEOUT_S})


def test_mastodon_authorize_url_asks_for_a_code_with_the_documented_parameters(
    fake: FakeMastodon,
) -> None:
    url = urlsplit(Mastodon.authorize_url(oauth_app(fake), state="st", code_challenge="ch"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake.url}/oauth/authorize"
    assert parse_qs(url.query) == {
        "response_type": ["code"],
        "client_id": [CLIENT_ID],
        "redirect_uri": [REDIRECT],
        "scope": ["read:accounts read:statuses write:media write:statuses"],
        "state": ["st"],
        "code_challenge": ["ch"],
        "code_challenge_method": ["S256"],
    }
    plain = parse_qs(urlsplit(Mastodon.authorize_url(oauth_app(fake), state="st")).query)
    assert "code_challenge" not in plain and "code_challenge_method" not in plain


def test_mastodon_authorize_url_without_an_instance_says_so() -> None:
    app = OAuthApp(CLIENT_ID, CLIENT_SECRET, REDIRECT, {})
    with pytest.raises(CredentialError, match="instance"):
        Mastodon.authorize_url(app, state="st")


def test_mastodon_code_exchange_posts_the_documented_body_and_names_the_account(
    fake: FakeMastodon,
) -> None:
    verifier = new_code_verifier()
    app = oauth_app(fake)
    url = Mastodon.authorize_url(app, state="st", code_challenge=code_challenge(verifier))
    code = fake.authorize(parse_qs(urlsplit(url).query))

    connection = Mastodon.exchange_code(app, code=code, code_verifier=verifier)

    host = urlsplit(fake.url).netloc
    assert connection == Connection(
        credentials={"access_token": TOKEN},
        settings={"base_url": fake.url},
        name=f"@tattletale@{host}",
    )
    (token,) = fake.calls("token")
    assert token.form == {
        "grant_type": ["authorization_code"],
        "code": [code],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "redirect_uri": [REDIRECT],
        "scope": ["read:accounts read:statuses write:media write:statuses"],
        "code_verifier": [verifier],
    }
    assert "Authorization" not in token.headers  # the secret goes in the body only
    (verify,) = fake.calls("verify")
    assert verify.headers["Authorization"] == f"Bearer {TOKEN}"


def test_mastodon_bad_code_or_client_is_a_credential_error_with_the_reason(
    fake: FakeMastodon,
) -> None:
    with pytest.raises(CredentialError, match="invalid_grant.*start again"):
        Mastodon.exchange_code(oauth_app(fake), code="never-issued")
    code = fake.authorize(
        parse_qs(urlsplit(Mastodon.authorize_url(oauth_app(fake), state="st")).query)
    )
    with pytest.raises(CredentialError, match="invalid_client.*client id or secret"):
        Mastodon.exchange_code(oauth_app(fake, secret="wrong"), code=code)
    assert fake.calls("verify") == []


def test_mastodon_code_exchange_with_the_wrong_verifier_is_refused(fake: FakeMastodon) -> None:
    app = oauth_app(fake)
    url = Mastodon.authorize_url(app, state="st", code_challenge=code_challenge("a" * 64))
    code = fake.authorize(parse_qs(urlsplit(url).query))
    with pytest.raises(CredentialError, match="invalid_grant"):
        Mastodon.exchange_code(app, code=code, code_verifier="b" * 64)


def test_mastodon_no_token_secret_or_code_reaches_the_logs(
    fake: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = new_code_verifier()
    app = oauth_app(fake)
    url = Mastodon.authorize_url(app, state="st", code_challenge=code_challenge(verifier))
    code = fake.authorize(parse_qs(urlsplit(url).query))
    Mastodon.exchange_code(app, code=code, code_verifier=verifier)
    assert caplog.records
    for secret in (CLIENT_SECRET, code, verifier, TOKEN):
        assert secret not in caplog.text, secret


def test_mastodon_close_makes_no_client_it_never_used(
    fake: FakeMastodon, adapter: Mastodon
) -> None:
    adapter.close()  # nothing was called: nothing to make, nothing to close
    assert adapter.__dict__.get("_http") is None
    adapter.test_connection()
    used = adapter.__dict__["_http"]
    adapter.close()
    assert used.client.is_closed
