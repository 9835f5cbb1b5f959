"""The Facebook Page adapters against the local Graph fake (tests/portal/publishing/
fakes/graph_fake.py): the documented calls, every documented failure, and resuming."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
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
from portal.publishing.channels.connect import OAuthApp
from portal.publishing.channels.facebook import FacebookReel, FacebookVideo
from portal.publishing.channels.registry import adapter_class
from tests.portal.publishing.channels.conftest import MemorySteps
from tests.portal.publishing.fakes.graph_fake import VERSION, GraphFake

CREDENTIALS = {"page_access_token": "page-token", "user_access_token": "user-token"}


def video(graph: GraphFake, **settings: Any) -> FacebookVideo:
    return FacebookVideo(CREDENTIALS, graph.settings(**settings))


def reel(graph: GraphFake, **settings: Any) -> FacebookReel:
    return FacebookReel(CREDENTIALS, graph.settings(**settings))


def test_registry_serves_both_facebook_networks() -> None:
    assert adapter_class("facebook") is FacebookVideo
    assert adapter_class("facebook_reel") is FacebookReel
    assert FacebookVideo.edits_in_place and FacebookVideo.can_delete


# -- regular Page video ------------------------------------------------------------------


def test_video_publish_sends_the_documented_requests(graph: GraphFake, reel_draft: Draft) -> None:
    steps = MemorySteps()
    published = video(graph).publish(reel_draft, steps)

    assert graph.ops() == ["upload_session", "upload", "videos", "status", "status"]
    session, upload, post = graph.requests[:3]
    assert session.path == f"/{VERSION}/2002/uploads"
    assert session.params["file_length"] == str(reel_draft.media.size)  # type: ignore[union-attr]
    assert session.params["file_type"] == "video/mp4"
    assert session.headers["authorization"] == "OAuth user-token"
    assert upload.path.startswith(f"/{VERSION}/upload:")
    assert upload.headers["file_offset"] == "0"
    assert upload.body_size == reel_draft.media.size  # type: ignore[union-attr]
    assert post.path == f"/{VERSION}/1001/videos"
    assert post.params["description"] == reel_draft.text
    assert post.params["fbuploader_video_file_chunk"].startswith("handle-upload:")
    assert post.headers["authorization"] == "OAuth page-token"
    # The token travels in a header only, never in a URL a proxy would log.
    assert all("token" not in r.params.get("access_token", "") for r in graph.requests)
    assert all("access_token" not in r.params for r in graph.requests)

    (only,) = graph.videos.values()
    assert only.description == reel_draft.text
    assert published == Published(only.id, f"https://www.facebook.com/1001/videos/{only.id}/")
    assert steps.saved == ["upload_session", "uploaded", "posting", "posted"]
    assert steps.state["video_id"] == only.id


def test_video_retry_after_throttling_resumes_without_a_second_upload(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    graph.fail("videos", "throttle_32")
    with pytest.raises(TransientError) as caught:
        video(graph).publish(reel_draft, steps)
    assert caught.value.retry_after == 7 * 60  # the usage header's minutes
    uploaded = graph.bytes_uploaded()

    published = video(graph).publish(reel_draft, steps)
    assert graph.ops()[-3:] == ["videos", "status", "status"]
    assert graph.ops().count("upload") == 1
    assert graph.bytes_uploaded() == uploaded == reel_draft.media.size  # type: ignore[union-attr]
    assert [v.id for v in graph.videos.values()] == [published.remote_id]


def test_video_cut_upload_resumes_from_the_session_offset(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    graph.fail("upload", "server_error")
    with pytest.raises(TransientError):
        video(graph).publish(reel_draft, steps)
    assert steps.saved == ["upload_session"]

    video(graph).publish(reel_draft, steps)
    assert graph.ops()[2:5] == ["upload_status", "upload", "videos"]
    assert graph.ops().count("upload_session") == 1
    assert len(graph.videos) == 1


def test_video_timeout_after_accept_is_found_and_not_posted_again(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    graph.fail("videos", "timeout_after_accept")
    with pytest.raises(OutcomeUnknown):
        video(graph).publish(reel_draft, steps)
    (accepted,) = graph.videos.values()
    # The moment before the call was stored first: what find() looks back to.
    assert steps.saved == ["upload_session", "uploaded", "posting"]

    found = video(graph).find(reel_draft, steps)
    assert found is not None and found.remote_id == accepted.id
    assert steps.state["video_id"] == accepted.id
    # The engine's next attempt resumes from the stored id: no second post.
    again = video(graph).publish(reel_draft, steps)
    assert again.remote_id == accepted.id
    assert graph.ops().count("videos") == 1 and len(graph.videos) == 1


def _lost_answer(graph: GraphFake, draft: Draft) -> tuple[MemorySteps, str]:
    """The call that posts timed out after Facebook took it: (steps, the video's id)."""
    steps = MemorySteps()
    graph.fail("videos", "timeout_after_accept")
    with pytest.raises(OutcomeUnknown):
        video(graph).publish(draft, steps)
    (accepted,) = graph.videos.values()
    return steps, accepted.id


def test_video_lost_answer_is_found_on_a_busy_page_by_reading_further_pages(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps, accepted = _lost_answer(graph, reel_draft)
    # The Page's other tools posted 120 videos since: ours is on the third page.
    before = datetime.now(UTC)
    for n in range(120):
        graph.add_video(f"Other video {n}", before + timedelta(seconds=n + 1))
    found = video(graph, find_page_size=50).find(reel_draft, steps)
    assert found is not None and found.remote_id == accepted
    listings = [r for r in graph.requests if r.op == "page_videos"]
    assert [r.params.get("after") is None for r in listings] == [True, False, False]
    assert all(r.params["limit"] == "50" for r in listings)
    assert "created_time" in listings[0].params["fields"]


def test_video_lost_answer_is_not_taken_for_an_older_video_with_the_same_caption(
    graph: GraphFake, reel_draft: Draft
) -> None:
    old = graph.add_video(reel_draft.text, datetime.now(UTC) - timedelta(days=7))
    graph.fail("videos", "server_error")  # it may have posted, and in fact did not
    steps = MemorySteps()
    with pytest.raises(OutcomeUnknown):
        video(graph).publish(reel_draft, steps)
    assert list(graph.videos) == [old.id]
    with pytest.raises(OutcomeUnknown, match="not on the Page"):
        video(graph).find(reel_draft, steps)
    assert "video_id" not in steps.state
    # The listing stopped at the first video older than the call: one page read.
    assert graph.ops().count("page_videos") == 1


def test_video_lost_answer_with_two_matching_videos_is_left_to_a_person(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps, accepted = _lost_answer(graph, reel_draft)
    twin = graph.add_video(reel_draft.text, datetime.now(UTC) + timedelta(seconds=1))
    with pytest.raises(OutcomeUnknown, match=f"2 videos with this caption.*{twin.id}"):
        video(graph).find(reel_draft, steps)
    assert "video_id" not in steps.state and accepted in graph.videos


def test_video_lost_answer_beyond_the_bounded_pages_is_left_to_a_person(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps, _ = _lost_answer(graph, reel_draft)
    later = datetime.now(UTC) + timedelta(seconds=1)
    for n in range(30):
        graph.add_video(f"Other video {n}", later + timedelta(seconds=n))
    with pytest.raises(OutcomeUnknown, match="not among the Page's latest 20 videos"):
        video(graph, find_page_size=10, find_pages=2).find(reel_draft, steps)
    assert graph.ops().count("page_videos") == 2


def test_video_find_before_the_upload_finished_knows_nothing_was_posted(
    graph: GraphFake, reel_draft: Draft
) -> None:
    graph.fail("upload", "server_error")
    steps = MemorySteps()
    with pytest.raises(TransientError):
        video(graph).publish(reel_draft, steps)
    assert video(graph).find(reel_draft, steps) is None
    assert "page_videos" not in graph.ops()


def test_video_lost_answer_never_listed_is_left_to_a_person(
    graph: GraphFake, reel_draft: Draft
) -> None:
    graph.fail("videos", "server_error")
    steps = MemorySteps()
    with pytest.raises(OutcomeUnknown):  # a 5xx to the call that posts: it may have posted
        video(graph).publish(reel_draft, steps)
    with pytest.raises(OutcomeUnknown):
        video(graph).find(reel_draft, steps)
    assert graph.ops().count("videos") == 1


@pytest.mark.parametrize(
    ("op", "failure", "error"),
    [
        ("upload_session", "token_expired", CredentialError),
        ("videos", "token_expired", CredentialError),
        ("upload_session", "throttle_4", TransientError),
        ("upload_session", "server_error", TransientError),
        ("upload_session", "garbage", TransientError),
        ("videos", "garbage", OutcomeUnknown),
        ("upload", "timeout_after_accept", TransientError),
    ],
)
def test_video_failure_becomes_the_right_error(
    graph: GraphFake, reel_draft: Draft, op: str, failure: str, error: type[Exception]
) -> None:
    graph.fail(op, failure)
    with pytest.raises(error):
        video(graph).publish(reel_draft, MemorySteps())


def test_video_expired_token_says_reconnect_with_the_networks_reason(
    graph: GraphFake, reel_draft: Draft
) -> None:
    graph.fail("upload_session", "token_expired")
    with pytest.raises(CredentialError, match="190.*Session has expired"):
        video(graph).publish(reel_draft, MemorySteps())


def test_video_app_throttling_waits_the_configured_time(
    graph: GraphFake, reel_draft: Draft
) -> None:
    graph.fail("upload_session", "throttle_4")
    with pytest.raises(TransientError) as caught:
        video(graph, rate_limit_wait_s=120).publish(reel_draft, MemorySteps())
    assert caught.value.retry_after == 120


def test_video_processing_error_is_rejected(graph: GraphFake, reel_draft: Draft) -> None:
    graph.processing_outcome = "error"
    with pytest.raises(RejectedError, match="could not process"):
        video(graph).publish(reel_draft, MemorySteps())


def test_video_still_processing_is_retried_and_resumes_the_wait(
    graph: GraphFake, reel_draft: Draft
) -> None:
    graph.processing_polls = 3
    steps = MemorySteps()
    with pytest.raises(TransientError, match="still processing"):
        video(graph, poll_attempts=2).publish(reel_draft, steps)
    published = video(graph, poll_attempts=2).publish(reel_draft, steps)
    assert published.remote_id == steps.state["video_id"]
    assert graph.ops().count("videos") == 1


def test_video_without_media_is_rejected(graph: GraphFake, reel_draft: Draft) -> None:
    text_only = Draft(reel_draft.text, None, reel_draft.link, reel_draft.alt, reel_draft.key)
    with pytest.raises(RejectedError):
        video(graph).publish(text_only, MemorySteps())
    assert graph.requests == []


def test_video_update_edits_the_description_in_place(graph: GraphFake, reel_draft: Draft) -> None:
    published = video(graph).publish(reel_draft, MemorySteps())
    updated = video(graph).update(published, "SOLVED — thank you")
    assert updated == published
    assert graph.videos[published.remote_id].description == "SOLVED — thank you"
    edit = graph.requests[-1]
    assert (edit.method, edit.path) == ("POST", f"/{VERSION}/{published.remote_id}")


def test_video_delete_removes_it_and_a_gone_video_is_not_an_error(
    graph: GraphFake, reel_draft: Draft
) -> None:
    published = video(graph).publish(reel_draft, MemorySteps())
    video(graph).delete(published)
    assert published.remote_id not in graph.videos
    assert graph.requests[-1].method == "DELETE"
    video(graph).delete(published)  # already gone


def test_video_test_connection_names_the_page(graph: GraphFake) -> None:
    assert video(graph).test_connection() == "Springfield Police Department"
    page = graph.requests[-1]
    assert page.path == f"/{VERSION}/1001" and page.params["fields"] == "name"
    wrong = FacebookVideo({"page_access_token": "revoked"}, graph.settings())
    with pytest.raises(CredentialError):
        wrong.test_connection()


# -- Page Reels ---------------------------------------------------------------------------


def test_reel_publish_sends_the_documented_phases(graph: GraphFake, reel_draft: Draft) -> None:
    steps = MemorySteps()
    published = reel(graph).publish(reel_draft, steps)

    assert graph.ops() == ["reels_start", "rupload", "status", "reels_finish"]
    start, upload = graph.requests[:2]
    finish = graph.requests[-1]
    assert start.path == f"/{VERSION}/1001/video_reels"
    assert start.params == {"upload_phase": "start"}
    assert upload.path == f"/video-upload/{VERSION}/{published.remote_id}"
    assert upload.headers["authorization"] == "OAuth page-token"
    assert upload.headers["offset"] == "0"
    assert upload.headers["file_size"] == str(reel_draft.media.size)  # type: ignore[union-attr]
    assert upload.body_size == reel_draft.media.size  # type: ignore[union-attr]
    assert finish.params == {
        "upload_phase": "finish",
        "video_id": published.remote_id,
        "video_state": "PUBLISHED",
        "description": reel_draft.text,
    }
    (only,) = graph.videos.values()
    assert only.published and only.description == reel_draft.text
    assert published == Published(only.id, f"https://www.facebook.com/reel/{only.id}")
    assert steps.saved == ["started", "uploaded", "finished"]


def test_reel_cut_upload_resumes_where_the_network_says(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    graph.fail("rupload", "server_error")
    with pytest.raises(TransientError):
        reel(graph).publish(reel_draft, steps)
    assert steps.saved == ["started"]

    reel(graph).publish(reel_draft, steps)
    assert graph.ops().count("reels_start") == 1
    assert graph.ops()[2:4] == ["status", "rupload"]
    assert len(graph.videos) == 1


def test_reel_retry_after_upload_does_not_upload_again(graph: GraphFake, reel_draft: Draft) -> None:
    steps = MemorySteps()
    graph.fail("reels_finish", "throttle_4")
    with pytest.raises(TransientError):
        reel(graph).publish(reel_draft, steps)
    reel(graph).publish(reel_draft, steps)
    assert graph.ops().count("rupload") == 1
    assert graph.bytes_uploaded() == reel_draft.media.size  # type: ignore[union-attr]


def test_reel_timeout_after_finish_is_found_and_not_finished_again(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    graph.fail("reels_finish", "timeout_after_accept")
    with pytest.raises(OutcomeUnknown):
        reel(graph).publish(reel_draft, steps)
    found = reel(graph).find(reel_draft, steps)
    (only,) = graph.videos.values()
    assert found == Published(only.id, f"https://www.facebook.com/reel/{only.id}")
    assert reel(graph).publish(reel_draft, steps) == found
    assert graph.ops().count("reels_finish") == 1


def test_reel_find_says_not_published_and_publish_resumes(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    assert reel(graph).find(reel_draft, steps) is None  # nothing started: nothing to find
    graph.fail("reels_finish", "server_error")
    with pytest.raises(OutcomeUnknown):
        reel(graph).publish(reel_draft, steps)
    assert reel(graph).find(reel_draft, steps) is None  # publishing_phase not_started
    reel(graph).publish(reel_draft, steps)
    assert graph.ops().count("reels_start") == 1 and graph.ops().count("rupload") == 1
    assert [v.published for v in graph.videos.values()] == [True]


def test_reel_processing_error_is_rejected_with_the_reason(
    graph: GraphFake, reel_draft: Draft
) -> None:
    graph.processing_outcome = "error"
    graph.processing_polls = 0
    with pytest.raises(RejectedError, match="processing phase: Video too short"):
        reel(graph).publish(reel_draft, MemorySteps())
    assert "reels_finish" not in graph.ops()


def test_reel_upload_url_on_another_host_is_refused(graph: GraphFake, reel_draft: Draft) -> None:
    adapter = reel(graph, rupload_url="https://rupload.facebook.com")
    with pytest.raises(RejectedError, match="unexpected host"):
        adapter.publish(reel_draft, MemorySteps())
    assert "rupload" not in graph.ops()  # the token never went there


@pytest.mark.parametrize(
    ("op", "failure", "error"),
    [
        ("reels_start", "token_expired", CredentialError),
        ("reels_start", "garbage", TransientError),
        ("reels_start", "timeout_after_accept", TransientError),
        ("rupload", "throttle_32", TransientError),
        ("reels_finish", "garbage", OutcomeUnknown),
    ],
)
def test_reel_failure_becomes_the_right_error(
    graph: GraphFake, reel_draft: Draft, op: str, failure: str, error: type[Exception]
) -> None:
    graph.fail(op, failure)
    with pytest.raises(error):
        reel(graph).publish(reel_draft, MemorySteps())


# -- connecting ---------------------------------------------------------------------------


def oauth_app(graph: GraphFake, **extra: Any) -> OAuthApp:
    return OAuthApp(
        client_id=graph.app_id,
        client_secret=graph.app_secret,
        redirect_uri="https://portal.example/staff/admin/channels/callback",
        settings={"base_url": graph.url, "api_version": VERSION, **extra},
        account_id=graph.page_id,
    )


def test_authorize_url_asks_for_the_page_permissions(graph: GraphFake) -> None:
    url = FacebookVideo.authorize_url(oauth_app(graph), state="s-123")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "www.facebook.com",
        f"/{VERSION}/dialog/oauth",
    )
    query = parse_qs(parts.query)
    assert query["client_id"] == [graph.app_id]
    assert query["state"] == ["s-123"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["https://portal.example/staff/admin/channels/callback"]
    assert set(query["scope"][0].split(",")) == {
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_posts",
        # Reading people's comments and moderating them (the replies that become tips).
        "pages_read_user_content",
        "pages_manage_engagement",
    }


def test_exchange_code_gets_a_long_lived_token_and_the_page_token(graph: GraphFake) -> None:
    app = oauth_app(graph)
    graph.codes["the-code"] = app.redirect_uri
    connection = FacebookReel.exchange_code(app, code="the-code")
    assert connection.credentials == {
        "user_access_token": "user-token",
        "page_access_token": "page-token",
    }
    assert connection.settings == {"page_id": "1001", "app_id": "2002"}
    assert connection.name == "Springfield Police Department"
    token_calls = [r for r in graph.requests if r.op == "token"]
    assert token_calls[0].params["code"] == "the-code"
    assert token_calls[1].params["grant_type"] == "fb_exchange_token"


def test_exchange_code_refuses_a_used_code(graph: GraphFake) -> None:
    app = oauth_app(graph)
    graph.codes["once"] = app.redirect_uri
    FacebookVideo.exchange_code(app, code="once")
    with pytest.raises(RejectedError, match="verification code"):
        FacebookVideo.exchange_code(app, code="once")


def test_no_secret_reaches_the_logs(
    graph: GraphFake, reel_draft: Draft, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = oauth_app(graph)
    graph.codes["the-code"] = app.redirect_uri
    FacebookVideo.exchange_code(app, code="the-code")
    reel(graph).publish(reel_draft, MemorySteps())
    assert caplog.records  # httpx does log each request (its URL) at INFO
    for secret in ("app-secret", "page-token", "user-token", "short-lived-token", "the-code"):
        assert secret not in caplog.text, secret
