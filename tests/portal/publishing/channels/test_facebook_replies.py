"""The comments under a Facebook Page video, against the local Graph fake: the
documented listing (stream, chronological, cursor pages), what is not a tip (the
Page's own comments), look-ups that find edits and deletions, hiding, deleting and
answering, and every failure the network documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.publishing.channels.base import (
    CredentialError,
    Published,
    RejectedError,
    Reply,
    TransientError,
)
from portal.publishing.channels.facebook import FacebookReel, FacebookVideo
from tests.portal.publishing.fakes.graph_fake import VERSION, GraphFake, Video

CREDENTIALS = {"page_access_token": "page-token", "user_access_token": "user-token"}
VIDEO = "777001"
POST = Published(VIDEO, f"https://www.facebook.com/1001/videos/{VIDEO}/")


def page(graph: GraphFake, **settings: Any) -> FacebookVideo:
    return FacebookVideo(CREDENTIALS, graph.settings(**settings))


@pytest.fixture
def video(graph: GraphFake) -> str:
    graph.videos[VIDEO] = Video(VIDEO, "video", "Who saw this car?", published=True)
    return VIDEO


def comments(graph: GraphFake, n: int, on: str = VIDEO) -> list[str]:
    return [graph.comment(on, f"I saw the car, number {i}").id for i in range(n)]


def listing_calls(graph: GraphFake) -> list[dict[str, str]]:
    return [r.params for r in graph.requests if r.op == "fb_comments"]


def test_both_page_networks_offer_every_reply_action() -> None:
    for adapter in (FacebookVideo, FacebookReel):
        assert adapter.lists_replies
        assert adapter.can_hide_replies and adapter.can_delete_replies
        assert adapter.can_answer_replies


def walk(adapter: FacebookVideo, cursor: Any = None) -> tuple[list[Reply], Any, int]:
    """One poll's pages, as the engine takes them: until ``more`` is false."""
    replies: list[Reply] = []
    calls = 0
    while True:
        listed = adapter.list_replies(POST, cursor)
        calls += 1
        replies += listed.replies
        cursor = listed.cursor
        if not listed.more:
            return replies, cursor, calls


def test_listing_sends_the_documented_request_and_reads_every_page(
    graph: GraphFake, video: str
) -> None:
    ids = comments(graph, 250)
    adapter = page(graph)
    first = adapter.list_replies(POST, None)

    (call,) = graph.requests
    assert call.method == "GET" and call.path == f"/{VERSION}/{VIDEO}/comments"
    assert call.params["filter"] == "stream"
    assert call.params["order"] == "reverse_chronological"
    assert call.params["limit"] == "100"
    assert set(call.params["fields"].split(",")) >= {"id", "message", "created_time"}
    assert "from{id,name}" in call.params["fields"]
    assert call.headers["authorization"] == "OAuth page-token"
    assert "after" not in call.params and "access_token" not in call.params

    # Newest first.
    assert [r.remote_id for r in first.replies] == ids[::-1][:100]
    assert first.more is True
    assert first.replies[-1] == Reply(
        remote_id=ids[150],
        text="I saw the car, number 150",
        author="Neighbour 150",
        created_at=datetime(2026, 12, 2, 11, 30, tzinfo=UTC),
        url=f"https://www.facebook.com/1001/videos/{VIDEO}/?comment_id={ids[150]}",
        hidden=False,
    )
    # The cursor is small and plain JSON.
    assert json.loads(json.dumps(first.cursor)) == first.cursor

    rest, cursor, calls = walk(adapter, first.cursor)
    assert calls == 2
    assert listing_calls(graph)[1]["after"] == first.cursor["after"]
    assert [r.remote_id for r in first.replies + rest] == ids[::-1]
    # Between polls no Graph cursor is kept: the guide says they do not last.
    assert cursor["after"] == "" and cursor["walks"] == 1


def test_the_next_poll_returns_only_the_new_comments_and_stops_at_the_mark(
    graph: GraphFake, video: str
) -> None:
    ids = comments(graph, 250)
    adapter = page(graph)
    _, cursor, _ = walk(adapter)

    quiet, cursor, calls = walk(adapter, cursor)
    assert quiet == [] and calls == 1

    new = comments(graph, 3)
    reply = graph.comment(VIDEO, "Yes, by the bakery", parent=ids[0])  # under the oldest
    later, cursor, calls = walk(adapter, cursor)
    assert calls == 1  # the first page reaches back past the mark
    assert [r.remote_id for r in later] == [reply.id, *new[::-1]]


def test_a_deleted_newest_comment_loses_nothing(graph: GraphFake, video: str) -> None:
    ids = comments(graph, 5)
    adapter = page(graph)
    _, cursor, _ = walk(adapter)
    graph.delete_comment(ids[-1])
    new = comments(graph, 2)
    listed, _, _ = walk(adapter, cursor)
    assert [r.remote_id for r in listed] == new[::-1]


def test_a_cursor_the_network_refuses_starts_the_walk_again(graph: GraphFake, video: str) -> None:
    ids = comments(graph, 3)
    cursor = {"after": "bm8gc3VjaCBjb21tZW50", "mark": "", "seen": [], "walks": 0}
    listed = page(graph).list_replies(POST, cursor)
    assert [r.remote_id for r in listed.replies] == ids[::-1]
    refused, again = listing_calls(graph)
    assert refused["after"] == "bm8gc3VjaCBjb21tZW50" and "after" not in again


def test_comments_without_ids_say_the_moderate_task_is_missing(
    graph: GraphFake, video: str
) -> None:
    comments(graph, 2)
    graph.moderate_task = False
    with pytest.raises(RejectedError, match="MODERATE task"):
        page(graph).list_replies(POST, None)


def test_the_pages_own_comments_are_not_listed_but_replies_to_comments_are(
    graph: GraphFake, video: str
) -> None:
    question = graph.comment(VIDEO, "Is that Elm Street?")
    answer = graph.comment(VIDEO, "Please send us a tip", author=("1001", "Springfield PD"))
    neighbour = graph.comment(VIDEO, "It is, by the bakery", parent=question.id)
    hidden_author = graph.comment(VIDEO, "I know him", visible_author=False)

    listed = page(graph).list_replies(POST, None).replies
    assert [r.remote_id for r in listed] == [hidden_author.id, neighbour.id, question.id]
    assert answer.id not in {r.remote_id for r in listed}
    # Someone who has not let the app see them comes with no author at all.
    assert listed[0].author == "" and listed[0].text == "I know him"


def test_a_reel_lists_the_comments_of_its_video(graph: GraphFake) -> None:
    graph.videos["888"] = Video("888", "reel", published=True)
    ids = comments(graph, 2, on="888")
    reel = FacebookReel(CREDENTIALS, graph.settings())
    listed = reel.list_replies(Published("888", "https://www.facebook.com/reel/888"), None)
    assert [r.remote_id for r in listed.replies] == ids[::-1]
    assert graph.requests[-1].path == f"/{VERSION}/888/comments"


def test_look_up_finds_edits_hiding_and_deletions_in_one_batch(
    graph: GraphFake, video: str
) -> None:
    ids = comments(graph, 4)
    graph.edit_comment(ids[0], "never mind, wrong car")
    graph.delete_comment(ids[1])
    graph.comments[2].hidden = True

    found = page(graph).look_up_replies(POST, ids)

    (call,) = graph.requests
    assert call.method == "POST" and call.path == f"/{VERSION}/"
    assert call.headers["authorization"] == "OAuth page-token"
    batch = json.loads(call.params["batch"])
    assert [b["method"] for b in batch] == ["GET"] * 4
    assert [urlsplit(b["relative_url"]).path for b in batch] == ids
    assert "message" in parse_qs(urlsplit(batch[0]["relative_url"]).query)["fields"][0]
    assert set(found) == {ids[0], ids[2], ids[3]}  # the deleted one is missing
    assert found[ids[0]].text == "never mind, wrong car"
    assert found[ids[2]].hidden is True
    assert page(graph).look_up_replies(POST, []) == {}


def test_look_up_without_ids_in_the_answers_does_not_take_comments_for_deleted(
    graph: GraphFake, video: str
) -> None:
    ids = comments(graph, 2)
    graph.moderate_task = False
    assert set(page(graph).look_up_replies(POST, ids)) == set(ids)


@pytest.mark.parametrize("failure", ["partial_batch", "garbage", "throttle_32"])
def test_a_look_up_that_cannot_tell_marks_nothing(
    graph: GraphFake, video: str, failure: str
) -> None:
    ids = comments(graph, 3)
    graph.fail("batch", failure)
    # Not an answer that leaves ids out (which would say they were deleted): an error.
    with pytest.raises(TransientError):
        page(graph).look_up_replies(POST, ids)


def test_look_up_with_a_refused_token_says_reconnect(graph: GraphFake, video: str) -> None:
    ids = comments(graph, 1)
    wrong = FacebookVideo({"page_access_token": "revoked"}, graph.settings())
    with pytest.raises(CredentialError):
        wrong.look_up_replies(POST, ids)


def test_hide_delete_and_answer_reach_the_network(graph: GraphFake, video: str) -> None:
    ids = comments(graph, 3)
    adapter = page(graph)

    adapter.hide_reply(POST, ids[0])
    hide = graph.requests[-1]
    assert (hide.method, hide.path, hide.params["is_hidden"]) == (
        "POST",
        f"/{VERSION}/{ids[0]}",
        "true",
    )
    assert hide.headers["authorization"] == "OAuth page-token"
    assert graph.comments[0].hidden is True

    adapter.delete_reply(POST, ids[1])
    assert graph.requests[-1].method == "DELETE"
    assert graph.comment_by_id(ids[1]) is None

    landed = adapter.answer_reply(POST, ids[2], "Please use our tip form")
    answer = graph.requests[-1]
    assert (answer.method, answer.path) == ("POST", f"/{VERSION}/{ids[2]}/comments")
    assert answer.params["message"] == "Please use our tip form"
    made = graph.comment_by_id(landed.remote_id)
    assert made is not None and made.parent == ids[2] and made.author_id == "1001"
    assert landed.url == POST.url
    # The Page's own answer is not listed back as a tip.
    assert landed.remote_id not in {r.remote_id for r in adapter.list_replies(POST, None).replies}


def test_a_comment_already_hidden_or_gone_is_not_an_error(graph: GraphFake, video: str) -> None:
    ids = comments(graph, 2)
    adapter = page(graph)
    adapter.hide_reply(POST, ids[0])
    adapter.hide_reply(POST, ids[0])
    graph.delete_comment(ids[1])
    adapter.hide_reply(POST, ids[1])
    adapter.delete_reply(POST, ids[1])
    assert graph.comments[0].hidden is True
    with pytest.raises(RejectedError):
        adapter.answer_reply(POST, ids[1], "Please use our tip form")


@pytest.mark.parametrize(
    ("call", "permission"),
    [
        ("hide", "pages_manage_engagement"),
        ("delete", "pages_manage_engagement"),
        ("answer", "pages_manage_engagement"),
        ("list", "pages_read_user_content"),
    ],
)
def test_a_missing_permission_is_refused_with_its_name(
    graph: GraphFake, video: str, call: str, permission: str
) -> None:
    (comment,) = comments(graph, 1)
    graph.page_permissions.discard(permission)
    adapter = page(graph)
    calls = {
        "hide": lambda: adapter.hide_reply(POST, comment),
        "delete": lambda: adapter.delete_reply(POST, comment),
        "answer": lambda: adapter.answer_reply(POST, comment, "Please use our tip form"),
        "list": lambda: adapter.list_replies(POST, None),
    }
    with pytest.raises(RejectedError, match=permission):
        calls[call]()
    assert graph.comments[0].hidden is False and graph.comment_by_id(comment) is not None


@pytest.mark.parametrize(
    ("failure", "wait"),
    [("throttle_32", 7 * 60), ("throttle_80001", 3 * 60), ("throttle_4", 900)],
)
@pytest.mark.parametrize("op", ["fb_comments", "fb_hide", "fb_delete_comment", "fb_answer"])
def test_a_rate_limit_waits_for_the_usage_headers_time(
    graph: GraphFake, video: str, op: str, failure: str, wait: float
) -> None:
    (comment,) = comments(graph, 1)
    graph.fail(op, failure)
    adapter = page(graph)
    calls = {
        "fb_comments": lambda: adapter.list_replies(POST, None),
        "fb_hide": lambda: adapter.hide_reply(POST, comment),
        "fb_delete_comment": lambda: adapter.delete_reply(POST, comment),
        "fb_answer": lambda: adapter.answer_reply(POST, comment, "Please use our tip form"),
    }
    with pytest.raises(TransientError) as caught:
        calls[op]()
    assert caught.value.retry_after == wait
    assert graph.comment_by_id(comment) is not None and not graph.comments[0].hidden


def test_a_refused_token_says_reconnect(graph: GraphFake, video: str) -> None:
    comments(graph, 1)
    graph.fail("fb_comments", "token_expired")
    with pytest.raises(CredentialError, match="190"):
        page(graph).list_replies(POST, None)


@pytest.mark.parametrize("failure", ["garbage", "bad_shape", "server_error"])
def test_an_unreadable_listing_is_transient(graph: GraphFake, video: str, failure: str) -> None:
    comments(graph, 1)
    graph.fail("fb_comments", failure)
    with pytest.raises(TransientError):
        page(graph).list_replies(POST, None)


def test_a_comment_with_an_unreadable_time_is_garbage(graph: GraphFake, video: str) -> None:
    comments(graph, 1)
    original = graph.fb_json

    def broken(comment: Any) -> dict[str, Any]:
        return {**original(comment), "created_time": "yesterday"}

    graph.fb_json = broken  # type: ignore[method-assign,assignment]
    # Neither a tip nor a silent skip: the engine reports an answer it could not read.
    with pytest.raises(ValueError):
        page(graph).list_replies(POST, None)


def test_a_network_that_pages_forever_answers_the_same_cursor(graph: GraphFake, video: str) -> None:
    comments(graph, 150)
    adapter = page(graph)
    first = adapter.list_replies(POST, None)
    graph.fail("fb_comments", "same_page", "same_page")
    again = adapter.list_replies(POST, first.cursor)
    # What the engine stops on: more promised, and the cursor it started from.
    assert again.more is True and again.cursor == first.cursor
