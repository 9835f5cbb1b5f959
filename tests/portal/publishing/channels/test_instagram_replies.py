"""The comments under an Instagram Reel, against the local Graph fake: the documented
listing with nested replies (newest first, as the fake assumes), polls that return only
what is new and a full walk now and then, what is not a tip (the account's own), the
batch look-up, hiding, deleting and answering (top-level and not hidden only), and
every failure the network documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from portal.publishing.channels.base import (
    CredentialError,
    Published,
    RejectedError,
    Reply,
    TransientError,
)
from portal.publishing.channels.instagram import InstagramReels
from tests.portal.publishing.fakes.graph_fake import VERSION, GraphFake

MEDIA = "505001"
POST = Published(MEDIA, "https://www.instagram.com/reel/R505001/")


def instagram(graph: GraphFake, **settings: Any) -> InstagramReels:
    return InstagramReels({"user_access_token": "user-token"}, graph.settings(**settings))


@pytest.fixture
def media(graph: GraphFake) -> str:
    graph.media[MEDIA] = {
        "id": MEDIA,
        "caption": "Who is he?",
        "permalink": POST.url,
        "comments": [],
    }
    return MEDIA


def comments(graph: GraphFake, n: int) -> list[str]:
    return [graph.comment(MEDIA, f"That is my neighbour, number {i}").id for i in range(n)]


def walk(adapter: InstagramReels, cursor: Any = None) -> tuple[list[Reply], Any, int]:
    """One poll's pages, as the engine takes them: until ``more`` is false."""
    replies: list[Reply] = []
    calls = 0
    while True:
        page = adapter.list_replies(POST, cursor)
        calls += 1
        replies += page.replies
        cursor = page.cursor
        if not page.more:
            return replies, cursor, calls


def test_instagram_offers_every_reply_action() -> None:
    assert InstagramReels.lists_replies
    assert InstagramReels.can_hide_replies and InstagramReels.can_delete_replies
    assert InstagramReels.can_answer_replies


def test_listing_sends_the_documented_request_and_reads_every_page(
    graph: GraphFake, media: str
) -> None:
    ids = comments(graph, 250)
    adapter = instagram(graph)
    first = adapter.list_replies(POST, None)

    (call,) = graph.requests
    assert call.method == "GET" and call.path == f"/{VERSION}/{MEDIA}/comments"
    assert call.headers["authorization"] == "OAuth user-token"
    assert call.params["limit"] == "100" and "after" not in call.params
    assert call.params["fields"].startswith("id,text,username,timestamp,hidden,from{id,username}")
    assert "replies{id,text,username,timestamp" in call.params["fields"]
    # Newest first.
    assert [r.remote_id for r in first.replies] == ids[::-1][:100]
    assert first.more is True
    assert first.replies[0] == Reply(
        remote_id=ids[-1],
        text="That is my neighbour, number 249",
        author="@neighbour249",
        created_at=datetime(2026, 12, 2, 13, 9, tzinfo=UTC),
        url=POST.url,
    )
    assert json.loads(json.dumps(first.cursor)) == first.cursor

    rest, cursor, calls = walk(adapter, first.cursor)
    assert calls == 2
    assert sorted(r.remote_id for r in first.replies + rest) == sorted(ids)
    assert cursor["after"] == "" and cursor["walks"] == 1


def test_the_next_poll_returns_only_what_is_new_and_stops_at_the_mark(
    graph: GraphFake, media: str
) -> None:
    ids = comments(graph, 250)
    adapter = instagram(graph)
    _, cursor, _ = walk(adapter)

    new = comments(graph, 3)
    reply = graph.comment(MEDIA, "Yes, he lives above the bakery", parent=ids[-1])
    listed, cursor, calls = walk(adapter, cursor)
    assert calls == 1  # the first page reaches back past the mark
    assert sorted(r.remote_id for r in listed) == sorted([*new, reply.id])

    quiet, _, calls = walk(adapter, cursor)
    assert calls == 1 and quiet == []


def test_a_reply_under_an_old_comment_is_found_by_the_next_full_walk(
    graph: GraphFake, media: str
) -> None:
    ids = comments(graph, 150)
    adapter = instagram(graph, replies_full_walk_every=2)
    _, cursor, _ = walk(adapter)  # walk 0: full
    late = graph.comment(MEDIA, "I know her, she works at the gas station", parent=ids[0])
    missed, cursor, _ = walk(adapter, cursor)  # walk 1: stops at the mark, on page one
    assert late.id not in {r.remote_id for r in missed}
    found, cursor, calls = walk(adapter, cursor)  # walk 2: full again
    assert late.id in {r.remote_id for r in found} and calls == 2
    listed = next(r for r in found if r.remote_id == late.id)
    assert listed.text == "I know her, she works at the gas station"


def test_a_cursor_the_network_refuses_starts_the_walk_again(graph: GraphFake, media: str) -> None:
    ids = comments(graph, 3)
    cursor = {"after": "bm8gc3VjaCBjb21tZW50", "mark": "", "seen": [], "walks": 0}
    listed, _, _ = walk(instagram(graph), cursor)
    assert sorted(r.remote_id for r in listed) == sorted(ids)
    assert [r.params.get("after") for r in graph.requests] == ["bm8gc3VjaCBjb21tZW50", None]


def test_the_accounts_own_comments_and_answers_are_not_listed(graph: GraphFake, media: str) -> None:
    (question,) = comments(graph, 1)
    adapter = instagram(graph)
    update = adapter.update(POST, "SOLVED: thank you all")
    answer = adapter.answer_reply(POST, question, "Please use our tip form")
    listed = {r.remote_id for r in walk(adapter)[0]}
    assert listed == {question}
    assert update.remote_id not in listed and answer.remote_id not in listed
    # Known by its username too (an account connected with it stored).
    graph.comment(MEDIA, "From the app", author=("999", "springfieldpd"))
    by_name = instagram(graph, ig_username="springfieldpd")
    assert {r.remote_id for r in walk(by_name)[0]} == {question}


def test_look_up_finds_edits_hiding_and_deletions_in_one_batch(
    graph: GraphFake, media: str
) -> None:
    ids = comments(graph, 4)
    graph.edit_comment(ids[0], "never mind")
    graph.delete_comment(ids[1])
    graph.comments[2].hidden = True
    found = instagram(graph).look_up_replies(POST, ids)
    (call,) = graph.requests
    assert (call.method, call.path) == ("POST", f"/{VERSION}/")
    assert call.headers["authorization"] == "OAuth user-token"
    assert len(json.loads(call.params["batch"])) == 4
    assert set(found) == {ids[0], ids[2], ids[3]}
    assert found[ids[0]].text == "never mind" and found[ids[2]].hidden is True


def test_hide_delete_and_answer_reach_the_network(graph: GraphFake, media: str) -> None:
    ids = comments(graph, 3)
    adapter = instagram(graph)

    adapter.hide_reply(POST, ids[0])
    hide = graph.requests[-1]
    assert (hide.method, hide.path, hide.params["hide"]) == ("POST", f"/{VERSION}/{ids[0]}", "true")
    assert graph.comments[0].hidden is True
    adapter.hide_reply(POST, ids[0])  # already hidden: not an error

    adapter.delete_reply(POST, ids[1])
    assert graph.requests[-1].method == "DELETE" and graph.comment_by_id(ids[1]) is None
    adapter.delete_reply(POST, ids[1])  # already gone: not an error
    adapter.hide_reply(POST, ids[1])

    landed = adapter.answer_reply(POST, ids[2], "Please use our tip form")
    answer = graph.requests[-1]
    assert (answer.method, answer.path) == ("POST", f"/{VERSION}/{ids[2]}/replies")
    assert answer.params["message"] == "Please use our tip form"
    made = graph.comment_by_id(landed.remote_id)
    assert made is not None and made.parent == ids[2] and made.author_id == graph.ig_user_id
    assert landed.url == POST.url


def test_an_answer_to_a_reply_goes_under_its_comment(graph: GraphFake, media: str) -> None:
    (top,) = comments(graph, 1)
    reply = graph.comment(MEDIA, "He has a red cap", parent=top)
    landed = instagram(graph).answer_reply(POST, reply.id, "Please use our tip form")
    assert graph.requests[-1].path == f"/{VERSION}/{top}/replies"
    made = graph.comment_by_id(landed.remote_id)
    assert made is not None and made.parent == top


def test_a_hidden_comment_cannot_be_answered(graph: GraphFake, media: str) -> None:
    (comment,) = comments(graph, 1)
    graph.comments[0].hidden = True
    with pytest.raises(RejectedError, match="hidden comment"):
        instagram(graph).answer_reply(POST, comment, "Please use our tip form")
    assert "ig_answer" not in graph.ops()


@pytest.mark.parametrize("call", ["hide", "delete", "answer", "list"])
def test_a_missing_permission_is_refused_with_its_name(
    graph: GraphFake, media: str, call: str
) -> None:
    (comment,) = comments(graph, 1)
    graph.ig_permissions.discard("instagram_manage_comments")
    adapter = instagram(graph)
    calls = {
        "hide": lambda: adapter.hide_reply(POST, comment),
        "delete": lambda: adapter.delete_reply(POST, comment),
        "answer": lambda: adapter.answer_reply(POST, comment, "Please use our tip form"),
        "list": lambda: adapter.list_replies(POST, None),
    }
    with pytest.raises(RejectedError, match="instagram_manage_comments"):
        calls[call]()
    assert graph.comments[0].hidden is False and graph.comment_by_id(comment) is not None


@pytest.mark.parametrize("op", ["ig_comments", "ig_hide", "ig_delete_comment", "ig_answer"])
def test_a_rate_limit_waits_for_the_usage_headers_time(
    graph: GraphFake, media: str, op: str
) -> None:
    (comment,) = comments(graph, 1)
    graph.fail(op, "throttle_32")
    adapter = instagram(graph)
    calls = {
        "ig_comments": lambda: adapter.list_replies(POST, None),
        "ig_hide": lambda: adapter.hide_reply(POST, comment),
        "ig_delete_comment": lambda: adapter.delete_reply(POST, comment),
        "ig_answer": lambda: adapter.answer_reply(POST, comment, "Please use our tip form"),
    }
    with pytest.raises(TransientError) as caught:
        calls[op]()
    assert caught.value.retry_after == 7 * 60
    assert len(graph.live_comments(MEDIA)) == 1 and not graph.comments[0].hidden


def test_a_refused_token_says_reconnect(graph: GraphFake, media: str) -> None:
    ids = comments(graph, 1)
    graph.fail("ig_comments", "token_expired")
    with pytest.raises(CredentialError):
        instagram(graph).list_replies(POST, None)
    with pytest.raises(CredentialError):
        InstagramReels({"user_access_token": "revoked"}, graph.settings()).look_up_replies(
            POST, ids
        )


@pytest.mark.parametrize("failure", ["garbage", "bad_shape", "server_error"])
def test_an_unreadable_listing_is_transient(graph: GraphFake, media: str, failure: str) -> None:
    comments(graph, 1)
    graph.fail("ig_comments", failure)
    with pytest.raises(TransientError):
        instagram(graph).list_replies(POST, None)


def test_a_network_that_pages_forever_answers_the_same_cursor(graph: GraphFake, media: str) -> None:
    comments(graph, 150)
    adapter = instagram(graph)
    first = adapter.list_replies(POST, None)
    graph.fail("ig_comments", "same_page")
    again = adapter.list_replies(POST, first.cursor)
    assert again.more is True and again.cursor == first.cursor
