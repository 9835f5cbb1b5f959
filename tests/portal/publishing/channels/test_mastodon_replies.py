"""The Mastodon adapter's replies against the Mastodon server on loopback
(fakes/mastodon.py): the context cut into pages, a cursor that files each reply once,
lookups of filed replies, and the public answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from portal.publishing.channels.base import (
    CredentialError,
    Draft,
    OutcomeUnknown,
    Published,
    RejectedError,
    ReplyPage,
    TransientError,
)
from portal.publishing.channels.mastodon import Mastodon
from tests.portal.publishing.channels.conftest import TIMEOUT_S, Clock, MemorySteps
from tests.portal.publishing.fakes.mastodon import OWN, TOKEN, FakeMastodon, account


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with FakeMastodon().running() as server:
        yield server


def make_adapter(fake: FakeMastodon, clock: Clock, **settings: object) -> Mastodon:
    adapter = Mastodon(
        {"access_token": TOKEN}, {"base_url": fake.url, "timeout_s": TIMEOUT_S, **settings}
    )
    adapter.sleep = clock.sleep
    adapter.now = clock.now
    return adapter


@pytest.fixture
def adapter(fake: FakeMastodon, clock: Clock) -> Mastodon:
    return make_adapter(fake, clock)


@pytest.fixture
def post(adapter: Mastodon, draft: Draft) -> Published:
    """The agency's status (text only: the media path is the publishing tests')."""
    return adapter.publish(replace(draft, media=None), MemorySteps())


def _host(fake: FakeMastodon) -> str:
    return urlsplit(fake.url).netloc


def _all_pages(adapter: Mastodon, post: Published, cursor: object = None) -> list[ReplyPage]:
    """List until caught up; return the pages' cursors and replies in call order."""
    pages: list[ReplyPage] = []
    while True:
        page = adapter.list_replies(post, cursor)
        pages.append(page)
        assert len(pages) < 50, "the listing never caught up"
        if page.more:
            assert page.cursor != cursor, "a page with more to come kept the same cursor"
        cursor = page.cursor
        if not page.more:
            return pages


def test_mastodon_offers_answers_but_no_hiding_or_deleting_of_others_replies(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    assert Mastodon.lists_replies and Mastodon.can_answer_replies
    assert not Mastodon.can_hide_replies and not Mastodon.can_delete_replies
    reply_id = fake.add_reply(post.remote_id, "I know him")
    with pytest.raises(NotImplementedError):
        adapter.hide_reply(post, reply_id)
    with pytest.raises(NotImplementedError):
        adapter.delete_reply(post, reply_id)
    # Why: DELETE finds only the account's own statuses. Someone else's is a 404, which
    # delete() takes for "already gone" -- so it would say it worked and change nothing.
    adapter.delete(Published(reply_id, ""))
    assert reply_id in fake.statuses


def test_mastodon_lists_the_context_in_pages_oldest_first_from_one_answer(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    ids = [fake.add_reply(post.remote_id, f"Reply number {i}") for i in range(230)]
    # A reply to a reply is under the post too; it is listed in id order.
    nested = fake.add_reply(ids[3], "Answering number 3", acct="witness@other.example")
    pages = _all_pages(adapter, post)

    assert [len(p.replies) for p in pages] == [100, 100, 31]
    assert [p.more for p in pages] == [True, True, False]
    listed = [r.remote_id for p in pages for r in p.replies]
    assert listed == [*ids, nested]
    assert len(set(listed)) == 231
    # One context answer made all three pages (and one call named the account).
    assert len(fake.calls("context")) == 1 and len(fake.calls("verify")) == 1
    first = pages[0].replies[0]
    assert first.text == "@tattletale Reply number 0"
    assert first.author == f"@neighbour@{_host(fake)}"  # a local account, with the instance
    assert first.url == f"{fake.url}/@neighbour/{ids[0]}"
    assert first.created_at == datetime(2026, 12, 2, 4, 25, tzinfo=UTC)
    assert not first.edited and not first.hidden
    last = pages[-1].replies[-1]
    assert last.author == "@witness@other.example"
    assert last.url == f"https://other.example/@witness/{nested}"
    # The cursor is small and JSON: ids as strings, at most a bounded number of them.
    assert len(json.dumps(pages[-1].cursor)) < 20_000


def test_mastodon_second_fetch_lists_only_what_is_new_including_a_late_remote_reply(
    fake: FakeMastodon, clock: Clock, post: Published
) -> None:
    base = int(post.remote_id)

    def at(offset: int) -> str:
        return str(base + offset)

    first = [fake.add_reply(post.remote_id, f"Early {i}", status_id=at(10 + i)) for i in range(3)]
    [page] = _all_pages(make_adapter(fake, clock), post)
    assert [r.remote_id for r in page.replies] == first

    # The next fetch (a new adapter, the stored cursor): two new local replies, and a
    # remote one whose server delivered it late, its id backdated below theirs.
    new = [fake.add_reply(post.remote_id, f"Later {i}", status_id=at(100 + i)) for i in range(2)]
    late = fake.add_reply(
        post.remote_id, "Written before, delivered now", acct="slow@far.example", status_id=at(50)
    )
    assert int(late) < int(new[0])
    [again] = _all_pages(make_adapter(fake, clock), post, page.cursor)
    assert [r.remote_id for r in again.replies] == [late, *new]

    # Nothing new: nothing listed, and nothing more to ask for.
    [caught_up] = _all_pages(make_adapter(fake, clock), post, again.cursor)
    assert caught_up.replies == [] and caught_up.more is False


def test_mastodon_leaves_out_the_accounts_own_statuses_in_the_thread(
    fake: FakeMastodon, adapter: Mastodon, post: Published, clock: Clock
) -> None:
    theirs = fake.add_reply(post.remote_id, "That's my neighbour's car")
    answer = adapter.answer_reply(post, theirs, "Please send us a private tip")
    update = adapter.update(post, "x" * 480)  # too long to edit in: a reply of its own
    assert fake.statuses[answer.remote_id]["in_reply_to_id"] == theirs
    assert fake.statuses[update.remote_id]["in_reply_to_id"] == post.remote_id
    [page] = _all_pages(make_adapter(fake, clock), post)
    assert [r.remote_id for r in page.replies] == [theirs]


def test_mastodon_reply_html_becomes_plain_text_with_its_line_breaks(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    fake.add_reply(post.remote_id, "Grey car, plate AB <12>\nparked at Tom & Jo's\n\nSeen at 9 pm")
    fake.statuses[next(reversed(fake.statuses))]["content"] += (
        '<p><a href="https://maps.example/x" rel="nofollow noopener" target="_blank">'
        '<span class="invisible">https://</span><span class="">maps.example/x</span></a></p>'
    )
    [page] = _all_pages(adapter, post)
    assert page.replies[0].text == (
        "@tattletale Grey car, plate AB <12>\nparked at Tom & Jo's\n\nSeen at 9 pm"
        "\n\nhttps://maps.example/x"
    )


def test_mastodon_content_warning_comes_before_the_text(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    reply_id = fake.add_reply(post.remote_id, "It was my cousin")
    fake.statuses[reply_id]["spoiler_text"] = "Names a person"
    [page] = _all_pages(adapter, post)
    assert page.replies[0].text == "Names a person\n\n@tattletale It was my cousin"


def test_mastodon_post_deleted_on_the_network_stops_the_listing_with_the_reason(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    del fake.statuses[post.remote_id]
    with pytest.raises(RejectedError, match="no longer on Mastodon"):
        adapter.list_replies(post, None)


def test_mastodon_look_up_finds_edited_replies_and_misses_deleted_ones(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    ids = [fake.add_reply(post.remote_id, f"Reply {i}") for i in range(25)]
    fake.edit_reply(ids[0], "never mind")
    del fake.statuses[ids[1]]
    found = adapter.look_up_replies(post, ids)

    assert set(found) == set(ids) - {ids[1]}
    assert found[ids[0]].edited and found[ids[0]].text == "@tattletale never mind"
    assert not found[ids[2]].edited and found[ids[2]].text == "@tattletale Reply 2"
    # At most DEFAULT_STATUSES_LIMIT (20) ids a request: 25 take two.
    calls = fake.calls("lookup")
    assert [len(c.args["id[]"]) for c in calls] == [20, 5]


def test_mastodon_look_up_on_a_server_before_4_3_asks_one_status_at_a_time(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    fake.multi_lookup = False
    ids = [fake.add_reply(post.remote_id, f"Reply {i}") for i in range(3)]
    del fake.statuses[ids[2]]
    found = adapter.look_up_replies(post, ids)
    assert set(found) == {ids[0], ids[1]}
    assert len(fake.calls("lookup")) == 1  # the 404 is remembered, not asked again
    assert [c.path for c in fake.calls("status")] == [f"/api/v1/statuses/{i}" for i in ids]
    adapter.look_up_replies(post, ids[:1])
    assert len(fake.calls("lookup")) == 1


def test_mastodon_answer_mentions_the_author_and_is_sent_once(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    reply_id = fake.add_reply(post.remote_id, "He works at the gas station", acct="w@other.example")
    text = "Please don't name anyone in public: https://tips.example/a/42"
    landed = adapter.answer_reply(post, reply_id, text)
    again = adapter.answer_reply(post, reply_id, text)  # a retry after a lost answer

    assert again == landed
    answers = [s for s in fake.statuses.values() if s.get("in_reply_to_id") == reply_id]
    assert len(answers) == 1
    assert answers[0]["text"] == f"@w@other.example {text}"
    assert answers[0]["visibility"] == "public"
    assert landed.url == f"{fake.url}/@tattletale/{landed.remote_id}"
    keys = {c.headers["Idempotency-Key"] for c in fake.calls("post")[-2:]}
    assert len(keys) == 1 and next(iter(keys)).startswith("reply-")


def test_mastodon_answer_to_a_private_mention_stays_private(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    reply_id = fake.add_reply(post.remote_id, "Only to you: it's my brother", visibility="direct")
    adapter.answer_reply(post, reply_id, "Please send us a private tip")
    (answer,) = [s for s in fake.statuses.values() if s.get("in_reply_to_id") == reply_id]
    assert answer["visibility"] == "direct"


def test_mastodon_answer_to_a_deleted_reply_is_refused_with_the_reason(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    reply_id = fake.add_reply(post.remote_id, "Oops")
    del fake.statuses[reply_id]
    with pytest.raises(RejectedError, match="no longer on Mastodon"):
        adapter.answer_reply(post, reply_id, "Please send us a private tip")
    assert fake.calls("post")[-1].form.get("in_reply_to_id") is None  # only the post itself


def test_mastodon_answer_whose_response_is_lost_is_an_unknown_outcome(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    reply_id = fake.add_reply(post.remote_id, "I know him")
    fake.fail("post", "lost_answer")
    with pytest.raises(OutcomeUnknown):
        adapter.answer_reply(post, reply_id, "Please send us a private tip")


def test_mastodon_rate_limit_on_the_context_waits_until_the_iso_reset(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    fake.add_reply(post.remote_id, "I know him")
    fake.fail("context", "rate_limited")
    with pytest.raises(TransientError) as raised:
        adapter.list_replies(post, None)
    assert raised.value.retry_after == 45 * 60  # reset 05:05:00Z, clock 04:20:00Z
    [page] = _all_pages(adapter, post)
    assert len(page.replies) == 1


@pytest.mark.parametrize("endpoint", ["context", "verify", "lookup"])
def test_mastodon_refused_token_while_listing_asks_for_a_reconnect(
    fake: FakeMastodon, adapter: Mastodon, post: Published, endpoint: str
) -> None:
    reply_id = fake.add_reply(post.remote_id, "I know him")
    fake.fail(endpoint, "unauthorized")
    with pytest.raises(CredentialError):
        if endpoint == "lookup":
            adapter.look_up_replies(post, [reply_id])
        else:
            adapter.list_replies(post, None)


def test_mastodon_garbage_answers_are_transient_errors_with_a_reason(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    reply_id = fake.add_reply(post.remote_id, "I know him")
    fake.fail("context", "garbage")
    with pytest.raises(TransientError, match="not a JSON object"):
        adapter.list_replies(post, None)
    fake.fail("lookup", "garbage")
    with pytest.raises(TransientError, match="something else"):
        adapter.look_up_replies(post, [reply_id])
    # JSON, but not statuses: a reply without its id or author cannot be filed.
    fake.mangled[reply_id] = {"id": "not-a-number"}
    with pytest.raises(TransientError, match="without its id"):
        adapter.list_replies(post, None)
    fake.mangled[reply_id] = {"account": None}
    with pytest.raises(TransientError, match="without its author"):
        adapter.list_replies(post, None)
    fake.mangled[reply_id] = {"created_at": "yesterday"}
    with pytest.raises(TransientError, match="unreadable time"):
        adapter.list_replies(post, None)


def test_mastodon_answering_the_same_context_again_never_pages_forever(
    fake: FakeMastodon, clock: Clock, post: Published
) -> None:
    # The context is not paginated: the server answers the same descendants on every
    # call. The adapter's pages move its cursor on and end once all are listed.
    for i in range(250):
        fake.add_reply(post.remote_id, f"Reply {i}")
    cursor = None
    listed: list[str] = []
    for _ in range(6):
        adapter = make_adapter(fake, clock)  # a fetch of its own each time
        page = adapter.list_replies(post, cursor)
        assert page.cursor != cursor or not page.more
        listed += [r.remote_id for r in page.replies]
        cursor = page.cursor
    assert len(listed) == len(set(listed)) == 250
    assert page.replies == [] and page.more is False


def test_mastodon_context_over_the_servers_cap_lists_what_it_holds_and_says_so(
    fake: FakeMastodon, clock: Clock, post: Published, caplog: pytest.LogCaptureFixture
) -> None:
    fake.context_limit = 5  # CONTEXT_LIMIT (4,096) on a real server
    adapter = make_adapter(fake, clock, context_limit=5)
    ids = [fake.add_reply(post.remote_id, f"Reply {i}") for i in range(7)]
    with caplog.at_level(logging.WARNING, logger="portal.publishing.channels.mastodon"):
        [page] = _all_pages(adapter, post)
    assert [r.remote_id for r in page.replies] == ids[:5]
    assert "its limit" in caplog.text


def test_mastodon_reply_requests_follow_the_documentation(
    fake: FakeMastodon, adapter: Mastodon, post: Published
) -> None:
    reply_id = fake.add_reply(post.remote_id, "I know him", acct="w@other.example")
    _all_pages(adapter, post)
    adapter.look_up_replies(post, [reply_id])
    adapter.answer_reply(post, reply_id, "Please send us a private tip")
    reads = [(r.method, r.path) for r in fake.requests if r.method == "GET"]
    assert reads == [
        ("GET", f"/api/v1/statuses/{post.remote_id}/context"),
        ("GET", "/api/v1/accounts/verify_credentials"),
        ("GET", "/api/v1/statuses"),
        ("GET", f"/api/v1/statuses/{reply_id}"),
    ]
    assert fake.calls("lookup")[0].args == {"id[]": [reply_id]}
    answer = fake.calls("post")[-1]
    assert answer.form["in_reply_to_id"] == [reply_id]
    assert answer.form["status"] == ["@w@other.example Please send us a private tip"]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert account("w@other.example")["id"] != OWN["id"]
