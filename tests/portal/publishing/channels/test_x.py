"""The X adapter against the X API v2 on loopback (fakes/x.py)."""

from __future__ import annotations

import base64
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
from portal.publishing.channels.connect import OAuthApp, code_challenge, new_code_verifier
from portal.publishing.channels.registry import adapter_class
from portal.publishing.channels.x import X
from tests.portal.publishing.channels.conftest import TIMEOUT_S, Clock, MemorySteps
from tests.portal.publishing.fakes.x import CLIENT_ID, CLIENT_SECRET, TOKEN, USER_ID, FakeX

CHUNK = 3000  # the test video (about 7 KB) goes up in three segments


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeX]:
    with FakeX(clock=clock).running() as server:
        yield server


def make_adapter(fake: FakeX, clock: Clock, token: str = TOKEN, **settings: object) -> X:
    adapter = X(
        {"access_token": token},
        {"api_url": fake.url, "timeout_s": TIMEOUT_S, "chunk_size": CHUNK, **settings},
    )
    adapter.sleep = clock.sleep
    adapter.now = clock.now
    return adapter


@pytest.fixture
def adapter(fake: FakeX, clock: Clock) -> X:
    return make_adapter(fake, clock)


def segments_of(draft: Draft) -> int:
    assert draft.media is not None
    return -(-draft.media.size // CHUNK)


def test_x_registered_under_its_network() -> None:
    assert adapter_class("x") is X


def test_x_default_chunk_is_four_mebibytes(fake: FakeX, clock: Clock, draft: Draft) -> None:
    adapter = X({"access_token": TOKEN}, {"api_url": fake.url, "timeout_s": TIMEOUT_S})
    adapter.sleep, adapter.now = clock.sleep, clock.now
    steps = MemorySteps()
    adapter.publish(draft, steps)
    assert steps.state["x_chunk_size"] == 4 * 1024 * 1024
    assert len(fake.calls("media_append")) == 1


def test_x_publish_uploads_in_segments_waits_and_posts_once(
    fake: FakeX, adapter: X, draft: Draft, clock: Clock
) -> None:
    steps = MemorySteps()
    published = adapter.publish(draft, steps)

    (post,) = fake.posts.values()
    (media_id,) = fake.uploads
    assert post["sent_text"] == draft.text
    assert post["media_keys"] == [f"7_{media_id}"]
    assert fake.uploads[media_id]["state"] == "succeeded"
    assert b"".join(fake.uploads[media_id]["segments"][i] for i in range(segments_of(draft))) == (
        draft.media.path.read_bytes()  # type: ignore[union-attr]
    )
    assert published.remote_id == post["id"]
    assert published.url == f"https://x.com/i/web/status/{post['id']}"
    # FINALIZE's check_after_secs, then two in_progress answers each with it again.
    assert clock.sleeps == [3.0, 3.0, 3.0]
    assert steps.saved == ["upload_started"] + ["uploading"] * 3 + [
        "upload_finalized",
        "media_ready",
        "posting",
        "posted",
    ]


def test_x_requests_follow_the_documentation(fake: FakeX, adapter: X, draft: Draft) -> None:
    adapter.publish(draft, MemorySteps())
    (media_id,) = fake.uploads

    assert [r.endpoint for r in fake.requests] == [
        "media_init",
        "media_append",
        "media_append",
        "media_append",
        "media_finalize",
        "media_status",
        "media_status",
        "media_status",
        "post",
    ]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    (init,) = fake.calls("media_init")
    assert init.path == "/2/media/upload"
    assert init.form == {
        "command": ["INIT"],
        "total_bytes": [str(draft.media.size)],  # type: ignore[union-attr]
        "media_type": ["video/mp4"],
        "media_category": ["amplify_video"],
    }
    appends = fake.calls("media_append")
    assert [a.form["segment_index"] for a in appends] == [["0"], ["1"], ["2"]]
    assert all(a.form["media_id"] == [media_id] for a in appends)
    assert [a.files["media"][2] for a in appends] == [CHUNK, CHUNK, draft.media.size - 2 * CHUNK]  # type: ignore[union-attr]
    assert fake.calls("media_finalize")[0].form == {"command": ["FINALIZE"], "media_id": [media_id]}
    assert fake.calls("media_status")[0].args == {"command": ["STATUS"], "media_id": [media_id]}
    (post,) = fake.calls("post")
    assert post.path == "/2/tweets"
    assert post.json == {"text": draft.text, "media": {"media_ids": [media_id]}}


def test_x_failed_segment_resumes_at_the_next_one(fake: FakeX, adapter: X, draft: Draft) -> None:
    steps = MemorySteps()
    fake.fail("media_append", "server_error", after=1)
    with pytest.raises(TransientError, match="503"):
        adapter.publish(draft, steps)
    assert steps.state["x_segments_done"] == 1

    adapter.publish(draft, steps)
    assert len(fake.calls("media_init")) == 1
    sent = [a.form["segment_index"][0] for a in fake.calls("media_append")]
    assert sent == ["0", "1", "1", "2"]  # segment 0 went once; 1 again after its failure
    assert len(fake.posts) == 1


def test_x_expired_upload_starts_again(fake: FakeX, adapter: X, draft: Draft, clock: Clock) -> None:
    steps = MemorySteps()
    fake.fail("media_append", "server_error", after=1)
    with pytest.raises(TransientError):
        adapter.publish(draft, steps)
    clock.t += 86400  # X's expires_after_secs
    adapter.publish(draft, steps)
    assert len(fake.calls("media_init")) == 2
    (post,) = fake.posts.values()
    assert post["media_keys"] == [f"7_{steps.state['x_media_id']}"]


def test_x_processing_failure_rejects_with_the_reason(
    fake: FakeX, adapter: X, draft: Draft
) -> None:
    fake.processing_error = "Invalid or Unsupported media, Reason: UnsupportedMedia."
    with pytest.raises(RejectedError, match="UnsupportedMedia"):
        adapter.publish(draft, MemorySteps())
    assert fake.posts == {}


def test_x_polling_is_bounded_and_a_retry_goes_on_polling(
    fake: FakeX, clock: Clock, draft: Draft
) -> None:
    fake.processing_polls = 50
    steps = MemorySteps()
    with pytest.raises(TransientError, match="still processing"):
        make_adapter(fake, clock, processing_timeout_s=9).publish(draft, steps)
    assert fake.posts == {}
    fake.uploads[steps.state["x_media_id"]]["polls_left"] = 0

    make_adapter(fake, clock).publish(draft, steps)
    assert len(fake.calls("media_append")) == segments_of(draft)
    assert len(fake.calls("media_finalize")) == 1
    assert len(fake.posts) == 1


def test_x_rate_limit_waits_until_the_unix_reset(fake: FakeX, adapter: X, draft: Draft) -> None:
    fake.fail("post", "rate_limited")
    with pytest.raises(TransientError) as raised:
        adapter.publish(draft, MemorySteps())
    assert raised.value.retry_after == 15 * 60 - 9  # reset 04:35:00; clock 04:20:09 after polls


def test_x_refused_token_asks_for_a_reconnect(fake: FakeX, clock: Clock, draft: Draft) -> None:
    adapter = make_adapter(fake, clock, token="expired")
    with pytest.raises(CredentialError):
        adapter.test_connection()
    with pytest.raises(CredentialError):
        adapter.publish(draft, MemorySteps())
    assert fake.uploads == {} and fake.posts == {}


def test_x_test_connection_names_the_account(adapter: X) -> None:
    assert adapter.test_connection() == "@tattletale"


@pytest.mark.parametrize(
    ("endpoint", "fault", "error"),
    [
        ("media_init", "server_error", TransientError),
        ("media_init", "garbage", TransientError),
        ("media_append", "hang", TransientError),
        ("media_status", "garbage", TransientError),
        ("post", "server_error", OutcomeUnknown),
        ("post", "garbage", OutcomeUnknown),
        ("post", "unauthorized", CredentialError),
    ],
)
def test_x_failures_map_to_what_should_happen_next(
    fake: FakeX, adapter: X, draft: Draft, endpoint: str, fault: str, error: type
) -> None:
    fake.fail(endpoint, fault)
    with pytest.raises(error):
        adapter.publish(draft, MemorySteps())


def test_x_lost_answer_is_unknown_and_find_returns_the_one_post(
    fake: FakeX, adapter: X, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    (post,) = fake.posts.values()

    found = adapter.find(draft, steps)
    assert found is not None and found.remote_id == post["id"]
    (look,) = fake.calls("timeline")
    assert look.path == f"/2/users/{USER_ID}/tweets"
    assert look.args["start_time"] == ["2026-12-02T04:15:09Z"]  # 5 min before the attempt
    assert "attachments" in look.args["tweet.fields"][0]
    # The delivery's next publish returns it without posting.
    assert adapter.publish(draft, steps).remote_id == post["id"]
    assert len(fake.calls("post")) == 1


def test_x_text_post_with_a_lost_answer_is_found_by_its_text(
    fake: FakeX, adapter: X, draft: Draft
) -> None:
    text_only = replace(draft, media=None, text="Case 42 & friends: https://tips.example/a/42")
    steps = MemorySteps()
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(text_only, steps)
    found = adapter.find(text_only, steps)
    assert found is not None and found.remote_id in fake.posts


def test_x_request_that_never_arrived_is_found_missing_and_posted_once(
    fake: FakeX, adapter: X, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("post", "hang")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    assert adapter.find(draft, steps) is None
    published = adapter.publish(draft, steps)
    assert list(fake.posts) == [published.remote_id]
    assert len(fake.calls("media_init")) == 1


def test_x_duplicate_refusal_counts_as_posted_when_the_post_is_found(
    fake: FakeX, adapter: X, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    (post,) = fake.posts.values()
    # An engine that sends again anyway: X says "duplicate", the adapter finds the post.
    resent = MemorySteps({k: v for k, v in steps.state.items() if k != "x_sent"})
    assert adapter.publish(draft, resent).remote_id == post["id"]
    assert len(fake.calls("post")) == 2 and len(fake.posts) == 1


def test_x_duplicate_of_an_older_post_is_a_clear_refusal(
    fake: FakeX, adapter: X, draft: Draft, clock: Clock
) -> None:
    adapter.publish(draft, MemorySteps())
    clock.t += 7 * 86400  # the same caption a week later
    with pytest.raises(RejectedError, match="change the caption"):
        adapter.publish(replace(draft, key="next-week"), MemorySteps())
    assert len(fake.posts) == 1


def test_x_find_reads_every_page_it_is_allowed(fake: FakeX, adapter: X, draft: Draft) -> None:
    steps = MemorySteps()
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    for n in range(4):  # newer posts push ours to the second page
        adapter.publish(replace(draft, media=None, text=f"other {n}", key=f"k{n}"), MemorySteps())
    fake.page_size = 3
    found = adapter.find(draft, steps)
    assert found is not None and len(fake.calls("timeline")) == 2


def test_x_find_past_the_pages_it_reads_cannot_tell(
    fake: FakeX, clock: Clock, draft: Draft
) -> None:
    adapter = make_adapter(fake, clock, timeline_pages=1)
    steps = MemorySteps()
    fake.fail("post", "hang")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    for n in range(4):
        adapter.publish(replace(draft, media=None, text=f"other {n}", key=f"k{n}"), MemorySteps())
    fake.page_size = 3
    with pytest.raises(OutcomeUnknown, match="check the account"):
        adapter.find(draft, steps)


def test_x_find_before_anything_was_sent_is_none(fake: FakeX, adapter: X, draft: Draft) -> None:
    assert adapter.find(draft, MemorySteps()) is None
    assert fake.requests == []


def test_x_update_is_a_reply_under_the_post(fake: FakeX, adapter: X, draft: Draft) -> None:
    published = adapter.publish(draft, MemorySteps())
    reply = adapter.update(published, "SOLVED — thank you")
    assert fake.posts[reply.remote_id]["in_reply_to"] == published.remote_id
    assert fake.calls("post")[-1].json == {
        "text": "SOLVED — thank you",
        "reply": {"in_reply_to_tweet_id": published.remote_id},
    }
    assert fake.posts[published.remote_id]["sent_text"] == draft.text


def test_x_delete_takes_the_post_down_and_a_gone_one_is_fine(
    fake: FakeX, adapter: X, draft: Draft
) -> None:
    published = adapter.publish(draft, MemorySteps())
    adapter.delete(published)
    assert fake.posts == {}
    adapter.delete(published)
    assert [r.path for r in fake.calls("delete")] == [f"/2/tweets/{published.remote_id}"] * 2


def test_x_delete_refused_for_another_reason_is_raised(fake: FakeX, adapter: X) -> None:
    fake.fail("delete", "unauthorized")
    with pytest.raises(CredentialError):
        adapter.delete(Published("1", ""))


def test_x_same_update_under_a_second_post_is_a_clear_refusal(
    fake: FakeX, adapter: X, draft: Draft
) -> None:
    first = adapter.publish(draft, MemorySteps())
    second = adapter.publish(replace(draft, media=None, text="Case 43", key="k43"), MemorySteps())
    adapter.update(first, "SOLVED — thank you")
    with pytest.raises(RejectedError, match="differ from post to post"):
        adapter.update(second, "SOLVED — thank you")


# -- connecting and renewing (OAuth 2.0 authorization code with PKCE) -----------------

REDIRECT = "https://portal.example/staff/admin/channels/callback"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def oauth_app(fake: FakeX, secret: str = CLIENT_SECRET) -> OAuthApp:
    return OAuthApp(CLIENT_ID, secret, REDIRECT, {"api_url": fake.url, "timeout_s": TIMEOUT_S})


def consent(fake: FakeX, app: OAuthApp, verifier: str) -> str:
    url = X.authorize_url(app, state="st", code_challenge=code_challenge(verifier))
    return fake.authorize(parse_qs(urlsplit(url).query))


def test_x_authorize_url_asks_for_a_code_with_pkce_and_the_documented_scopes(
    fake: FakeX,
) -> None:
    url = urlsplit(X.authorize_url(oauth_app(fake), state="st", code_challenge="ch"))
    assert (url.scheme, url.netloc, url.path) == ("https", "x.com", "/i/oauth2/authorize")
    assert parse_qs(url.query) == {
        "response_type": ["code"],
        "client_id": [CLIENT_ID],
        "redirect_uri": [REDIRECT],
        "scope": [
            "tweet.read tweet.write users.read media.write tweet.moderate.write offline.access"
        ],
        "state": ["st"],
        "code_challenge": ["ch"],
        "code_challenge_method": ["S256"],
    }
    moved = replace(oauth_app(fake), settings={"authorize_url": "https://auth.example/o"})
    assert X.authorize_url(moved, state="st", code_challenge="ch").startswith(
        "https://auth.example/o?"
    )
    assert X.uses_pkce and X.connect_with == "oauth"


def test_x_code_exchange_sends_the_documented_body_with_basic_auth(fake: FakeX) -> None:
    verifier = new_code_verifier()
    app = oauth_app(fake)
    code = consent(fake, app, verifier)

    connection = X.exchange_code(app, code=code, code_verifier=verifier)

    assert connection.name == "@tattletale"
    assert connection.settings == {"api_url": fake.url}
    assert connection.credentials["access_token"] == "x-access-1"
    assert connection.credentials["refresh_token"] == "x-refresh-1"
    assert connection.credentials["expires_at"] > 0
    (token,) = fake.calls("token")
    assert token.form == {
        "grant_type": ["authorization_code"],
        "code": [code],
        "redirect_uri": [REDIRECT],
        "code_verifier": [verifier],
        "client_id": [CLIENT_ID],
    }
    assert token.headers["Authorization"] == BASIC
    (me,) = fake.calls("me")
    assert me.headers["Authorization"] == "Bearer x-access-1"


def test_x_public_client_sends_no_basic_auth(clock: Clock) -> None:
    with FakeX(clock=clock, confidential=False).running() as fake:
        verifier = new_code_verifier()
        app = oauth_app(fake, secret="")
        connection = X.exchange_code(app, code=consent(fake, app, verifier), code_verifier=verifier)
        assert connection.name == "@tattletale"
        assert "Authorization" not in fake.calls("token")[0].headers


def test_x_bad_code_verifier_or_secret_is_a_credential_error_with_the_reason(
    fake: FakeX,
) -> None:
    app = oauth_app(fake)
    with pytest.raises(CredentialError, match="invalid_grant.*start again"):
        X.exchange_code(app, code="never-issued", code_verifier=new_code_verifier())
    code = consent(fake, app, "v" * 64)
    with pytest.raises(CredentialError, match="invalid_grant"):
        X.exchange_code(app, code=code, code_verifier="w" * 64)
    code = consent(fake, app, "v" * 64)
    with pytest.raises(CredentialError, match="invalid_client.*client id or secret"):
        X.exchange_code(oauth_app(fake, secret="wrong"), code=code, code_verifier="v" * 64)
    assert fake.calls("me") == []


def connected(fake: FakeX, clock: Clock) -> X:
    verifier = new_code_verifier()
    app = oauth_app(fake)
    connection = X.exchange_code(app, code=consent(fake, app, verifier), code_verifier=verifier)
    adapter = X(
        {**connection.credentials, "client_secret": CLIENT_SECRET},
        {"api_url": fake.url, "client_id": CLIENT_ID, "timeout_s": TIMEOUT_S, "chunk_size": CHUNK},
    )
    adapter.sleep, adapter.now = clock.sleep, clock.now
    return adapter


def test_x_expired_token_is_renewed_once_and_the_rotated_pair_exposed(
    fake: FakeX, clock: Clock, draft: Draft
) -> None:
    adapter = connected(fake, clock)
    assert adapter.updated_credentials is None
    fake.expire_access_tokens()
    renewed_at = clock.now()  # the first call (the upload's INIT) renews

    published = adapter.publish(draft, MemorySteps())

    assert len(fake.posts) == 1 and published.remote_id in fake.posts
    refresh = [c for c in fake.calls("token") if c.form["grant_type"] == ["refresh_token"]]
    assert len(refresh) == 1
    assert refresh[0].form == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["x-refresh-1"],
        "client_id": [CLIENT_ID],
    }
    assert refresh[0].headers["Authorization"] == BASIC
    assert adapter.updated_credentials is not None
    assert adapter.updated_credentials["access_token"] == "x-access-2"
    assert adapter.updated_credentials["refresh_token"] == "x-refresh-2"
    assert adapter.updated_credentials["client_secret"] == CLIENT_SECRET  # kept
    assert adapter.updated_credentials["expires_at"] == renewed_at + 7200
    assert "x-refresh-1" not in fake.refresh_tokens  # spent: storing the new pair matters


def test_x_refused_renewal_asks_for_a_reconnect(fake: FakeX, clock: Clock) -> None:
    adapter = connected(fake, clock)
    fake.expire_access_tokens()
    fake.refresh_tokens.clear()  # revoked at X
    with pytest.raises(CredentialError, match="renew.*reconnect.*invalid_grant"):
        adapter.test_connection()
    assert adapter.updated_credentials is None


def test_x_token_refused_again_after_renewal_is_not_renewed_twice(
    fake: FakeX, clock: Clock
) -> None:
    adapter = connected(fake, clock)
    fake.expire_access_tokens()
    fake.fail("me", "unauthorized", times=2)  # the renewed token is refused as well
    with pytest.raises(CredentialError):
        adapter.test_connection()
    assert len([c for c in fake.calls("token") if c.form["grant_type"] == ["refresh_token"]]) == 1
    assert adapter.updated_credentials is not None  # the spent pair's successor, to store


def test_x_without_refresh_token_a_401_is_a_credential_error(fake: FakeX, clock: Clock) -> None:
    adapter = make_adapter(fake, clock, token="expired")
    with pytest.raises(CredentialError):
        adapter.test_connection()
    assert fake.calls("token") == []


def test_x_no_token_secret_or_code_reaches_the_logs(
    fake: FakeX, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = new_code_verifier()
    app = oauth_app(fake)
    code = consent(fake, app, verifier)
    credentials = X.exchange_code(app, code=code, code_verifier=verifier).credentials
    adapter = X(
        {**credentials, "client_secret": CLIENT_SECRET},
        {"api_url": fake.url, "client_id": CLIENT_ID, "timeout_s": TIMEOUT_S},
    )
    fake.expire_access_tokens()
    adapter.test_connection()  # renews
    assert caplog.records  # httpx logs each request (its URL)
    for secret in (CLIENT_SECRET, code, verifier, "x-access-1", "x-refresh-1", "x-refresh-2"):
        assert secret not in caplog.text, secret
