"""X: a chunked media upload with its processing status, then a post.

Follows /work/shared/networks.md section 5 (docs.x.com ``x-api/media/quickstart/
media-upload-chunked`` and the GET media/upload STATUS reference; xdevplatform/samples
``Media Upload/media_upload_v2.py``; docs.x.com ``x-api/posts/creation-of-a-post``,
``fundamentals/rate-limits``, ``response-codes-and-errors``).

Exactly once: X offers no idempotency key. Every uploaded segment is stored, so a retry
resumes at the next one. Before the post is sent the attempt is marked; after a lost
answer :meth:`X.find` looks through the account's own posts since then for one that
carries our media (or, without media, our text) — X's timeline as the check path is
unverified in networks.md. X's refusal of duplicate text (403) is read as "already
posted" and answered the same way.

Unverified, so settings: the upload path (``upload_path``; X also documents newer
``/2/media/upload/initialize``-style paths, not used here), the chunk size
(``chunk_size``, default 4 MiB, under v1.1's documented 5 MB).

Connecting: OAuth 2.0 authorization code with PKCE (docs.x.com ``fundamentals/
authentication/oauth-2-0/authorization-code`` and ``user-access-token``): the consent
page at ``https://x.com/i/oauth2/authorize`` (setting ``authorize_url``), the token
endpoint ``POST {api_url}/2/oauth2/token``, the client secret as HTTP Basic for a
confidential client. The access token lasts two hours (``expires_in``); with
``offline.access`` a refresh token comes along, good for one renewal only: each renewal
answers a new pair. So a call answered 401 renews once and is repeated (refused, it was
not carried out), and the new pair is left in :attr:`Channel.updated_credentials` for
the caller to store: the old refresh token is dead from then on.

Replies under a post (issue 13) are the posts of its conversation: recent search
``GET /2/tweets/search/recent?query=conversation_id:<id>`` (docs.x.com ``x-api/
conversation-id`` and ``x-api/posts/search/integrate/paginate``). Recent search only
reaches the last **seven days**, while the engine keeps fetching a post's replies for
``TATTLETALE_REPLIES_WINDOW_DAYS`` (30): new replies keep coming in over the whole
window, but a backlog older than a week (a channel reconnected after ten days, say) is
out of reach. A ``since_id`` older than the week is refused with a 400 (rooteco/
tweetscape#421 [3p]), so one that old (by the time its id encodes) is dropped, or, if X
refuses it anyway, the search is asked again without it: it covers the week, and the
engine's deduplication absorbs what comes again. Whether X has hidden a reply is not in
the post object (undocumented): :attr:`Reply.hidden` stays false.

The cursor is ``{"account", "since_id", "next_token", "newest_id"}``: the documented
polling pattern. While one search is paged, every page is asked with the same
``since_id`` and the last ``next_token``; the newest id is the first page's
(``meta.newest_id``), and once the pages run out it becomes the next ``since_id``. The
account's own id rides along so that its own posts in the conversation (its updates,
its answers) are left out without asking ``/2/users/me`` on every fetch. Pages come
newest first (documented) and are handed on oldest first within a page.

A reply is identified by the first id of its edit chain (``edit_history_tweet_ids``,
docs.x.com ``x-api/fundamentals/edit-posts``): an edit gets a new id, which search lists
as a new post, and the chain's first id makes it the same reply, edited. Replies to
another account's post cannot be edited at all (same page), so this is for a reply
under a reply of the author's own. Looking replies up again is ``GET /2/tweets?ids=``
(``x-api/posts/lookup``), whose missing posts come back as partial errors of a 200
answer (``errors[]`` with type ``.../resource-not-found``, HunterLarco/twitter-v2#33
[3p]), and whose ``edit_history_tweet_ids`` expansion brings every version.

Hiding is ``PUT /2/tweets/:id/hidden`` ``{"hidden": true}`` (``x-api/posts/
hide-replies``), which needs the ``tweet.moderate.write`` scope: a channel connected
before the portal asked for it is refused (403 "Forbidden", plhery/node-twitter-api-v2
#265 [3p]) until it is reconnected. Hiding one already hidden succeeds (documented).
What X answers for hiding a post that is gone is not documented: the reply is looked
up first. X lets no account delete another's reply. Answering is a reply from the
account; X refuses a text it already posted (403 duplicate), which the standard answer
is under a second reply to the same appeal, so it is sent again addressed to the
reply's author (refused, nothing was posted: sending again cannot post twice).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from portal.publishing.channels.base import (
    Channel,
    ChannelError,
    CredentialError,
    Draft,
    OutcomeUnknown,
    Published,
    RejectedError,
    Reply,
    ReplyPage,
    Steps,
    TransientError,
)
from portal.publishing.channels.connect import Connection, OAuthApp, token_refusal
from portal.publishing.channels.http import Http
from portal.publishing.channels.registry import register

DEFAULT_API_URL = "https://api.x.com"
DEFAULT_AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
OAUTH2_PATH = "/2/oauth2/token"
#: Reading the account and its posts, posting, uploading media, hiding replies under
#: its posts, and a refresh token.
SCOPES = (
    "tweet.read",
    "tweet.write",
    "users.read",
    "media.write",
    "tweet.moderate.write",
    "offline.access",
)
DEFAULT_UPLOAD_PATH = "/2/media/upload"
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
MEDIA_CATEGORY = "amplify_video"
PROCESSING_TIMEOUT_S = 600.0
#: When STATUS gives no check_after_secs.
POLL_INTERVAL_S = 5.0
#: How far before the attempt the timeline is searched (clocks differ), and how many
#: pages of it are read.
LOOKBACK_S = 300
TIMELINE_PAGES = 3
_URL = re.compile(r"https?://\S+")
RECENT_SEARCH_PATH = "/2/tweets/search/recent"
#: Recent search's max_results: 10 to 100 (paginate page), the most per page.
SEARCH_PAGE_SIZE = 100
#: How far back recent search reaches; a since_id is dropped this long before it would
#: be refused (clocks differ).
RECENT_SEARCH_S = 7 * 86400
SINCE_ID_MARGIN_S = 3600
#: Ids are snowflakes that encode their time (docs.x.com ``fundamentals/x-ids``): the
#: milliseconds since this epoch above bit 22 (twitter-archive/snowflake's layout, as
#: the k-snowflake crate restates it [3p]).
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657
REPLY_FIELDS = "created_at,author_id,conversation_id,edit_history_tweet_ids"
#: What a lookup's partial errors say about a post that is gone or no longer visible.
GONE_ERRORS = ("resource-not-found", "not-authorized-for-resource")


class _Unauthorized(CredentialError):
    """401: the access token is refused (expired after its two hours, or revoked)."""


def api_url(settings: Mapping[str, Any]) -> str:
    # ``base_url`` is what the connect form calls the network's address.
    return str(settings.get("api_url") or settings.get("base_url") or DEFAULT_API_URL).rstrip("/")


def _token_call(
    settings: Mapping[str, Any], client_id: str, client_secret: str, data: dict[str, str]
) -> dict[str, Any]:
    """POST the token endpoint; the pair and its lifetime, or the refusal as a
    :class:`CredentialError` with X's reason."""
    http = Http(api_url(settings), network="X", timeout_s=settings.get("timeout_s"))
    # A confidential client authenticates with Basic; a public one only names itself.
    auth = (client_id, client_secret) if client_secret else None
    try:
        response = http.call(
            "POST", OAUTH2_PATH, data={**data, "client_id": client_id}, auth=auth, accept=(400, 401)
        )
        body = http.json(response)
    finally:
        http.close()
    if response.status_code != 200 or not body.get("access_token"):
        raise token_refusal("X", body, response.status_code)
    return body


def _token_credentials(body: Mapping[str, Any], now: float) -> dict[str, Any]:
    return {
        "access_token": str(body["access_token"]),
        "refresh_token": str(body.get("refresh_token") or ""),
        "expires_at": now + float(body.get("expires_in") or 7200),
    }


class _Duplicate(RejectedError):
    """403: X refuses a post whose text duplicates one of the account's posts."""


class _Forbidden(RejectedError):
    """403 for another reason (a scope the token lacks, a post not the account's)."""


class _NotFound(RejectedError):
    """404: the post is not (or no longer) there."""


class _Invalid(RejectedError):
    """400: X refused a parameter (a since_id older than recent search reaches)."""


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    """A list of JSON objects from an answer (absent: none); anything else is garbage."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and item.get("id") for item in value
    ):
        raise TransientError(f"X answered {what} with something that is not a list of posts")
    return value


def _usernames(body: Mapping[str, Any]) -> dict[str, str]:
    includes = body.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    if not isinstance(users, list):
        return {}
    return {
        str(user["id"]): str(user["username"])
        for user in users
        if isinstance(user, dict) and user.get("id") and user.get("username")
    }


def _snowflake_time(post_id: str) -> float:
    """When a post was made, from its id (seconds since the Unix epoch)."""
    return ((int(post_id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000


def _history(post: Mapping[str, Any]) -> list[str]:
    history = post.get("edit_history_tweet_ids")
    return [str(i) for i in history] if isinstance(history, list) and history else []


def _reply(post: Mapping[str, Any], users: Mapping[str, str]) -> Reply:
    post_id = str(post["id"])
    if not post_id.isdigit():
        raise TransientError("X answered a post whose id is not a number")
    history = _history(post) or [post_id]
    username = users.get(str(post.get("author_id") or ""), "")
    try:
        created_at = datetime.fromisoformat(str(post["created_at"]))
    except (KeyError, ValueError):
        created_at = datetime.fromtimestamp(_snowflake_time(post_id), UTC)
    return Reply(
        remote_id=history[0],
        # Plain text already, with &, < and > escaped as entities.
        text=html.unescape(str(post.get("text") or "")),
        author=f"@{username}" if username else "",
        created_at=created_at,
        url=f"https://x.com/{username or 'i/web'}/status/{post_id}",
        edited=len(history) > 1,
    )


def _normalized(text: str) -> str:
    # X returns text with its entities escaped, every link as a t.co link, and a link
    # to the media appended: compare what is left.
    return " ".join(_URL.sub(" ", html.unescape(text)).split())


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    if body.get("detail") or body.get("title"):
        return str(body.get("detail") or body.get("title"))[:300]
    errors = body.get("errors") or []
    if errors and isinstance(errors[0], dict):
        return str(errors[0].get("message") or errors[0].get("detail") or errors[0])[:300]
    return str(body)[:200]


@register
class X(Channel):
    network = "x"
    edits_in_place = False
    lists_replies = True
    can_hide_replies = True
    can_delete_replies = False  # X deletes only the account's own posts
    can_answer_replies = True
    connect_with: ClassVar[str] = "oauth"
    uses_pkce: ClassVar[bool] = True
    account_label: ClassVar[str] = "Account (leave blank: the one who signs in)"

    #: Injected by tests (a controlled clock); real time otherwise.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    now: Callable[[], float] = staticmethod(time.time)

    def __init__(self, credentials: Any, settings: Any) -> None:
        super().__init__(credentials, settings)
        self._http: Http | None = None

    # -- plumbing --------------------------------------------------------------------

    @property
    def http(self) -> Http:
        if self._http is None:
            self._http = Http(
                api_url(self.settings),
                network="X",
                headers={"Authorization": f"Bearer {self.credentials.get('access_token', '')}"},
                timeout_s=self.settings.get("timeout_s"),
                retry_after=self._retry_after,
                refine=self._refine,
            )
        return self._http

    def _retry_after(self, response: httpx.Response) -> float | None:
        reset = response.headers.get("x-rate-limit-reset")
        if reset and reset.isdigit():
            return max(0.0, int(reset) - self.now())
        return None

    def _refine(self, response: httpx.Response) -> ChannelError | None:
        if response.status_code == 403:
            detail = _problem(response)
            if "duplicate" in detail.lower():
                return _Duplicate(f"X refused duplicate text: {detail}")
            return _Forbidden(f"X refused it (403): {detail}")
        if response.status_code == 404:
            return _NotFound(f"X refused it (404): {_problem(response)}")
        if response.status_code == 400:
            return _Invalid(f"X refused it (400): {_problem(response)}")
        if response.status_code == 401:
            return _Unauthorized(f"X refused the channel's token: {_problem(response)}")
        if 400 <= response.status_code < 500 and response.status_code != 429:
            return RejectedError(f"X refused it ({response.status_code}): {_problem(response)}")
        return None

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One API call; a refused token is renewed once and the call repeated (a 401
        means it was not carried out, so repeating it cannot post twice)."""
        try:
            return self.http.call(method, url, **kwargs)
        except _Unauthorized:
            if not self.credentials.get("refresh_token"):
                raise
            self._renew()
            return self.http.call(method, url, **kwargs)  # refused again: reconnect

    def _renew(self) -> None:
        try:
            body = _token_call(
                self.settings,
                str(self.settings.get("client_id") or ""),
                str(self.credentials.get("client_secret") or ""),
                {
                    "grant_type": "refresh_token",
                    "refresh_token": str(self.credentials.get("refresh_token") or ""),
                },
            )
        except CredentialError as exc:
            raise CredentialError(f"X refused to renew the token: reconnect. {exc.reason}") from exc
        # From here the stored refresh token is spent: the new pair must reach the store.
        self.credentials = {**self.credentials, **_token_credentials(body, self.now())}
        self.updated_credentials = dict(self.credentials)
        self.http.client.headers["Authorization"] = f"Bearer {self.credentials['access_token']}"

    # -- connecting (OAuth 2.0 authorization code with PKCE) -------------------------

    @classmethod
    def authorize_url(cls, app: OAuthApp, *, state: str, code_challenge: str | None = None) -> str:
        if not code_challenge:
            raise CredentialError("X requires PKCE: a code challenge is missing")
        query = {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "scope": " ".join(SCOPES),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        authorize = str(app.settings.get("authorize_url") or DEFAULT_AUTHORIZE_URL)
        return f"{authorize}?{urlencode(query)}"

    @classmethod
    def exchange_code(
        cls, app: OAuthApp, *, code: str, code_verifier: str | None = None
    ) -> Connection:
        body = _token_call(
            app.settings,
            app.client_id,
            app.client_secret,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": app.redirect_uri,
                "code_verifier": code_verifier or "",
            },
        )
        credentials = _token_credentials(body, cls.now())
        adapter = cls(credentials, app.settings)
        try:
            name = adapter.test_connection()
        finally:
            adapter.http.close()
        return Connection(
            credentials=credentials, settings={"api_url": api_url(app.settings)}, name=name
        )

    def _setting(self, name: str, default: float) -> float:
        value = self.settings.get(name)
        return float(value) if value is not None else default

    @property
    def upload_path(self) -> str:
        return str(self.settings.get("upload_path") or DEFAULT_UPLOAD_PATH)

    def _me(self) -> dict[str, Any]:
        data = self.http.json(self._call("GET", "/2/users/me")).get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise TransientError("X answered the account lookup without the account")
        return data

    # -- the interface ---------------------------------------------------------------

    def test_connection(self) -> str:
        return "@" + str(self._me().get("username") or "?")

    def publish(self, draft: Draft, steps: Steps) -> Published:
        state = steps.state
        if state.get("x_post_id"):
            return self._published(str(state["x_post_id"]))
        if state.get("x_sent"):
            found = self.find(draft, steps)
            if found is not None:
                return found
        body: dict[str, Any] = {"text": draft.text}
        if draft.media is not None:
            body["media"] = {"media_ids": [self._upload(draft, steps)]}
        steps.save("posting", x_sent=True, x_sent_at=self.now())
        try:
            response = self._call("POST", "/2/tweets", creates=True, json=body)
        except _Duplicate as exc:
            found = self.find(draft, steps)
            if found is not None:
                return found
            raise RejectedError(
                "X refuses this text as a duplicate of an earlier post, and no post with it "
                "was found since this attempt began: change the caption or check the account"
            ) from exc
        post_id = (self.http.json(response, creates=True).get("data") or {}).get("id")
        if not post_id:
            raise OutcomeUnknown("X answered the post without its id")
        steps.save("posted", x_post_id=str(post_id))
        return self._published(str(post_id))

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        state = steps.state
        if state.get("x_post_id"):
            return self._published(str(state["x_post_id"]))
        if not state.get("x_sent"):
            return None  # the post was never sent
        media_key = state.get("x_media_key") if draft.media is not None else None
        start = datetime.fromtimestamp(float(state["x_sent_at"]) - LOOKBACK_S, UTC)
        params: dict[str, Any] = {
            "max_results": 100,
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "exclude": "retweets,replies",
            "tweet.fields": "created_at,attachments",
        }
        me = self._me()
        for _ in range(int(self._setting("timeline_pages", TIMELINE_PAGES))):
            page = self.http.json(self._call("GET", f"/2/users/{me['id']}/tweets", params=params))
            for post in page.get("data") or []:
                keys = (post.get("attachments") or {}).get("media_keys") or []
                if (media_key and media_key in keys) or (
                    not media_key and _normalized(post.get("text", "")) == _normalized(draft.text)
                ):
                    steps.save("posted", x_post_id=str(post["id"]))
                    return self._published(str(post["id"]))
            next_token = (page.get("meta") or {}).get("next_token")
            if not next_token:
                return None
            params["pagination_token"] = next_token
        raise OutcomeUnknown("X's timeline is longer than was searched: check the account")

    def update(self, published: Published, text: str) -> Published:
        try:
            response = self._call(
                "POST",
                "/2/tweets",
                creates=True,
                json={"text": text, "reply": {"in_reply_to_tweet_id": published.remote_id}},
            )
        except _Duplicate as exc:
            # The same update under two posts of one account is refused the second time.
            raise RejectedError(
                "X refuses this update as the same text as an earlier post of the account: "
                "make the update's text differ from post to post"
            ) from exc
        post_id = (self.http.json(response, creates=True).get("data") or {}).get("id")
        if not post_id:
            raise OutcomeUnknown("X answered the reply without its id")
        return self._published(str(post_id))

    def delete(self, published: Published) -> None:
        try:
            self._call("DELETE", f"/2/tweets/{published.remote_id}")
        except RejectedError as exc:
            if "(404)" not in exc.reason:  # anything but "already gone"
                raise

    # -- replies under the account's posts ---------------------------------------------

    def _fresh_since_id(self, since_id: Any) -> str | None:
        """The stored since_id, unless recent search would refuse it as too old."""
        if not since_id or not str(since_id).isdigit():
            return None
        oldest = self.now() - RECENT_SEARCH_S + SINCE_ID_MARGIN_S
        return str(since_id) if _snowflake_time(str(since_id)) >= oldest else None

    def list_replies(self, published: Published, cursor: Any) -> ReplyPage:
        state = dict(cursor) if isinstance(cursor, Mapping) else {}
        account = str(state.get("account") or "") or str(self._me()["id"])
        next_token = str(state.get("next_token") or "")
        since_id = self._fresh_since_id(state.get("since_id"))
        params: dict[str, Any] = {
            "query": f"conversation_id:{published.remote_id}",
            "max_results": int(self._setting("replies_page_size", SEARCH_PAGE_SIZE)),
            "tweet.fields": REPLY_FIELDS,
            "expansions": "author_id",
            "user.fields": "username",
        }
        if since_id:
            params["since_id"] = since_id
        if next_token:
            params["next_token"] = next_token
        try:
            response = self._call("GET", RECENT_SEARCH_PATH, params=params)
        except _Invalid:
            if not since_id:
                raise
            # Older than X reckons its week (clocks differ): the week is searched instead.
            since_id = None
            del params["since_id"]
            response = self._call("GET", RECENT_SEARCH_PATH, params=params)
        body = self.http.json(response)
        posts = _objects(body.get("data"), "the search")
        meta: dict[str, Any] = body["meta"] if isinstance(body.get("meta"), dict) else {}
        users = _usernames(body)
        replies = [
            _reply(post, users)
            for post in reversed(posts)  # newest first on the network
            if str(post.get("author_id") or "") != account
        ]
        if next_token:
            newest = str(state.get("newest_id") or "")  # the first page's
        else:
            ids = [int(post["id"]) for post in posts if str(post["id"]).isdigit()]
            newest = str(meta.get("newest_id") or (max(ids) if ids else ""))
        following = meta.get("next_token")
        if following:
            return ReplyPage(
                replies,
                {
                    "account": account,
                    "since_id": since_id,
                    "next_token": str(following),
                    "newest_id": newest or None,
                },
                more=True,
            )
        return ReplyPage(replies, {"account": account, "since_id": newest or since_id})

    def _look_up(self, remote_ids: list[str]) -> dict[str, tuple[Reply, str]]:
        """The posts among ``remote_ids`` (first ids of their edit chains) that X still
        shows, each as its latest version with that version's id; raise when X could not
        say for one."""
        body = self.http.json(
            self._call(
                "GET",
                "/2/tweets",
                params={
                    "ids": ",".join(remote_ids),
                    "tweet.fields": REPLY_FIELDS,
                    "expansions": "author_id,edit_history_tweet_ids",
                    "user.fields": "username",
                },
            )
        )
        wanted = set(remote_ids)
        errors: list[Any] = body["errors"] if isinstance(body.get("errors"), list) else []
        for error in errors:
            if not isinstance(error, dict):
                continue
            about = str(error.get("resource_id") or error.get("value") or "")
            if about in wanted and not str(error.get("type") or "").endswith(GONE_ERRORS):
                # Not "gone": X failed to answer for it, and it must not be marked removed.
                detail = error.get("detail") or error.get("title") or error
                raise TransientError(f"X could not look up post {about}: {detail}")
        posts = _objects(body.get("data"), "the lookup")
        includes: dict[str, Any] = (
            body["includes"] if isinstance(body.get("includes"), dict) else {}
        )
        versions = {str(p["id"]): p for p in posts + _objects(includes.get("tweets"), "it")}
        users = _usernames(body)
        found: dict[str, tuple[Reply, str]] = {}
        for post in posts:
            history = _history(post) or [str(post["id"])]
            latest = versions.get(history[-1], post)
            key = history[0] if history[0] in wanted else str(post["id"])
            if key in wanted:
                reply = replace(_reply(latest, users), remote_id=key, edited=len(history) > 1)
                found[key] = (reply, str(latest["id"]))
        return found

    def look_up_replies(self, published: Published, remote_ids: list[str]) -> dict[str, Reply]:
        if not remote_ids:
            return {}
        found = self._look_up([str(remote_id) for remote_id in remote_ids[:25]])
        return {remote_id: reply for remote_id, (reply, _latest) in found.items()}

    def hide_reply(self, published: Published, remote_id: str) -> None:
        # Looked up first: X does not document what hiding a deleted post answers, and
        # an edited reply shows its latest version, the one to hide.
        found = self._look_up([remote_id]).get(remote_id)
        if found is None:
            return  # gone
        _reply_now, latest = found
        try:
            self._call("PUT", f"/2/tweets/{latest}/hidden", json={"hidden": True})
        except _NotFound:
            return  # deleted in between
        except _Forbidden as exc:
            raise RejectedError(
                f"{exc.reason}. X lets an account hide replies only with the permission "
                "to moderate them (tweet.moderate.write), which channels connected before "
                "the portal asked for it lack: an admin must reconnect the X channel. "
                "X also hides at most 725 replies in one conversation."
            ) from exc

    def answer_reply(self, published: Published, remote_id: str, text: str) -> Published:
        try:
            return self._reply_to(remote_id, text)
        except _Duplicate:
            pass
        # The standard answer is the same text under every reply to one appeal, and X
        # refuses it the second time. Nothing was posted: it goes again to the author.
        found = self._look_up([remote_id]).get(remote_id)
        if found is None:
            raise RejectedError("The reply is no longer on X: there is nothing to answer")
        author = found[0].author
        refusal = (
            "X refuses this answer as the same text as an earlier post of the account, "
            "even addressed to the reply's author (answered already under another of "
            "their replies): answer this one on X itself"
        )
        if not author:
            raise RejectedError(refusal)
        try:
            return self._reply_to(remote_id, f"{author} {text}")
        except _Duplicate as exc:
            raise RejectedError(refusal) from exc

    def _reply_to(self, remote_id: str, text: str) -> Published:
        response = self._call(
            "POST",
            "/2/tweets",
            creates=True,
            json={"text": text, "reply": {"in_reply_to_tweet_id": remote_id}},
        )
        post_id = (self.http.json(response, creates=True).get("data") or {}).get("id")
        if not post_id:
            raise OutcomeUnknown("X answered the reply without its id")
        return self._published(str(post_id))

    # -- steps -----------------------------------------------------------------------

    def _upload(self, draft: Draft, steps: Steps) -> str:
        assert draft.media is not None
        state = steps.state
        media_id = state.get("x_media_id")
        if media_id and state.get("x_media_ready"):
            return str(media_id)
        if not media_id or float(state.get("x_media_expires_at") or 0) <= self.now():
            media_id = self._init(draft, steps)
        state = steps.state
        if not state.get("x_media_finalized"):
            self._append(draft, steps, str(media_id))
            response = self._call(
                "POST", self.upload_path, data={"command": "FINALIZE", "media_id": media_id}
            )
            info = (self.http.json(response).get("data") or {}).get("processing_info")
            steps.save("upload_finalized", x_media_finalized=True)
            if not info or info.get("state") == "succeeded":
                steps.save("media_ready", x_media_ready=True)
                return str(media_id)
            self._check_processing(info)
            self.sleep(float(info.get("check_after_secs") or POLL_INTERVAL_S))
        self._wait_for_media(str(media_id), steps)
        return str(media_id)

    def _init(self, draft: Draft, steps: Steps) -> str:
        assert draft.media is not None
        response = self._call(
            "POST",
            self.upload_path,
            data={
                "command": "INIT",
                "total_bytes": str(draft.media.path.stat().st_size),
                "media_type": draft.media.content_type,
                "media_category": self.settings.get("media_category") or MEDIA_CATEGORY,
            },
        )
        data = self.http.json(response).get("data") or {}
        if not data.get("id"):
            raise TransientError("X started the upload without giving its id")
        steps.save(
            "upload_started",
            x_media_id=str(data["id"]),
            x_media_key=data.get("media_key"),
            # Leave a margin: an upload that expires half way is started again.
            x_media_expires_at=self.now() + 0.9 * float(data.get("expires_after_secs") or 3600),
            x_chunk_size=int(self._setting("chunk_size", DEFAULT_CHUNK_SIZE)),
            x_segments_done=0,
            x_media_finalized=False,
            x_media_ready=False,
        )
        return str(data["id"])

    def _append(self, draft: Draft, steps: Steps, media_id: str) -> None:
        assert draft.media is not None
        state = steps.state
        chunk_size = int(state["x_chunk_size"])  # as the stored segments were cut
        segment = int(state.get("x_segments_done") or 0)
        with draft.media.path.open("rb") as handle:
            handle.seek(segment * chunk_size)
            while chunk := handle.read(chunk_size):
                self._call(
                    "POST",
                    self.upload_path,
                    data={"command": "APPEND", "media_id": media_id, "segment_index": str(segment)},
                    files={"media": ("segment", chunk, "application/octet-stream")},
                )
                segment += 1
                steps.save("uploading", x_segments_done=segment)

    def _check_processing(self, info: dict[str, Any]) -> None:
        if info.get("state") == "failed":
            error = info.get("error") or {}
            reason = error.get("message") or error.get("name") or "processing failed"
            raise RejectedError(f"X could not process the video: {reason}")

    def _wait_for_media(self, media_id: str, steps: Steps) -> None:
        budget = self._setting("processing_timeout_s", PROCESSING_TIMEOUT_S)
        waited = 0.0
        while True:
            response = self._call(
                "GET", self.upload_path, params={"command": "STATUS", "media_id": media_id}
            )
            info = (self.http.json(response).get("data") or {}).get("processing_info") or {}
            if info.get("state") in {"succeeded", None}:
                steps.save("media_ready", x_media_ready=True)
                return
            self._check_processing(info)
            if waited >= budget:
                raise TransientError(f"X was still processing the video after {int(waited)} s")
            wait = float(info.get("check_after_secs") or POLL_INTERVAL_S)
            self.sleep(wait)
            waited += wait

    def _published(self, post_id: str) -> Published:
        return Published(post_id, f"https://x.com/i/web/status/{post_id}")
