"""The Instagram Reels adapter against the local Graph fake: container, resumable
upload, status_code, the publishing quota, media_publish, and never twice."""

from __future__ import annotations

from typing import Any

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
from portal.publishing.channels.connect import OAuthApp
from portal.publishing.channels.instagram import InstagramReels
from portal.publishing.channels.registry import adapter_class
from tests.portal.publishing.channels.conftest import MemorySteps
from tests.portal.publishing.fakes.graph_fake import VERSION, GraphFake


def instagram(graph: GraphFake, **settings: Any) -> InstagramReels:
    return InstagramReels({"user_access_token": "user-token"}, graph.settings(**settings))


def test_registry_serves_instagram_without_edits_or_deletion() -> None:
    assert adapter_class("instagram") is InstagramReels
    assert InstagramReels.edits_in_place is False
    assert InstagramReels.can_delete is False


def test_publish_sends_the_documented_requests(graph: GraphFake, reel_draft: Draft) -> None:
    steps = MemorySteps()
    published = instagram(graph).publish(reel_draft, steps)

    assert graph.ops() == [
        "ig_container",
        "ig_upload",
        "ig_status",
        "ig_status",
        "ig_quota",
        "ig_publish",
        "ig_permalink",
    ]
    container, upload = graph.requests[:2]
    assert container.path == f"/{VERSION}/3003/media"
    assert container.params["media_type"] == "REELS"
    assert container.params["upload_type"] == "resumable"
    assert container.params["caption"] == reel_draft.text
    assert "video_url" not in container.params  # no public URL of the rendition needed
    (made,) = graph.containers.values()
    assert upload.path == f"/ig-api-upload/{VERSION}/{made.id}"
    assert upload.headers["authorization"] == "OAuth user-token"
    assert upload.headers["offset"] == "0"
    assert upload.headers["file_size"] == str(reel_draft.media.size)  # type: ignore[union-attr]
    assert upload.body_size == reel_draft.media.size  # type: ignore[union-attr]
    status, quota, publish = graph.requests[2], graph.requests[4], graph.requests[5]
    assert status.path == f"/{VERSION}/{made.id}" and "status_code" in status.params["fields"]
    assert quota.path == f"/{VERSION}/3003/content_publishing_limit"
    assert quota.params["fields"] == "quota_usage,config"
    assert publish.path == f"/{VERSION}/3003/media_publish"
    assert publish.params == {"creation_id": made.id}
    assert all("access_token" not in r.params for r in graph.requests)

    assert made.status_code == "PUBLISHED"
    assert published == Published(
        made.media_id, f"https://www.instagram.com/reel/R{made.media_id}/"
    )
    assert steps.saved == ["container", "uploaded", "published"]


def test_daily_cap_reached_waits_before_publishing_and_keeps_the_container(
    graph: GraphFake, reel_draft: Draft
) -> None:
    graph.quota_usage = graph.quota_total = 50
    steps = MemorySteps()
    with pytest.raises(CapReached, match="daily cap is reached: 50 of 50 posts by the API in 24"):
        instagram(graph).publish(reel_draft, steps)
    assert "ig_publish" not in graph.ops()
    # The window moved on: the same container is published, none made again.
    graph.quota_usage = 49
    published = instagram(graph).publish(reel_draft, steps)
    (made,) = graph.containers.values()
    assert made.status_code == "PUBLISHED" and published.remote_id == made.media_id
    assert graph.ops().count("ig_publish") == 1


def test_cap_reached_between_the_quota_and_the_publish_waits_and_keeps_the_container(
    graph: GraphFake, reel_draft: Draft, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = instagram(graph)
    # The quota was read with room left; a post made in the app took the last one.
    monkeypatch.setattr(adapter, "check_quota", lambda: None)
    graph.quota_usage = graph.quota_total
    steps = MemorySteps()
    with pytest.raises(CapReached, match=r"daily publishing cap is reached \(9\)"):
        adapter.publish(reel_draft, steps)
    (made,) = graph.containers.values()
    assert made.status_code == "FINISHED" and made.media_id == ""
    assert steps.state["container_id"] == made.id


def test_processing_error_is_rejected(graph: GraphFake, reel_draft: Draft) -> None:
    graph.processing_outcome = "error"
    with pytest.raises(RejectedError, match="could not process.*2207026"):
        instagram(graph).publish(reel_draft, MemorySteps())
    assert "ig_publish" not in graph.ops()


def test_timeout_after_publish_is_found_and_never_published_again(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    graph.fail("ig_publish", "timeout_after_accept")
    with pytest.raises(OutcomeUnknown):
        instagram(graph).publish(reel_draft, steps)
    (made,) = graph.containers.values()
    assert made.status_code == "PUBLISHED"

    found = instagram(graph).find(reel_draft, steps)
    assert found is not None and found.remote_id == made.media_id
    # A retry of the whole delivery sees the stored media and stops there.
    assert instagram(graph).publish(reel_draft, steps).remote_id == made.media_id
    assert graph.ops().count("ig_publish") == 1 and len(graph.media) == 1


def test_published_container_is_not_published_again_even_without_find(
    graph: GraphFake, reel_draft: Draft
) -> None:
    steps = MemorySteps()
    graph.fail("ig_publish", "timeout_after_accept")
    with pytest.raises(OutcomeUnknown):
        instagram(graph).publish(reel_draft, steps)
    instagram(graph).publish(reel_draft, steps)
    assert graph.ops().count("ig_publish") == 1
    assert graph.ops().count("ig_container") == 1


def test_retry_after_upload_does_not_upload_again(graph: GraphFake, reel_draft: Draft) -> None:
    steps = MemorySteps()
    graph.fail("ig_quota", "throttle_4")
    with pytest.raises(TransientError):
        instagram(graph).publish(reel_draft, steps)
    published = instagram(graph).publish(reel_draft, steps)
    assert graph.ops().count("ig_upload") == 1 and graph.ops().count("ig_container") == 1
    assert graph.bytes_uploaded() == reel_draft.media.size  # type: ignore[union-attr]
    assert list(graph.media) == [published.remote_id]


def test_find_before_publishing_says_not_published(graph: GraphFake, reel_draft: Draft) -> None:
    steps = MemorySteps()
    assert instagram(graph).find(reel_draft, steps) is None
    graph.fail("ig_publish", "server_error")
    with pytest.raises(OutcomeUnknown):
        instagram(graph).publish(reel_draft, steps)
    assert instagram(graph).find(reel_draft, steps) is None  # FINISHED, not PUBLISHED
    instagram(graph).publish(reel_draft, steps)
    assert len(graph.media) == 1


def test_expired_container_is_replaced(graph: GraphFake, reel_draft: Draft) -> None:
    steps = MemorySteps()
    graph.fail("ig_quota", "server_error")
    with pytest.raises(TransientError):
        instagram(graph).publish(reel_draft, steps)
    (old,) = graph.containers.values()
    old.status_code = "EXPIRED"  # 24 hours went by
    instagram(graph).publish(reel_draft, steps)
    assert graph.ops().count("ig_container") == 2
    assert [c.status_code for c in graph.containers.values()] == ["EXPIRED", "PUBLISHED"]


@pytest.mark.parametrize(
    ("op", "failure", "error"),
    [
        ("ig_container", "token_expired", CredentialError),
        ("ig_container", "throttle_32", TransientError),
        ("ig_container", "garbage", TransientError),
        ("ig_upload", "server_error", TransientError),
        ("ig_status", "garbage", TransientError),
        ("ig_publish", "token_expired", CredentialError),
        ("ig_publish", "garbage", OutcomeUnknown),
    ],
)
def test_failure_becomes_the_right_error(
    graph: GraphFake, reel_draft: Draft, op: str, failure: str, error: type[Exception]
) -> None:
    graph.fail(op, failure)
    with pytest.raises(error):
        instagram(graph).publish(reel_draft, MemorySteps())
    assert len(graph.media) == 0


def test_update_comments_from_the_account(graph: GraphFake, reel_draft: Draft) -> None:
    published = instagram(graph).publish(reel_draft, MemorySteps())
    comment = instagram(graph).update(published, "SOLVED — thank you")
    assert graph.media[published.remote_id]["comments"] == [
        {"id": comment.remote_id, "text": "SOLVED — thank you"}
    ]
    assert comment.url == published.url
    assert graph.requests[-1].path == f"/{VERSION}/{published.remote_id}/comments"


def test_delete_is_refused_with_the_reason(graph: GraphFake) -> None:
    with pytest.raises(RejectedError, match="no way to delete"):
        instagram(graph).delete(Published("1", "https://www.instagram.com/reel/x/"))
    assert graph.requests == []


def test_test_connection_names_the_account(graph: GraphFake) -> None:
    assert instagram(graph).test_connection() == "@springfieldpd"
    graph.fail("ig_user", "token_expired")
    with pytest.raises(CredentialError):
        instagram(graph).test_connection()


def test_exchange_code_finds_the_linked_instagram_account(graph: GraphFake) -> None:
    app = OAuthApp(
        client_id=graph.app_id,
        client_secret=graph.app_secret,
        redirect_uri="https://portal.example/cb",
        settings={"base_url": graph.url, "api_version": VERSION},
        account_id=graph.page_id,
    )
    graph.codes["code-1"] = app.redirect_uri
    connection = InstagramReels.exchange_code(app, code="code-1")
    assert connection.credentials == {"user_access_token": "user-token"}
    assert connection.settings["ig_user_id"] == "3003"
    # Kept to tell the account's own comments from other people's.
    assert connection.settings["ig_username"] == "springfieldpd"
    assert connection.name == "@springfieldpd"
    assert "instagram_content_publish" in InstagramReels.authorize_url(app, state="s")
