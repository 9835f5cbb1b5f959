"""The Bluesky adapter's replies against the loopback PDS and AppView (fakes/bluesky.py):
the thread listed oldest first in pages from a cursor, looked up again, hidden through
the post's threadgate, answered once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from portal.publishing.channels import bluesky
from portal.publishing.channels.base import (
    CredentialError,
    Draft,
    OutcomeUnknown,
    Published,
    RejectedError,
    Reply,
    TransientError,
)
from portal.publishing.channels.bluesky import Bluesky
from tests.portal.publishing.channels.conftest import TIMEOUT_S, Clock, MemorySteps
from tests.portal.publishing.fakes import json_response
from tests.portal.publishing.fakes.bluesky import (
    APP_PASSWORD,
    DID,
    IDENTIFIER,
    THREADGATE,
    TID,
    FakeBluesky,
)


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky().running() as server:
        yield server


@pytest.fixture
def adapter(fake: FakeBluesky, clock: Clock) -> Bluesky:
    adapter = Bluesky(
        {"identifier": IDENTIFIER, "app_password": APP_PASSWORD},
        {"pds_url": fake.url, "video_url": fake.url, "handle": IDENTIFIER, "timeout_s": TIMEOUT_S},
    )
    adapter.sleep = clock.sleep
    adapter.now = clock.now
    return adapter


@pytest.fixture
def post(adapter: Bluesky, draft: Draft) -> Published:
    return adapter.publish(replace(draft, media=None), MemorySteps())


def _all(adapter: Bluesky, post: Published, cursor: Any = None) -> tuple[list[list[Reply]], Any]:
    """Every page until the listing is caught up (bounded: a loop would fail the test)."""
    pages = []
    for _ in range(50):
        page = adapter.list_replies(post, cursor)
        pages.append(page.replies)
        cursor = page.cursor
        if not page.more:
            return pages, cursor
    raise AssertionError("the listing never caught up")


def _rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def test_bluesky_replies_come_oldest_first_in_pages_and_the_next_call_lists_only_new_ones(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    assert Bluesky.lists_replies and Bluesky.can_hide_replies and Bluesky.can_answer_replies
    added: list[str] = []
    for i in range(240):
        # Every third one answers the reply before it: replies to replies count too.
        parent = added[-1] if i % 3 == 2 else post.remote_id
        added.append(fake.add_reply(parent, f"reply {i}", handle=f"n{i}.bsky.social"))

    pages, cursor = _all(adapter, post)

    assert [len(page) for page in pages] == [100, 100, 40]
    listed = [reply.remote_id for page in pages for reply in page]
    assert listed == added  # oldest first, though the AppView sends newest first
    # The cursor is small and JSON: the newest time listed and the uris at that instant.
    assert json.loads(json.dumps(cursor)) == cursor
    assert cursor == {"at": "2026-12-02T04:20:00.240000+00:00", "uris": [added[-1]]}

    more = [fake.add_reply(post.remote_id, f"late {i}") for i in range(3)]
    page = adapter.list_replies(post, cursor)
    assert [r.remote_id for r in page.replies] == more and page.more is False
    again = adapter.list_replies(post, page.cursor)
    assert again.replies == [] and again.more is False and again.cursor == page.cursor


def test_bluesky_replies_at_the_same_instant_across_a_page_are_each_listed_once(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    instant = "2026-12-02T04:30:00.000Z"
    added = {fake.add_reply(post.remote_id, f"r{i}", indexed_at=instant) for i in range(130)}

    pages, cursor = _all(adapter, post)

    assert [len(page) for page in pages] == [100, 30]
    listed = [reply.remote_id for page in pages for reply in page]
    assert sorted(listed) == sorted(added)
    assert sorted(cursor["uris"]) == sorted(added)
    later = fake.add_reply(post.remote_id, "later", indexed_at="2026-12-02T04:30:00.001Z")
    assert [r.remote_id for r in adapter.list_replies(post, cursor).replies] == [later]


def test_bluesky_reply_says_who_wrote_what_when_with_its_link(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    uri = fake.add_reply(
        post.remote_id,
        "That's my neighbour's car",
        handle="witness.bsky.social",
        indexed_at="2026-12-02T05:00:00.500Z",
        created_at="2026-12-02T04:59:58.000Z",
    )
    (reply,) = adapter.list_replies(post, None).replies
    assert reply == Reply(
        remote_id=uri,
        text="That's my neighbour's car",
        author="witness.bsky.social",
        created_at=datetime(2026, 12, 2, 4, 59, 58, tzinfo=UTC),
        url=f"https://bsky.app/profile/witness.bsky.social/post/{_rkey(uri)}",
        edited=False,
        hidden=False,
    )


def test_bluesky_reply_dated_in_the_future_or_by_a_lost_handle_is_still_filed_sensibly(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    uri = fake.add_reply(
        post.remote_id,
        "back to the future",
        handle="handle.invalid",
        indexed_at="2026-12-02T05:00:00.000Z",
        created_at="2031-01-01T00:00:00.000Z",
    )
    did = uri.split("/")[2]
    (reply,) = adapter.list_replies(post, None).replies
    # Not believed after the time Bluesky indexed it; the DID names whom the handle lost.
    assert reply.created_at == datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    assert reply.author == did
    assert reply.url == f"https://bsky.app/profile/{did}/post/{_rkey(uri)}"


def test_bluesky_the_accounts_own_replies_are_not_listed_but_answers_to_them_are(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    first = fake.add_reply(post.remote_id, "I saw it")
    solved = adapter.update(post, "SOLVED: thank you all")
    under_ours = fake.add_reply(solved.remote_id, "well done")

    (page,), _ = _all(adapter, post)
    assert [r.remote_id for r in page] == [first, under_ours]


def test_bluesky_deleted_and_blocked_entries_in_the_thread_are_passed_over(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    gone = fake.add_reply(post.remote_id, "deleted later")
    fake.add_reply(gone, "under the deleted one")
    blocked = fake.add_reply(post.remote_id, "from someone who blocked us")
    kept = fake.add_reply(post.remote_id, "still here")
    fake.delete_post(gone)
    fake.blocked.add(blocked)

    thread = adapter._xrpc("GET", "app.bsky.feed.getPostThread", params={"uri": post.remote_id})
    kinds = sorted(node["$type"].rsplit("#", 1)[-1] for node in thread["thread"]["replies"])
    assert kinds == ["blockedPost", "notFoundPost", "threadViewPost"]
    assert [r.remote_id for r in adapter.list_replies(post, None).replies] == [kept]


def test_bluesky_requests_for_the_thread_and_the_lookup_follow_the_lexicons(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    uris = [fake.add_reply(post.remote_id, f"r{i}") for i in range(3)]
    adapter.list_replies(post, None)
    adapter.look_up_replies(post, uris)

    (thread,) = fake.calls("get_post_thread")
    assert thread.args == {"uri": [post.remote_id], "depth": ["200"], "parentHeight": ["0"]}
    (lookup,) = fake.calls("get_posts")
    assert lookup.args == {"uris": uris}
    assert thread.headers["Authorization"] == lookup.headers["Authorization"] == "Bearer access-0"


def test_bluesky_look_up_finds_changed_text_and_leaves_out_deleted_and_blocked_replies(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    rewritten, deleted, blocked, same = (
        fake.add_reply(post.remote_id, f"reply {i}") for i in range(4)
    )
    # Bluesky has no edit; an author may rewrite the record in place (putRecord).
    fake.rewrite_post(rewritten, "never mind, wrong car")
    fake.delete_post(deleted)
    fake.blocked.add(blocked)

    found = adapter.look_up_replies(post, [rewritten, deleted, blocked, same])

    assert set(found) == {rewritten, same}
    assert found[rewritten].text == "never mind, wrong car"
    assert found[same].text == "reply 3" and found[same].edited is False
    assert adapter.look_up_replies(post, []) == {}
    with pytest.raises(ValueError, match="25"):
        adapter.look_up_replies(post, [same] * 26)


def test_bluesky_hide_adds_the_reply_to_the_posts_threadgate(
    fake: FakeBluesky, adapter: Bluesky, post: Published, clock: Clock
) -> None:
    first, second = (fake.add_reply(post.remote_id, f"names a man {i}") for i in range(2))

    adapter.hide_reply(post, first)
    gate = fake.threadgates[_rkey(post.remote_id)]
    assert gate["uri"] == f"at://{DID}/{THREADGATE}/{_rkey(post.remote_id)}"
    assert gate["value"] == {
        "$type": THREADGATE,
        "post": post.remote_id,
        "createdAt": "2026-12-02T04:20:00.000Z",
        "hiddenReplies": [first],
    }  # no "allow": anyone may still reply
    (write,) = fake.calls("put_record")
    assert "swapRecord" not in write.json  # there was no threadgate to compare with

    clock.t += 60
    adapter.hide_reply(post, second)
    value = fake.threadgates[_rkey(post.remote_id)]["value"]
    assert value["hiddenReplies"] == [first, second]
    assert value["createdAt"] == "2026-12-02T04:20:00.000Z"
    assert fake.calls("put_record")[1].json["swapRecord"] == gate["cid"]
    # The thread shows them hidden.
    listed = {r.remote_id: r.hidden for r in adapter.list_replies(post, None).replies}
    assert listed == {first: True, second: True}


def test_bluesky_hide_of_a_hidden_or_gone_reply_is_not_an_error_and_writes_nothing(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    hidden, gone = (fake.add_reply(post.remote_id, f"r{i}") for i in range(2))
    adapter.hide_reply(post, hidden)
    fake.delete_post(gone)

    adapter.hide_reply(post, hidden)
    adapter.hide_reply(post, gone)

    assert len(fake.calls("put_record")) == 1
    assert fake.threadgates[_rkey(post.remote_id)]["value"]["hiddenReplies"] == [hidden]


def test_bluesky_hide_keeps_the_reply_rules_the_agency_set_in_the_app(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    earlier = fake.add_reply(post.remote_id, "hidden in the app")
    reply = fake.add_reply(post.remote_id, "names a man")
    rkey = _rkey(post.remote_id)
    fake.threadgates[rkey] = {
        "uri": f"at://{DID}/{THREADGATE}/{rkey}",
        "cid": "bafyreiappmade",
        "value": {
            "$type": THREADGATE,
            "post": post.remote_id,
            "createdAt": "2026-12-01T09:00:00.000Z",
            "allow": [{"$type": "app.bsky.feed.threadgate#followingRule"}],
            "hiddenReplies": [earlier],
        },
    }
    adapter.hide_reply(post, reply)
    assert fake.threadgates[rkey]["value"] == {
        "$type": THREADGATE,
        "post": post.remote_id,
        "createdAt": "2026-12-01T09:00:00.000Z",
        "allow": [{"$type": "app.bsky.feed.threadgate#followingRule"}],
        "hiddenReplies": [earlier, reply],
    }


def test_bluesky_hide_past_the_lexicons_fifty_is_refused_with_the_reason(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    replies = [fake.add_reply(post.remote_id, f"r{i}") for i in range(51)]
    for uri in replies[:50]:
        adapter.hide_reply(post, uri)
    with pytest.raises(RejectedError, match="at most 50 replies"):
        adapter.hide_reply(post, replies[50])
    assert len(fake.threadgates[_rkey(post.remote_id)]["value"]["hiddenReplies"]) == 50
    assert len(fake.calls("put_record")) == 50


def test_bluesky_hide_while_the_app_changed_the_threadgate_is_tried_again_not_overwritten(
    fake: FakeBluesky, adapter: Bluesky, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_app, ours = (fake.add_reply(post.remote_id, f"r{i}") for i in range(2))
    adapter.hide_reply(post, in_app)
    rkey = _rkey(post.remote_id)
    answer = fake.on_get_record

    def then_the_app_writes(request: Request) -> Response:
        response = answer(request)
        fake.threadgates[rkey] = {**fake.threadgates[rkey], "cid": "bafyreimeanwhile"}
        return response

    monkeypatch.setattr(fake, "on_get_record", then_the_app_writes)
    with pytest.raises(TransientError, match="changed"):
        adapter.hide_reply(post, ours)
    assert fake.threadgates[rkey]["value"]["hiddenReplies"] == [in_app]


def test_bluesky_answer_replies_under_the_reply_in_the_posts_thread(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    reply = fake.add_reply(post.remote_id, "It's Bob from the garage")
    text = "Please don't name anyone in public: https://tips.example/a/42?via=bluesky"

    answer = adapter.answer_reply(post, reply, text)

    rkey = _rkey(answer.remote_id)
    assert TID.match(rkey)
    value = fake.records[rkey]["value"]
    assert value["text"] == text
    assert value["reply"] == {
        "root": {"uri": post.remote_id, "cid": post.extra["cid"]},
        "parent": {"uri": reply, "cid": fake.others[reply]["cid"]},
    }
    assert value["facets"][0]["features"][0]["uri"] == "https://tips.example/a/42?via=bluesky"
    assert answer.url == f"https://bsky.app/profile/{IDENTIFIER}/post/{rkey}"
    # The account's answer is not listed as a reply to file.
    assert [r.remote_id for r in adapter.list_replies(post, None).replies] == [reply]


def test_bluesky_answer_asked_twice_posts_once(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    reply = fake.add_reply(post.remote_id, "It's Bob")
    fake.fail("create_record", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.answer_reply(post, reply, "Please use the tip form")

    again = adapter.answer_reply(post, reply, "Please use the tip form")

    assert len(fake.calls("create_record")) == 2  # the post, and the one answer
    answers = [r for r in fake.records.values() if r["uri"] != post.remote_id]
    assert [a["uri"] for a in answers] == [again.remote_id]


def test_bluesky_answers_to_two_replies_are_two_records(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    first, second = (fake.add_reply(post.remote_id, f"r{i}") for i in range(2))
    one = adapter.answer_reply(post, first, "Please use the tip form")
    two = adapter.answer_reply(post, second, "Please use the tip form")
    assert one.remote_id != two.remote_id
    assert fake.records[_rkey(two.remote_id)]["value"]["reply"]["parent"]["uri"] == second


def test_bluesky_answer_to_a_deleted_reply_is_refused_before_anything_is_posted(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    reply = fake.add_reply(post.remote_id, "gone soon")
    fake.delete_post(reply)
    with pytest.raises(RejectedError, match="no longer on Bluesky"):
        adapter.answer_reply(post, reply, "Please use the tip form")
    assert len(fake.calls("create_record")) == 1  # the post only


def test_bluesky_cannot_delete_anothers_reply(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    reply = fake.add_reply(post.remote_id, "names a man")
    assert Bluesky.can_delete_replies is False
    with pytest.raises(NotImplementedError):
        adapter.delete_reply(post, reply)
    # The network refuses it too: the reply lives in its author's repository.
    author = reply.split("/")[2]
    with pytest.raises(CredentialError):
        adapter._xrpc(
            "POST",
            "com.atproto.repo.deleteRecord",
            json={"repo": author, "collection": "app.bsky.feed.post", "rkey": _rkey(reply)},
        )
    assert reply in fake.others


@pytest.mark.parametrize(
    ("endpoint", "call"),
    [
        ("get_post_thread", "list"),
        ("get_posts", "look_up"),
        ("put_record", "hide"),
        ("create_record", "answer"),
    ],
)
def test_bluesky_rate_limit_on_replies_waits_until_the_epoch_reset(
    fake: FakeBluesky, adapter: Bluesky, post: Published, endpoint: str, call: str
) -> None:
    reply = fake.add_reply(post.remote_id, "r")
    fake.fail(endpoint, "rate_limited")
    with pytest.raises(TransientError) as raised:
        if call == "list":
            adapter.list_replies(post, None)
        elif call == "look_up":
            adapter.look_up_replies(post, [reply])
        elif call == "hide":
            adapter.hide_reply(post, reply)
        else:
            adapter.answer_reply(post, reply, "Please use the tip form")
    assert raised.value.retry_after == 300  # reset 04:25:00, clock 04:20:00


def test_bluesky_refused_token_while_listing_asks_for_a_reconnect(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    fake.fail("get_post_thread", "unauthorized")
    with pytest.raises(CredentialError):
        adapter.list_replies(post, None)


def test_bluesky_expired_session_while_listing_is_renewed(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    reply = fake.add_reply(post.remote_id, "r")
    fake.expire_sessions()
    assert [r.remote_id for r in adapter.list_replies(post, None).replies] == [reply]
    assert len(fake.calls("refresh_session")) == 1


def _answer_with(fake: FakeBluesky, monkeypatch: pytest.MonkeyPatch, body: Any) -> None:
    monkeypatch.setattr(fake, "on_get_post_thread", lambda request: json_response(body))


def test_bluesky_thread_answered_with_garbage_is_a_transient_failure(
    fake: FakeBluesky, adapter: Bluesky, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.fail("get_post_thread", "garbage")
    with pytest.raises(TransientError, match="not a JSON object"):
        adapter.list_replies(post, None)
    _answer_with(fake, monkeypatch, {"thread": "nope"})
    with pytest.raises(TransientError, match="without one"):
        adapter.list_replies(post, None)
    fake.fail("get_posts", "garbage")
    with pytest.raises(TransientError):
        adapter.look_up_replies(post, [post.remote_id])


def test_bluesky_thread_with_malformed_entries_lists_the_readable_ones(
    fake: FakeBluesky, adapter: Bluesky, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = {
        "uri": "at://did:plc:someone/app.bsky.feed.post/3lbcdefghijkl",
        "cid": "bafyreigood",
        "author": {"did": "did:plc:someone", "handle": "someone.bsky.social"},
        "record": {"text": "readable", "createdAt": "2026-12-02T04:21:00Z"},
        "indexedAt": "2026-12-02T04:21:00Z",
    }
    _answer_with(
        fake,
        monkeypatch,
        {
            "thread": {
                "post": {"uri": post.remote_id, "threadgate": {"record": "x"}},
                "replies": [
                    "not a node",
                    {"post": {"uri": 42}},
                    {"post": {**good, "uri": "at://x/app.bsky.feed.post/y", "indexedAt": "soon"}},
                    {"post": {**good, "author": "nobody"}},
                    {"post": {**good, "record": None}, "replies": {"not": "a list"}},
                ],
            }
        },
    )
    (reply,) = adapter.list_replies(post, None).replies
    assert reply.remote_id == good["uri"] and reply.text == ""


def test_bluesky_post_gone_from_the_network_is_said_when_listing(
    fake: FakeBluesky, adapter: Bluesky, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter.delete(post)
    with pytest.raises(RejectedError, match="no longer on Bluesky"):
        adapter.list_replies(post, None)
    _answer_with(fake, monkeypatch, {"thread": {"uri": post.remote_id, "notFound": True}})
    with pytest.raises(RejectedError, match="no longer on Bluesky"):
        adapter.list_replies(post, None)


def test_bluesky_thread_answered_the_same_every_time_never_pages_forever(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    # A thread has no paging token that could repeat: the same answer again and again
    # ends with an empty, caught-up page and the same cursor.
    for i in range(150):
        fake.add_reply(post.remote_id, f"r{i}")
    pages, cursor = _all(adapter, post)
    assert len(pages) == 2
    for _ in range(3):
        page = adapter.list_replies(post, cursor)
        assert (page.replies, page.more, page.cursor) == ([], False, cursor)


def test_bluesky_cursor_that_cannot_be_read_starts_from_the_beginning(
    fake: FakeBluesky, adapter: Bluesky, post: Published
) -> None:
    reply = fake.add_reply(post.remote_id, "r")
    for cursor in ("3l5x", {"at": "yesterday", "uris": "x"}, 7):
        assert [r.remote_id for r in adapter.list_replies(post, cursor).replies] == [reply]


def test_bluesky_chain_deeper_than_one_answer_is_read_on_from_its_deepest_replies(
    fake: FakeBluesky, adapter: Bluesky, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bluesky, "REPLY_DEPTH", 4)
    chain = [post.remote_id]
    for i in range(10):
        chain.append(fake.add_reply(chain[-1], f"back and forth {i}"))

    listed = [r.remote_id for r in adapter.list_replies(post, None).replies]

    assert listed == chain[1:]
    asked = [call.args["uri"][0] for call in fake.calls("get_post_thread")]
    assert asked == [post.remote_id, chain[4], chain[8]]


def test_bluesky_reading_on_down_a_chain_is_bounded(
    fake: FakeBluesky, adapter: Bluesky, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bluesky, "REPLY_DEPTH", 2)
    parent = post.remote_id
    for i in range(40):
        parent = fake.add_reply(parent, f"r{i}")
    listed = adapter.list_replies(post, None).replies
    assert len(fake.calls("get_post_thread")) == 1 + bluesky.REPLY_CONTINUATIONS
    assert len(listed) == 2 * (1 + bluesky.REPLY_CONTINUATIONS)


def test_bluesky_threadgate_beside_the_thread_marks_its_hidden_replies(
    fake: FakeBluesky, adapter: Bluesky, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = fake.add_reply(post.remote_id, "names a man")
    adapter.hide_reply(post, reply)
    answer = fake.on_get_post_thread

    def gate_beside_only(request: Request) -> Response:
        body = json.loads(answer(request).get_data())
        del body["thread"]["post"]["threadgate"]
        assert body["threadgate"]["record"]["hiddenReplies"] == [reply]
        return json_response(body)

    monkeypatch.setattr(fake, "on_get_post_thread", gate_beside_only)
    (listed,) = adapter.list_replies(post, None).replies
    assert listed.hidden is True
