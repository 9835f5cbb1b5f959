"""The X adapter's replies against recent search, lookup and hide replies on loopback
(fakes/x.py): pages and the since-id cursor, the account's own posts left out, edits
and deletions, hiding and answering, and every way X fails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from portal.publishing.channels.base import (
    CredentialError,
    Published,
    RejectedError,
    ReplyPage,
    TransientError,
)
from portal.publishing.channels.x import X
from tests.portal.publishing.channels.conftest import TIMEOUT_S, Clock
from tests.portal.publishing.fakes.x import (
    CLIENT_ID,
    CLIENT_SECRET,
    RESET_EPOCH,
    TOKEN,
    UNMODERATED_TOKEN,
    USER_ID,
    FakeX,
    user_id,
)

WEEK = 7 * 86400


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeX]:
    with FakeX(clock=clock).running() as server:
        yield server


def make_adapter(fake: FakeX, clock: Clock, token: str = TOKEN) -> X:
    adapter = X({"access_token": token}, {"api_url": fake.url, "timeout_s": TIMEOUT_S})
    adapter.sleep, adapter.now = clock.sleep, clock.now
    return adapter


@pytest.fixture
def adapter(fake: FakeX, clock: Clock) -> X:
    return make_adapter(fake, clock)


@pytest.fixture
def post(fake: FakeX, clock: Clock) -> Published:
    """The agency's appeal on X, made through the API as the adapter makes it."""
    post_id = fake.new_id()
    fake.posts[post_id] = {
        "id": post_id,
        "text": "Who saw this car?",
        "sent_text": "Who saw this car?",
        "created_at": clock.now(),
        "media_keys": [],
        "in_reply_to": None,
        "author_id": USER_ID,
        "conversation_id": post_id,
        "edit_history": [post_id],
        "hidden": False,
    }
    return Published(post_id, f"https://x.com/i/web/status/{post_id}")


def reply_many(fake: FakeX, clock: Clock, post: Published, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        clock.t += 1
        ids.append(fake.add_reply(post.remote_id, f"I know the driver, number {i}", f"n{i}"))
    return ids


def read_all(adapter: X, post: Published, cursor: object = None) -> tuple[list[ReplyPage], object]:
    pages = []
    while True:
        page = adapter.list_replies(post, cursor)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor
        assert len(pages) < 20, "the listing never ends"


def test_x_offers_listing_hiding_and_answering_but_not_deleting_replies() -> None:
    assert X.lists_replies and X.can_hide_replies and X.can_answer_replies
    assert not X.can_delete_replies


def test_x_lists_a_conversation_in_pages_of_a_hundred_following_next_token(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    ids = reply_many(fake, clock, post, 250)

    pages, cursor = read_all(adapter, post)

    assert [len(p.replies) for p in pages] == [100, 100, 50]
    assert [p.more for p in pages] == [True, True, False]
    listed = [r.remote_id for p in pages for r in p.replies]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == 250
    # Newest first across pages (X's order), oldest first within each page.
    assert [r.remote_id for r in pages[0].replies] == ids[150:]
    first = pages[-1].replies[0]
    assert first.text == "I know the driver, number 0"
    assert first.author == "@n0"
    assert first.url == f"https://x.com/n0/status/{ids[0]}"
    assert first.created_at == datetime.fromtimestamp(fake.others[ids[0]]["created_at"], UTC)
    assert not first.edited
    # Caught up: the next search starts after the newest reply.
    assert cursor == {"account": USER_ID, "since_id": ids[-1]}

    searches = fake.calls("search")
    assert [s.path for s in searches] == ["/2/tweets/search/recent"] * 3
    assert searches[0].args == {
        "query": [f"conversation_id:{post.remote_id}"],
        "max_results": ["100"],
        "tweet.fields": ["created_at,author_id,conversation_id,edit_history_tweet_ids"],
        "expansions": ["author_id"],
        "user.fields": ["username"],
    }
    assert "next_token" not in searches[0].args and "since_id" not in searches[0].args
    assert searches[1].args["next_token"] != searches[2].args["next_token"]
    # The account is asked for once; its id rides in the cursor.
    assert len(fake.calls("me")) == 1


def test_x_second_fetch_asks_since_the_newest_and_lists_only_what_is_new(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    ids = reply_many(fake, clock, post, 120)
    _pages, cursor = read_all(adapter, post)
    newer = reply_many(fake, clock, post, 3, start=120)

    page = adapter.list_replies(post, cursor)

    assert [r.remote_id for r in page.replies] == newer
    assert not page.more
    last = fake.calls("search")[-1]
    assert last.args["since_id"] == [ids[-1]] and "next_token" not in last.args
    assert page.cursor == {"account": USER_ID, "since_id": newer[-1]}
    # Nothing new: the cursor stays, and the call costs one page.
    quiet = adapter.list_replies(post, page.cursor)
    assert quiet.replies == [] and quiet.cursor == page.cursor and not quiet.more


def test_x_new_replies_while_a_search_is_paged_come_in_the_next_search(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    ids = reply_many(fake, clock, post, 150)
    first = adapter.list_replies(post, None)
    late = reply_many(fake, clock, post, 2, start=150)
    second = adapter.list_replies(post, first.cursor)
    assert not second.more
    # The paged search kept its own window; its first page's newest id is the next start.
    assert second.cursor == {"account": USER_ID, "since_id": ids[-1]}
    third = adapter.list_replies(post, second.cursor)
    assert [r.remote_id for r in third.replies] == late


def test_x_leaves_out_the_accounts_own_posts_in_the_conversation(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    [stranger] = reply_many(fake, clock, post, 1)
    adapter.update(post, "SOLVED — thank you")
    adapter.answer_reply(post, stranger, "Please use our tip form")

    pages, _cursor = read_all(adapter, post)

    assert [r.remote_id for p in pages for r in p.replies] == [stranger]
    conversation = [p for p in fake.posts.values() if p["conversation_id"] == post.remote_id]
    assert len(conversation) == 3  # the post, the update, the answer: all in the search


def test_x_text_is_plain_with_its_entities_unescaped(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    fake.add_reply(post.remote_id, "Tom & Jerry <3 the car > the bike", "fan")
    [reply] = adapter.list_replies(post, None).replies
    assert reply.text == "Tom & Jerry <3 the car > the bike"


def test_x_edited_reply_is_the_same_reply_listed_again_and_found_edited_by_lookup(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    [original] = reply_many(fake, clock, post, 1)
    first = adapter.list_replies(post, None)
    clock.t += 60
    edited_id = fake.edit_reply(original, "Actually it was a blue van")

    again = adapter.list_replies(post, first.cursor)
    [listed] = again.replies
    assert listed.remote_id == original and listed.edited
    assert listed.text == "Actually it was a blue van"
    assert listed.url.endswith(f"/status/{edited_id}")

    found = adapter.look_up_replies(post, [original])
    assert set(found) == {original}
    assert found[original].edited and found[original].text == "Actually it was a blue van"
    (lookup,) = fake.calls("lookup")
    assert lookup.path == "/2/tweets"
    assert lookup.args["ids"] == [original]
    assert lookup.args["expansions"] == ["author_id,edit_history_tweet_ids"]


def test_x_lookup_reports_deleted_replies_missing_and_the_rest_as_they_are(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    ids = reply_many(fake, clock, post, 3)
    fake.remove_reply(ids[1])

    found = adapter.look_up_replies(post, ids)

    assert set(found) == {ids[0], ids[2]}
    assert found[ids[0]].text == "I know the driver, number 0" and not found[ids[0]].edited
    # Every one gone: a 200 with only errors.
    fake.remove_reply(ids[0])
    fake.remove_reply(ids[2])
    assert adapter.look_up_replies(post, ids) == {}
    assert adapter.look_up_replies(post, []) == {}


def test_x_lookup_that_fails_for_one_reply_does_not_call_it_deleted(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    ids = reply_many(fake, clock, post, 2)
    fake.lookup_failing.add(ids[1])
    with pytest.raises(TransientError, match=f"could not look up post {ids[1]}"):
        adapter.look_up_replies(post, ids)


def test_x_hides_a_reply_and_an_already_hidden_or_gone_one_is_fine(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    ids = reply_many(fake, clock, post, 2)

    adapter.hide_reply(post, ids[0])
    assert fake.others[ids[0]]["hidden"] and not fake.others[ids[1]]["hidden"]
    (hide,) = fake.calls("hide")
    assert (hide.method, hide.path, hide.json) == (
        "PUT",
        f"/2/tweets/{ids[0]}/hidden",
        {"hidden": True},
    )

    adapter.hide_reply(post, ids[0])  # already hidden: X answers success
    assert len(fake.calls("hide")) == 2
    fake.remove_reply(ids[1])
    adapter.hide_reply(post, ids[1])  # gone: nothing to hide
    assert len(fake.calls("hide")) == 2


def test_x_hides_the_version_of_an_edited_reply_that_shows(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    [original] = reply_many(fake, clock, post, 1)
    latest = fake.edit_reply(original, "his name is ...")
    adapter.hide_reply(post, original)
    assert fake.others[latest]["hidden"]


def test_x_hide_without_the_moderation_scope_asks_for_a_reconnect(
    fake: FakeX, clock: Clock, post: Published
) -> None:
    [reply] = reply_many(fake, clock, post, 1)
    adapter = make_adapter(fake, clock, token=UNMODERATED_TOKEN)
    with pytest.raises(RejectedError, match="tweet.moderate.write.*reconnect the X channel"):
        adapter.hide_reply(post, reply)
    assert not fake.others[reply]["hidden"]


def test_x_hide_over_the_conversations_limit_is_refused_with_the_reason(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    ids = reply_many(fake, clock, post, 3)
    fake.max_hidden = 2
    adapter.hide_reply(post, ids[0])
    adapter.hide_reply(post, ids[1])
    with pytest.raises(RejectedError, match="most replies a conversation allows"):
        adapter.hide_reply(post, ids[2])


def test_x_cannot_delete_anothers_reply(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    [reply] = reply_many(fake, clock, post, 1)
    with pytest.raises(NotImplementedError):
        adapter.delete_reply(post, reply)
    # X itself refuses it too.
    with pytest.raises(RejectedError, match="403"):
        adapter.delete(Published(reply, ""))
    assert reply in fake.others


def test_x_answer_is_a_reply_to_the_reply_and_a_repeat_goes_to_its_author(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    first, second = reply_many(fake, clock, post, 2)
    text = "Please don't name anyone in public: https://tips.example/a/42?via=x"

    landed = adapter.answer_reply(post, first, text)

    answer = fake.posts[landed.remote_id]
    assert answer["in_reply_to"] == first and answer["sent_text"] == text
    assert landed.url == f"https://x.com/i/web/status/{landed.remote_id}"
    assert fake.calls("post")[0].json == {"text": text, "reply": {"in_reply_to_tweet_id": first}}
    # The same text under the next reply: refused as a duplicate, sent to the author.
    again = adapter.answer_reply(post, second, text)
    assert fake.posts[again.remote_id]["sent_text"] == f"@n1 {text}"
    assert fake.posts[again.remote_id]["in_reply_to"] == second


def test_x_answer_refused_twice_as_duplicate_or_to_a_deleted_reply_says_why(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    first = fake.add_reply(post.remote_id, "it was him", "same")
    second = fake.add_reply(post.remote_id, "really him", "same")
    text = "Please use our tip form"
    adapter.answer_reply(post, first, text)
    adapter.answer_reply(post, second, text)  # "@same ..." once
    third = fake.add_reply(post.remote_id, "I insist", "same")
    with pytest.raises(RejectedError, match="answered already"):
        adapter.answer_reply(post, third, text)

    gone = fake.add_reply(post.remote_id, "bye", "other")
    fake.remove_reply(gone)
    with pytest.raises(RejectedError, match="deleted or not visible"):
        adapter.answer_reply(post, gone, "Something new")


def test_x_rate_limit_waits_until_the_reset_header(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    reply_many(fake, clock, post, 1)
    fake.fail("search", "rate_limited")
    with pytest.raises(TransientError) as raised:
        adapter.list_replies(post, None)
    assert raised.value.retry_after == RESET_EPOCH - clock.now()

    # A window counted by the fake: the reset is the window's end.
    fake.search_limit = 2
    started = clock.now()
    cursor = adapter.list_replies(post, None).cursor
    clock.t += 100
    adapter.list_replies(post, cursor)
    with pytest.raises(TransientError) as raised:
        adapter.list_replies(post, cursor)
    assert raised.value.retry_after == started + 15 * 60 - clock.now()

    fake.fail("lookup", "rate_limited")
    with pytest.raises(TransientError):
        adapter.look_up_replies(post, ["1"])


def test_x_refused_token_is_a_credential_error_everywhere(
    fake: FakeX, clock: Clock, post: Published
) -> None:
    [reply] = reply_many(fake, clock, post, 1)
    adapter = make_adapter(fake, clock, token="revoked")
    with pytest.raises(CredentialError):
        adapter.list_replies(post, {"account": USER_ID, "since_id": post.remote_id})
    with pytest.raises(CredentialError):
        adapter.look_up_replies(post, [reply])
    with pytest.raises(CredentialError):
        adapter.hide_reply(post, reply)
    with pytest.raises(CredentialError):
        adapter.answer_reply(post, reply, "Please use our tip form")
    assert not fake.others[reply]["hidden"]
    assert list(fake.posts) == [post.remote_id]  # nothing answered


@pytest.mark.parametrize("endpoint", ["search", "lookup"])
def test_x_garbage_answer_is_a_transient_error(
    fake: FakeX, adapter: X, clock: Clock, post: Published, endpoint: str
) -> None:
    [reply] = reply_many(fake, clock, post, 1)
    fake.fail(endpoint, "garbage")
    with pytest.raises(TransientError, match="not a JSON object"):
        if endpoint == "search":
            adapter.list_replies(post, {"account": USER_ID})
        else:
            adapter.look_up_replies(post, [reply])


def test_x_json_that_is_not_a_list_of_posts_is_a_transient_error(
    fake: FakeX, adapter: X, clock: Clock, post: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.portal.publishing.fakes import json_response

    monkeypatch.setattr(
        fake, "on_search", lambda request: json_response({"data": {"id": "1"}, "meta": {}})
    )
    with pytest.raises(TransientError, match="not a list of posts"):
        adapter.list_replies(post, {"account": USER_ID})


def test_x_search_that_pages_forever_hands_back_the_same_cursor(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    reply_many(fake, clock, post, 150)
    fake.endless_paging = True
    first = adapter.list_replies(post, None)
    second = adapter.list_replies(post, first.cursor)
    third = adapter.list_replies(post, second.cursor)
    # What the engine stops on: more to come, and the cursor it was given.
    assert third.more and third.cursor == second.cursor


def test_x_since_id_older_than_recent_search_reaches_is_dropped(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    [old] = reply_many(fake, clock, post, 1)
    clock.t += WEEK + 3600
    [new] = reply_many(fake, clock, post, 1)

    page = adapter.list_replies(post, {"account": USER_ID, "since_id": old})

    # X would refuse the old since_id (a 400); without it the week is searched.
    assert "since_id" not in fake.calls("search")[-1].args
    assert [r.remote_id for r in page.replies] == [new]
    assert page.cursor == {"account": USER_ID, "since_id": new}


def test_x_replies_are_told_apart_by_author(
    fake: FakeX, adapter: X, clock: Clock, post: Published
) -> None:
    reply = fake.add_reply(post.remote_id, "me again", "neighbour")
    [listed] = adapter.list_replies(post, None).replies
    assert listed.author == "@neighbour"
    assert fake.others[reply]["author_id"] == user_id("neighbour") != USER_ID


def test_x_since_id_refused_as_too_old_is_asked_again_without_it(
    fake: FakeX, clock: Clock, post: Published
) -> None:
    [old] = reply_many(fake, clock, post, 1)
    clock.t += WEEK - 600
    [new] = reply_many(fake, clock, post, 1)
    adapter = make_adapter(fake, clock)
    adapter.now = lambda: clock.t - 4 * 3600  # the portal's clock hours behind X's
    fake.clock.t += 7200

    page = adapter.list_replies(post, {"account": USER_ID, "since_id": old})

    first, second = fake.calls("search")
    assert first.args["since_id"] == [old] and "since_id" not in second.args
    assert [r.remote_id for r in page.replies] == [new]
    assert page.cursor == {"account": USER_ID, "since_id": new}


def test_x_refused_search_query_is_a_rejection_not_a_retry_loop(
    fake: FakeX, clock: Clock, post: Published
) -> None:
    adapter = make_adapter(fake, clock)
    with pytest.raises(RejectedError, match="400"):
        adapter.list_replies(Published("not an id", ""), {"account": USER_ID})
    assert len(fake.calls("search")) == 1


def test_x_listing_with_an_expired_token_renews_once_and_exposes_the_new_pair(
    fake: FakeX, clock: Clock, post: Published
) -> None:
    [reply] = reply_many(fake, clock, post, 1)
    fake.refresh_tokens.add("x-refresh-old")
    fake.scopes["x-refresh-old"] = fake.scopes[TOKEN]
    adapter = X(
        {
            "access_token": "x-expired",
            "refresh_token": "x-refresh-old",
            "client_secret": CLIENT_SECRET,
        },
        {"api_url": fake.url, "client_id": CLIENT_ID, "timeout_s": TIMEOUT_S},
    )
    adapter.sleep, adapter.now = clock.sleep, clock.now

    page = adapter.list_replies(post, {"account": USER_ID})

    assert [r.remote_id for r in page.replies] == [reply]
    assert adapter.updated_credentials is not None
    assert adapter.updated_credentials["refresh_token"] == "x-refresh-1"
    assert "x-refresh-old" not in fake.refresh_tokens
