"""The Bluesky adapter against a PDS and video service on loopback (fakes/bluesky.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from portal.publishing.channels.base import (
    CapReached,
    CredentialError,
    Draft,
    OutcomeUnknown,
    Published,
    RejectedError,
    TransientError,
)
from portal.publishing.channels.bluesky import (
    Bluesky,
    count_graphemes,
    facets_for,
    new_tid,
    next_tid,
)
from portal.publishing.channels.connect import Connection
from portal.publishing.channels.registry import adapter_class
from tests.portal.publishing.channels.conftest import TIMEOUT_S, Clock, MemorySteps
from tests.portal.publishing.fakes.bluesky import APP_PASSWORD, DID, IDENTIFIER, TID, FakeBluesky


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky().running() as server:
        yield server


def make_adapter(
    fake: FakeBluesky, clock: Clock, password: str = APP_PASSWORD, **settings: object
) -> Bluesky:
    adapter = Bluesky(
        {"identifier": IDENTIFIER, "app_password": password},
        {
            "pds_url": fake.url,
            "video_url": fake.url,
            "handle": IDENTIFIER,
            "timeout_s": TIMEOUT_S,
            **settings,
        },
    )
    adapter.sleep = clock.sleep
    adapter.now = clock.now
    return adapter


@pytest.fixture
def adapter(fake: FakeBluesky, clock: Clock) -> Bluesky:
    return make_adapter(fake, clock)


def test_bluesky_registered_under_its_network() -> None:
    assert adapter_class("bluesky") is Bluesky


def test_bluesky_defaults_are_the_public_services() -> None:
    adapter = Bluesky({}, {})
    assert str(adapter.pds.client.base_url) == "https://bsky.social"
    assert str(adapter.video.client.base_url) == "https://video.bsky.app"


def test_bluesky_publish_posts_one_record_with_the_processed_video(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft, clock: Clock
) -> None:
    steps = MemorySteps()
    published = adapter.publish(draft, steps)

    (rkey,) = fake.records
    record = fake.records[rkey]["value"]
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == draft.text
    assert record["createdAt"] == "2026-12-02T04:20:03.000Z"  # after three 1 s polls
    assert record["embed"] == {
        "$type": "app.bsky.embed.video",
        "video": next(iter(fake.blobs.values())),
        "alt": draft.alt,
        "aspectRatio": {"width": 320, "height": 180},
    }
    assert next(iter(fake.blobs.values()))["size"] == draft.media.size  # type: ignore[union-attr]
    assert published.remote_id == f"at://{DID}/app.bsky.feed.post/{rkey}"
    assert published.url == f"https://bsky.app/profile/{IDENTIFIER}/post/{rkey}"
    assert published.extra["cid"] == fake.records[rkey]["cid"]
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert steps.saved == ["video_processing", "video_ready", "record_key", "posting", "posted"]


def test_bluesky_requests_follow_the_documentation(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    adapter.publish(draft, MemorySteps())

    assert [r.endpoint for r in fake.requests] == [
        "create_session",
        "service_auth",
        "upload_limits",
        "service_auth",
        "upload_video",
        "job_status",
        "job_status",
        "job_status",
        "job_status",
        "create_record",
    ]
    limits_auth, upload_auth = fake.calls("service_auth")
    assert limits_auth.args["aud"] == ["did:web:video.bsky.app"]
    assert limits_auth.args["lxm"] == ["app.bsky.video.getUploadLimits"]
    assert upload_auth.args["aud"] == [fake.pds_aud]
    assert upload_auth.args["lxm"] == ["com.atproto.repo.uploadBlob"]
    assert upload_auth.args["exp"] == [str(1_796_185_200 + 1800)]
    (upload,) = fake.calls("upload_video")
    assert upload.args == {"did": [DID], "name": ["appeal.mp4"]}
    assert upload.headers["Content-Type"] == "video/mp4"
    assert upload.headers["Authorization"] == f"Bearer {list(fake.service_tokens)[1]}"
    assert len(upload.body) == draft.media.size  # type: ignore[union-attr]
    (create,) = fake.calls("create_record")
    assert create.headers["Authorization"] == "Bearer access-0"
    assert create.json["repo"] == DID
    assert create.json["collection"] == "app.bsky.feed.post"
    assert TID.match(create.json["rkey"])


def test_bluesky_links_and_tags_are_facets_at_byte_offsets() -> None:
    text = "Über #TattletaleTuesday: https://tips.example/a/42?via=social."
    link_start = len("Über #TattletaleTuesday: ".encode())
    assert facets_for(text) == [
        {
            "index": {
                "byteStart": link_start,
                "byteEnd": link_start + len("https://tips.example/a/42?via=social"),
            },
            "features": [
                {
                    "$type": "app.bsky.richtext.facet#link",
                    "uri": "https://tips.example/a/42?via=social",
                }
            ],
        },
        {
            "index": {
                "byteStart": len("Über ".encode()),
                "byteEnd": len("Über #TattletaleTuesday".encode()),
            },
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "TattletaleTuesday"}],
        },
    ]


def test_bluesky_record_keys_are_tids_in_time_order() -> None:
    first, second = new_tid(1_796_185_200.0, 7), new_tid(1_796_185_200.000001, 7)
    assert TID.match(first) and TID.match(second)
    assert first < second


def test_bluesky_caption_over_300_graphemes_is_refused_before_any_call(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    accented = "e\u0301"  # é as e + combining accent: one grapheme, two code points
    assert count_graphemes(accented * 300) == 300
    adapter.publish(replace(draft, text=accented * 300, media=None), MemorySteps())  # fits
    fake.requests.clear()
    with pytest.raises(RejectedError, match="301 characters"):
        adapter.publish(replace(draft, text="a" * 301), MemorySteps())
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, 18 bytes
    with pytest.raises(RejectedError, match="3600 bytes"):
        adapter.publish(replace(draft, text=family * 200), MemorySteps())
    assert fake.requests == []


def test_bluesky_processing_failure_rejects_with_the_failure_code(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    fake.processing_failure = ("encoding_failure", "Video could not be encoded")
    with pytest.raises(RejectedError, match=r"\(encoding_failure\): Video could not be encoded"):
        adapter.publish(draft, MemorySteps())
    assert fake.records == {}


def test_bluesky_daily_upload_limit_waits_for_the_cap_without_uploading(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    fake.can_upload = False
    with pytest.raises(CapReached, match="reached your daily upload limit"):
        adapter.publish(draft, MemorySteps())
    assert fake.calls("upload_video") == []
    assert fake.records == {}


def test_bluesky_video_larger_than_the_bytes_left_today_waits_without_uploading(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    assert draft.media is not None
    fake.remaining_daily_bytes = draft.media.size - 1
    with pytest.raises(CapReached, match=f"allows {draft.media.size - 1} more bytes"):
        adapter.publish(draft, MemorySteps())
    assert fake.calls("upload_video") == []


def test_bluesky_video_already_processed_is_reused(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft, clock: Clock
) -> None:
    adapter.publish(draft, MemorySteps())
    clock.sleeps.clear()
    second = make_adapter(fake, clock).publish(
        replace(draft, key="another-delivery"), MemorySteps()
    )
    assert clock.sleeps == []  # already_exists carried the blob: nothing to wait for
    assert fake.records[second.extra["rkey"]]["value"]["embed"]["video"] == next(
        iter(fake.blobs.values())
    )
    assert len(fake.records) == 2


def test_bluesky_polling_is_bounded_and_a_retry_resumes_the_job(
    fake: FakeBluesky, clock: Clock, draft: Draft
) -> None:
    fake.processing_polls = 20
    steps = MemorySteps()
    with pytest.raises(TransientError, match="still processing"):
        make_adapter(fake, clock, processing_timeout_s=5).publish(draft, steps)
    assert sum(clock.sleeps) == 5
    fake.jobs[steps.state["bluesky_job_id"]]["polls_left"] = 0

    make_adapter(fake, clock).publish(draft, steps)
    assert len(fake.calls("upload_video")) == 1
    assert len(fake.records) == 1


def test_bluesky_failure_after_the_upload_resumes_without_uploading_again(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft, clock: Clock
) -> None:
    steps = MemorySteps()
    fake.fail("create_record", "rate_limited")
    with pytest.raises(TransientError):
        adapter.publish(draft, steps)
    rkey = steps.state["bluesky_rkey"]

    make_adapter(fake, clock).publish(draft, steps)
    assert len(fake.calls("upload_video")) == 1
    assert list(fake.records) == [rkey]  # the key chosen before the first try


def test_bluesky_rate_limit_waits_until_the_epoch_reset(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    fake.fail("create_session", "rate_limited")
    with pytest.raises(TransientError) as raised:
        adapter.publish(draft, MemorySteps())
    assert raised.value.retry_after == 300  # reset 04:25:00, clock 04:20:00


def test_bluesky_rate_limit_honours_retry_after(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    fake.retry_after_only = True
    fake.fail("upload_video", "rate_limited")
    with pytest.raises(TransientError) as raised:
        adapter.publish(draft, MemorySteps())
    assert raised.value.retry_after == 120


def test_bluesky_wrong_app_password_asks_for_a_reconnect(
    fake: FakeBluesky, clock: Clock, draft: Draft
) -> None:
    adapter = make_adapter(fake, clock, password="wrong")
    with pytest.raises(CredentialError):
        adapter.test_connection()
    with pytest.raises(CredentialError):
        adapter.publish(draft, MemorySteps())


def test_bluesky_test_connection_names_the_account(adapter: Bluesky) -> None:
    assert adapter.test_connection() == f"@{IDENTIFIER}"


def test_bluesky_expired_session_is_refreshed_once(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    adapter.test_connection()
    fake.expire_sessions()
    adapter.publish(draft, MemorySteps())
    assert len(fake.calls("refresh_session")) == 1
    assert fake.calls("create_record")[0].headers["Authorization"] == "Bearer access-1"
    assert len(fake.records) == 1


def test_bluesky_refused_refresh_signs_in_again_with_the_app_password(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    adapter.test_connection()
    fake.expire_sessions()
    fake.refresh_tokens.clear()
    adapter.publish(draft, MemorySteps())
    assert len(fake.calls("create_session")) == 2
    assert len(fake.records) == 1


def test_bluesky_session_refused_after_renewal_asks_for_a_reconnect(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    adapter.test_connection()
    fake.expire_sessions()
    original = fake._session

    def born_expired() -> dict[str, object]:
        session = original()
        fake.expired.add(str(session["accessJwt"]))
        return session

    fake._session = born_expired  # type: ignore[method-assign]
    with pytest.raises(CredentialError, match="renewed session"):
        adapter.publish(draft, MemorySteps())
    assert len(fake.calls("refresh_session")) == 1  # once, not in a loop
    assert fake.records == {}


@pytest.mark.parametrize(
    ("endpoint", "fault", "error"),
    [
        ("upload_video", "server_error", TransientError),
        ("upload_video", "garbage", TransientError),
        ("upload_video", "hang", TransientError),
        ("job_status", "unauthorized", CredentialError),
        ("create_record", "server_error", OutcomeUnknown),
        ("create_record", "garbage", OutcomeUnknown),
        ("create_record", "unauthorized", CredentialError),
    ],
)
def test_bluesky_failures_map_to_what_should_happen_next(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft, endpoint: str, fault: str, error: type
) -> None:
    fake.fail(endpoint, fault)
    with pytest.raises(error):
        adapter.publish(draft, MemorySteps())


def test_bluesky_lost_answer_is_unknown_and_find_returns_the_one_record(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("create_record", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    (rkey,) = fake.records

    found = adapter.find(draft, steps)
    assert found is not None and found.remote_id == fake.records[rkey]["uri"]
    (look,) = fake.calls("get_record")
    assert look.args == {"repo": [DID], "collection": ["app.bsky.feed.post"], "rkey": [rkey]}
    # A later publish of the same delivery returns it too, and posts nothing.
    assert adapter.publish(draft, steps).remote_id == found.remote_id
    assert len(fake.calls("create_record")) == 1
    assert len(fake.records) == 1


def test_bluesky_publish_after_an_unknown_outcome_looks_before_it_posts(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft, clock: Clock
) -> None:
    steps = MemorySteps()
    fake.fail("create_record", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    published = make_adapter(fake, clock).publish(draft, steps)
    assert len(fake.calls("create_record")) == 1
    assert published.remote_id == next(iter(fake.records.values()))["uri"]


def test_bluesky_request_that_never_arrived_is_found_missing_then_posted_at_the_same_key(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("create_record", "hang")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    assert adapter.find(draft, steps) is None
    published = adapter.publish(draft, steps)
    assert list(fake.records) == [steps.state["bluesky_rkey"]]
    assert published.extra["rkey"] == steps.state["bluesky_rkey"]


def test_bluesky_find_before_anything_was_sent_is_none(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    assert adapter.find(draft, MemorySteps()) is None
    assert fake.requests == []


def test_bluesky_update_is_a_reply_under_the_post(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    published = adapter.publish(draft, MemorySteps())
    reply = adapter.update(published, "SOLVED — thank you")

    assert reply.remote_id != published.remote_id
    value = fake.records[reply.extra["rkey"]]["value"]
    ref = {"uri": published.remote_id, "cid": published.extra["cid"]}
    assert value["reply"] == {"root": ref, "parent": ref}
    assert value["text"] == "SOLVED — thank you"
    assert fake.records[published.extra["rkey"]]["value"]["text"] == draft.text  # untouched


def test_bluesky_delete_removes_the_record_and_a_gone_one_is_fine(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    published = adapter.publish(draft, MemorySteps())
    adapter.delete(published)
    assert fake.records == {}
    adapter.delete(published)
    assert [r.json["rkey"] for r in fake.calls("delete_record")] == [published.extra["rkey"]] * 2


def test_bluesky_record_lookup_answered_with_garbage_is_retried(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    steps = MemorySteps()
    fake.fail("create_record", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.publish(draft, steps)
    fake.fail("get_record", "garbage")
    with pytest.raises(TransientError):
        adapter.find(draft, steps)
    assert adapter.find(draft, steps) is not None


def test_bluesky_keys_made_in_the_same_instant_differ() -> None:
    keys = [next_tid(1_796_185_200.0) for _ in range(50)]
    assert len(set(keys)) == 50
    assert keys == sorted(keys)


def test_bluesky_update_of_a_post_stored_without_its_cid_asks_for_it(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    published = adapter.publish(draft, MemorySteps())
    reply = adapter.update(Published(published.remote_id, published.url), "SOLVED — thank you")
    parent = fake.records[reply.extra["rkey"]]["value"]["reply"]["parent"]
    assert parent == {"uri": published.remote_id, "cid": published.extra["cid"]}


# -- connecting with an app password ---------------------------------------------------


def test_bluesky_connect_password_creates_a_session_and_keeps_the_did(fake: FakeBluesky) -> None:
    settings = {"base_url": fake.url, "timeout_s": TIMEOUT_S}

    connection = Bluesky.connect_password(settings, identifier=IDENTIFIER, password=APP_PASSWORD)

    assert connection == Connection(
        credentials={"identifier": IDENTIFIER, "app_password": APP_PASSWORD},
        settings={"pds_url": fake.url, "did": DID},
        name=f"@{IDENTIFIER}",
    )
    (sign_in,) = fake.calls("create_session")
    assert sign_in.json == {"identifier": IDENTIFIER, "password": APP_PASSWORD}
    assert Bluesky.connect_with == "app_password"


def test_bluesky_connect_password_refused_says_why(fake: FakeBluesky) -> None:
    with pytest.raises(CredentialError, match="Invalid identifier or password.*app password"):
        Bluesky.connect_password(
            {"pds_url": fake.url, "timeout_s": TIMEOUT_S},
            identifier=IDENTIFIER,
            password="the-account-password",
        )


def test_bluesky_connect_password_refuses_a_plain_http_address() -> None:
    # The app password would cross the wire in clear: refused before any request.
    with pytest.raises(CredentialError, match="https"):
        Bluesky.connect_password(
            {"base_url": "http://bsky.example"}, identifier=IDENTIFIER, password="x"
        )


def test_bluesky_close_releases_both_services_clients(
    fake: FakeBluesky, adapter: Bluesky, draft: Draft
) -> None:
    adapter.publish(draft, MemorySteps())
    clients = [adapter._pds, adapter._video]
    assert all(c is not None for c in clients)
    adapter.close()
    assert all(c.client.is_closed for c in clients if c is not None)


# -- the session kept between jobs ------------------------------------------------------


def _stored(fake: FakeBluesky, clock: Clock, adapter: Bluesky) -> Bluesky:
    """The next job's adapter, built from the credentials the last one left to store."""
    assert adapter.updated_credentials is not None
    again = make_adapter(fake, clock)
    again.credentials = adapter.updated_credentials
    return again


def test_bluesky_session_is_stored_with_the_credentials_and_the_next_job_signs_in_no_more(
    fake: FakeBluesky, adapter: Bluesky, clock: Clock, draft: Draft
) -> None:
    adapter.test_connection()
    assert adapter.updated_credentials == {
        "identifier": IDENTIFIER,
        "app_password": APP_PASSWORD,
        "session": {
            "accessJwt": "access-0",
            "refreshJwt": "refresh-0",
            "did": DID,
            "handle": IDENTIFIER,
        },
    }
    _stored(fake, clock, adapter).publish(replace(draft, media=None), MemorySteps())
    assert len(fake.calls("create_session")) == 1
    assert fake.calls("create_record")[0].headers["Authorization"] == "Bearer access-0"


def test_bluesky_stored_session_that_expired_is_refreshed_and_the_new_one_stored(
    fake: FakeBluesky, adapter: Bluesky, clock: Clock, draft: Draft
) -> None:
    published = adapter.publish(replace(draft, media=None), MemorySteps())
    fake.expire_sessions()
    later = _stored(fake, clock, adapter)

    later.delete(published)

    assert fake.records == {}
    assert len(fake.calls("create_session")) == 1
    assert len(fake.calls("refresh_session")) == 1
    assert later.updated_credentials is not None
    session = later.updated_credentials["session"]
    assert (session["accessJwt"], session["refreshJwt"]) == ("access-1", "refresh-1")


def test_bluesky_stored_session_the_pds_no_longer_knows_signs_in_again_once(
    fake: FakeBluesky, adapter: Bluesky, clock: Clock, draft: Draft
) -> None:
    published = adapter.publish(replace(draft, media=None), MemorySteps())
    fake.access_tokens.clear()  # revoked: 401 AuthenticationRequired
    later = _stored(fake, clock, adapter)

    later.delete(published)

    assert fake.records == {}
    assert len(fake.calls("create_session")) == 2
    assert [r.headers["Authorization"] for r in fake.calls("delete_record")] == [
        "Bearer access-0",
        "Bearer access-1",
    ]


def test_bluesky_stored_session_refused_and_a_revoked_app_password_ask_for_a_reconnect(
    fake: FakeBluesky, adapter: Bluesky, clock: Clock, draft: Draft
) -> None:
    published = adapter.publish(replace(draft, media=None), MemorySteps())
    fake.access_tokens.clear()
    later = _stored(fake, clock, adapter)
    later.credentials = {**later.credentials, "app_password": "revoked"}
    with pytest.raises(CredentialError):
        later.delete(published)
    assert len(fake.calls("create_session")) == 2  # one try with the app password, no loop
    assert len(fake.records) == 1
