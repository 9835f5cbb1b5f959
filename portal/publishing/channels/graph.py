"""What the Facebook Page and Instagram adapters share: Meta's Graph API.

Sources (see ../shared/networks.md sections 1 and 2):

* error body ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``
  and the meaning of its codes: developers.facebook.com/docs/graph-api/guides/error-handling
  (190 and 102: the token is bad or expired; 4: "API Too Many Calls"; 17: user-level
  and 613: call-rate throttling; 32: Page-level throttling,
  developers.facebook.com/blog/post/2016/06/16/page-level-rate-limits);
* the Business Use Case usage header ``X-Business-Use-Case-Usage``
  (docs/graph-api/overview/rate-limiting): its ``estimated_time_to_regain_access``
  (minutes) is **unverified**, so it is read when present and the wait falls back to
  the ``rate_limit_wait_s`` setting otherwise;
* the OAuth dialog and token endpoint of Facebook Login
  (docs/facebook-login/guides/advanced/manual-flow) and the long-lived token exchange
  (docs/facebook-login/guides/access-tokens/get-long-lived).

Values the documentation leaves open are settings of the channel, with these defaults:
``base_url`` (graph.facebook.com: the video overview says graph-video.facebook.com is
deprecated), ``api_version`` (the version the adapters were written against; Meta
retires versions about two years after release, so an operator moves it forward),
``rupload_url``, ``dialog_url``, ``poll_interval_s``, ``poll_attempts``, ``timeout_s``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import httpx

from portal.publishing.channels.base import (
    CapReached,
    Channel,
    ChannelError,
    CredentialError,
    Published,
    RejectedError,
    Reply,
    ReplyPage,
    TransientError,
)
from portal.publishing.channels.connect import Connection, OAuthApp
from portal.publishing.channels.http import Http

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_RUPLOAD_URL = "https://rupload.facebook.com"
DEFAULT_DIALOG_URL = "https://www.facebook.com"
# The Graph API version the adapters follow; a setting because Meta retires versions.
DEFAULT_API_VERSION = "v21.0"
# How long to wait after a throttling error when the network does not say (unverified:
# the usage header's "estimated_time_to_regain_access" is read when it is there).
DEFAULT_RATE_LIMIT_WAIT_S = 900.0
DEFAULT_POLL_INTERVAL_S = 5.0
DEFAULT_POLL_ATTEMPTS = 60

CREDENTIAL_CODES = frozenset({190, 102})
# 4, 17, 32, 613 (error-handling guide); 80001 and 80002: the Business Use Case limits
# of Pages and of Instagram (docs/graph-api/overview/rate-limiting, its error codes).
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
# "Unsupported get/delete request: object does not exist" (code 100, subcode 33).
MISSING_OBJECT = (100, 33)
# Instagram's publishing cap reached at media_publish (a post made in the app since the
# quota was read): code 9, subcode 2207042 is what client libraries report; the error
# codes reference does not list it (networks.md: unverified).
PUBLISH_CAP_SUBCODE = 2207042
# "(#803) Some of the aliases you requested do not exist" (an id that names nothing).
UNKNOWN_ALIAS = 803
# Comments asked for per listing call (the pagination guide's ``limit``: "the maximum
# number of objects that may be returned"; the edge's own maximum is unverified, so the
# ``replies_page_size`` setting can lower it).
DEFAULT_REPLIES_PAGE_SIZE = 100


def graph_error(response: httpx.Response) -> dict[str, Any] | None:
    """The ``error`` object of a Graph error body, or None when the body has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def error_code(error: Mapping[str, Any]) -> tuple[int | None, int | None]:
    def number(value: Any) -> int | None:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    return number(error.get("code")), number(error.get("error_subcode"))


def usage_wait_s(response: httpx.Response) -> float | None:
    """Seconds until access comes back, from ``X-Business-Use-Case-Usage`` (unverified
    shape: ``{"<id>": [{"estimated_time_to_regain_access": <minutes>, ...}]}``)."""
    raw = response.headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        minutes = [
            float(entry.get("estimated_time_to_regain_access") or 0)
            for entries in usage.values()
            for entry in entries
        ]
    except (ValueError, AttributeError, TypeError):
        return None
    longest = max(minutes, default=0.0)
    return longest * 60 if longest > 0 else None


class GraphChannel(Channel):
    """A channel on the Graph API: the HTTP client, its errors, polling, and the OAuth
    connection through Facebook Login (both adapters connect the same way)."""

    connect_with: ClassVar[str] = "oauth"
    uses_pkce: ClassVar[bool] = False
    #: Permissions asked for in the dialog (networks.md sections 1 and 2).
    scopes: ClassVar[tuple[str, ...]] = ()
    #: What the connect form calls the account id setting.
    account_label: ClassVar[str] = "Facebook Page id"

    def __init__(self, credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        super().__init__(credentials, settings)
        self.sleep: Callable[[float], None] = time.sleep
        self.http = graph_http(settings, self.network)

    # -- settings -------------------------------------------------------------------

    @property
    def version(self) -> str:
        return str(self.settings.get("api_version") or DEFAULT_API_VERSION)

    @property
    def rupload_url(self) -> str:
        return str(self.settings.get("rupload_url") or DEFAULT_RUPLOAD_URL).rstrip("/")

    def graph_path(self, path: str) -> str:
        return f"/{self.version}/{path.lstrip('/')}"

    def auth(self, token_key: str) -> dict[str, str]:
        # The token goes in a header, never in the URL: URLs end up in proxies' logs.
        token = self.credentials.get(token_key)
        if not token:
            raise CredentialError(f"{self.network}: the channel has no {token_key}; reconnect it")
        return {"Authorization": f"OAuth {token}"}

    def check_rupload(self, url: str) -> str:
        """The upload URL the network handed back, refused unless it is on the upload
        host configured: the token is sent along with the bytes."""
        expected = urlsplit(self.rupload_url)
        got = urlsplit(url)
        if (got.scheme, got.netloc) != (expected.scheme, expected.netloc):
            raise RejectedError(f"{self.network} answered an upload URL on an unexpected host")
        return url

    def poll(self, check: Callable[[], bool], waiting_for: str) -> None:
        """Call ``check`` until it says done, a bounded number of times. Still not done
        is transient: what was stored lets the next attempt resume the wait."""
        interval = float(self.settings.get("poll_interval_s", DEFAULT_POLL_INTERVAL_S))
        attempts = int(self.settings.get("poll_attempts", DEFAULT_POLL_ATTEMPTS))
        for attempt in range(max(attempts, 1)):
            if check():
                return
            if attempt + 1 < attempts:
                self.sleep(interval)
        raise TransientError(f"{self.network} is still {waiting_for}", retry_after=interval * 10)

    # -- replies ------------------------------------------------------------------------

    @property
    def replies_page_size(self) -> int:
        return int(self.settings.get("replies_page_size") or DEFAULT_REPLIES_PAGE_SIZE)

    #: Every how many walks one returns every comment (0: only the first one).
    full_walk_every: ClassVar[int] = 0

    def replies_walk(self, cursor: object) -> tuple[Walk, bool]:
        walk = Walk.of(cursor)
        every = self.settings.get("replies_full_walk_every")
        return walk, walk.full(int(every) if every is not None else self.full_walk_every)

    def comments_page(
        self, path: str, params: Mapping[str, Any], headers: Mapping[str, str], after: str
    ) -> dict[str, Any]:
        """One page of a comments edge, from the ``after`` cursor. A cursor the network
        refuses (what Graph answers for one whose comment was deleted is unverified)
        starts the listing again from the beginning, once: the replies engine files
        nothing twice, and a listing that stopped for good would lose every new one."""

        def page(query: Mapping[str, Any]) -> dict[str, Any]:
            return self.http.json(
                self.http.call(
                    "GET", self.graph_path(path), params=dict(query), headers=dict(headers)
                )
            )

        if not after:
            return page(params)
        try:
            return page({**params, "after": after})
        except MissingObject:
            raise  # the post itself is gone
        except RejectedError:
            return page(params)

    def batch_get(
        self, ids: list[str], fields: str, headers: Mapping[str, str]
    ) -> dict[str, dict[str, Any]]:
        """``GET /{id}?fields=`` for each of ``ids`` in one batch request
        (docs/graph-api/making-multiple-requests: ``POST /`` with ``batch``, answered
        by one ``{"code", "body"}`` per request, in order). Returns the objects that
        exist, by id; one that does not (100/33, 803) is left out. A batch rather than
        ``GET /?ids=``: that answers an error for the whole request when one id is gone
        (803), and v26.0 withdraws it.
        """
        if not ids:
            return {}
        batch = [
            {"method": "GET", "relative_url": f"{remote_id}?{urlencode({'fields': fields})}"}
            for remote_id in ids
        ]
        response = self.http.call(
            "POST",
            self.graph_path(""),
            data={"batch": json.dumps(batch), "include_headers": "false"},
            headers=dict(headers),
        )
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(ids):
            raise TransientError(f"{self.network} answered the look-up with no list of answers")
        wait = float(self.settings.get("rate_limit_wait_s", DEFAULT_RATE_LIMIT_WAIT_S))
        found: dict[str, dict[str, Any]] = {}
        for remote_id, answer in zip(ids, answers, strict=True):
            if not isinstance(answer, dict):
                # "null" is what the guide says a request that timed out answers: whether
                # the comment is there is unknown, so nothing is marked from this batch.
                raise TransientError(f"{self.network} did not answer part of the look-up")
            try:
                body = json.loads(str(answer.get("body") or "null"))
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise TransientError(f"{self.network} answered part of the look-up unreadably")
            error = body.get("error")
            if isinstance(error, dict):
                code, subcode = error_code(error)
                if (code, subcode) == MISSING_OBJECT or code == UNKNOWN_ALIAS:
                    continue
                raise classify_error(error, self.network, wait)
            found[remote_id] = body
        return found

    #: The credential (its key) comments are moderated with, and the field that hides one
    #: (a Page's comment takes ``is_hidden``, an Instagram comment ``hide``).
    moderated_with: ClassVar[str] = ""
    hide_field: ClassVar[str] = ""

    def hide_reply(self, published: Published, remote_id: str) -> None:
        try:
            body = self.http.json(
                self.http.call(
                    "POST",
                    self.graph_path(remote_id),
                    data={self.hide_field: "true"},
                    headers=self.auth(self.moderated_with),
                )
            )
        except MissingObject:
            return  # gone already: nobody sees it
        if body.get("success") is False:
            raise RejectedError(f"{self.network} did not hide the comment")

    def delete_reply(self, published: Published, remote_id: str) -> None:
        try:
            self.http.call(
                "DELETE", self.graph_path(remote_id), headers=self.auth(self.moderated_with)
            )
        except MissingObject:
            return  # already gone

    # -- OAuth (Facebook Login, authorization code) ----------------------------------

    @classmethod
    def authorize_url(cls, app: OAuthApp, *, state: str, code_challenge: str | None = None) -> str:
        dialog = str(app.settings.get("dialog_url") or DEFAULT_DIALOG_URL).rstrip("/")
        version = str(app.settings.get("api_version") or DEFAULT_API_VERSION)
        query = {
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "state": state,
            "response_type": "code",
            "scope": ",".join(cls.scopes),
        }
        return f"{dialog}/{version}/dialog/oauth?{urlencode(query)}"

    @classmethod
    def user_token(cls, app: OAuthApp, code: str) -> str:
        """Trade the code for a user token, then that for a long-lived one (a Page token
        obtained with a long-lived user token does not expire; one from a short-lived
        token lasts an hour or two)."""
        http = graph_http(app.settings, cls.network)
        version = str(app.settings.get("api_version") or DEFAULT_API_VERSION)
        # POST with the secrets in the body: the manual-flow guide shows a GET with them
        # in the query string, which HTTP clients and proxies log. The Graph API takes
        # any call's parameters in a POST body as well.
        try:
            short = http.json(
                http.call(
                    "POST",
                    f"/{version}/oauth/access_token",
                    data={
                        "client_id": app.client_id,
                        "client_secret": app.client_secret,
                        "redirect_uri": app.redirect_uri,
                        "code": code,
                    },
                )
            )
            long = http.json(
                http.call(
                    "POST",
                    f"/{version}/oauth/access_token",
                    data={
                        "grant_type": "fb_exchange_token",
                        "client_id": app.client_id,
                        "client_secret": app.client_secret,
                        "fb_exchange_token": str(short.get("access_token") or ""),
                    },
                )
            )
        finally:
            http.close()
        token = long.get("access_token")
        if not isinstance(token, str) or not token:
            raise CredentialError(f"{cls.network} gave no access token for the code")
        return token

    @classmethod
    def exchange_code(
        cls, app: OAuthApp, *, code: str, code_verifier: str | None = None
    ) -> Connection:
        raise NotImplementedError


def classify_error(error: Mapping[str, Any], network: str, wait_s: float | None) -> ChannelError:
    """What a Graph ``error`` object means for the caller (a whole answer's, or one
    answer's inside a batch)."""
    code, subcode = error_code(error)
    message = str(error.get("message") or "no message")[:300]
    if code in CREDENTIAL_CODES:
        return CredentialError(f"{network} refused the token ({code}): {message}")
    if code in RATE_LIMIT_CODES:
        return TransientError(
            f"{network} rate limit reached ({code}): {message}", retry_after=wait_s
        )
    if (code, subcode) == MISSING_OBJECT:
        return MissingObject(f"{network}: {message}")
    if subcode == PUBLISH_CAP_SUBCODE:
        return CapReached(f"{network}'s daily publishing cap is reached ({code}): {message}")
    return RejectedError(f"{network} refused the request ({code}): {message}")


def graph_http(settings: Mapping[str, Any], network: str) -> Http:
    wait = float(settings.get("rate_limit_wait_s", DEFAULT_RATE_LIMIT_WAIT_S))

    def refine(response: httpx.Response) -> ChannelError | None:
        if response.status_code >= 500:
            return None  # Http's rule: lost for a call that creates, transient otherwise
        error = graph_error(response)
        if error is None:
            return None
        return classify_error(error, network, usage_wait_s(response) or wait)

    return Http(
        str(settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
        network=network,
        timeout_s=settings.get("timeout_s"),
        retry_after=lambda response: usage_wait_s(response) or wait,
        refine=refine,
    )


def graph_time(value: object) -> datetime:
    """A Graph timestamp ("2017-08-31T18:10:30+0000"); anything else is garbage (a
    ValueError, which the replies engine reports as an answer it could not read)."""
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")


#: At most this many ids are kept of the comments that share the mark's second.
MARK_IDS = 50


@dataclass
class Walk:
    """Where a walk through a post's comments, newest first, stands: the replies
    cursor of both Graph adapters, as plain JSON.

    The pagination guide (docs/graph-api/results) says a cursor "will be invalidated if
    the item is deleted" and that an app "shouldn't store cursors": so none is kept
    from one poll to the next. Each poll walks from the newest comment and stops at the
    first page that reaches back past the newest one an earlier walk saw (``mark``,
    with the ids seen in that same second), returning only what is newer. Within a
    walk (pages a few moments apart) the page's ``after`` cursor is kept; one the
    network refuses restarts the walk (:meth:`GraphChannel.comments_page`). A
    ``full`` walk returns every comment (the first one, and every ``every``-th where
    an adapter cannot trust the order).
    """

    after: str = ""
    mark: datetime | None = None
    seen: set[str] = field(default_factory=set)
    #: The newest comment of the walk under way, and the ids at that time.
    top: datetime | None = None
    top_ids: set[str] = field(default_factory=set)
    walks: int = 0

    @classmethod
    def of(cls, cursor: object) -> Walk:
        state = cursor if isinstance(cursor, dict) else {}
        return cls(
            after=str(state.get("after") or ""),
            mark=parse_mark(state.get("mark")),
            seen=set(ids_of(state.get("seen"))),
            top=parse_mark(state.get("top")),
            top_ids=set(ids_of(state.get("top_ids"))),
            walks=int(state.get("walks") or 0),
        )

    def full(self, every: int) -> bool:
        return self.mark is None or (every > 0 and self.walks % every == 0)

    def step(
        self, listed: list[Reply], oldest: datetime | None, next_after: str, *, full: bool
    ) -> ReplyPage:
        """The page the adapter read (its replies, the time of its oldest entry in
        the listing's order, the cursor of the next page or ""), as the engine gets it."""
        for reply in listed:
            if self.top is None or reply.created_at > self.top:
                self.top, self.top_ids = reply.created_at, {reply.remote_id}
            elif reply.created_at == self.top:
                self.top_ids.add(reply.remote_id)
        mark = self.mark
        if not full and mark is not None:
            listed = [
                r
                for r in listed
                if r.created_at > mark or (r.created_at == mark and r.remote_id not in self.seen)
            ]
        reached_mark = not full and mark is not None and oldest is not None and oldest < mark
        if next_after and not reached_mark:
            self.after = next_after
            return ReplyPage(listed, self.cursor(), more=True)
        # The walk is over: the next one starts again from the newest comment.
        if self.top is not None and (mark is None or self.top > mark):
            self.mark, self.seen = self.top, self.top_ids
        elif self.top is not None and self.top == mark:
            self.seen |= self.top_ids
        self.after, self.top, self.top_ids, self.walks = "", None, set(), self.walks + 1
        return ReplyPage(listed, self.cursor(), more=False)

    def cursor(self) -> dict[str, Any]:
        return {
            "after": self.after,
            "mark": show_mark(self.mark),
            "seen": sorted(self.seen)[:MARK_IDS],
            "top": show_mark(self.top),
            "top_ids": sorted(self.top_ids)[:MARK_IDS],
            "walks": self.walks,
        }


def ids_of(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def parse_mark(value: object) -> datetime | None:
    """A time stored in the cursor (written by :func:`show_mark`)."""
    if not value:
        return None
    try:
        return graph_time(value)
    except ValueError:
        return None  # a cursor from elsewhere: the next walk returns everything


def show_mark(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z") if moment is not None else ""


class MissingObject(RejectedError):
    """The object (a video, a media) does not exist (any more)."""


def page_lookup(app: OAuthApp, network: str, user_token: str, fields: str) -> dict[str, Any]:
    """``GET /{page-id}?fields=...`` with the user's token: the Page the admin named,
    which the token must be able to manage."""
    http = graph_http(app.settings, network)
    version = str(app.settings.get("api_version") or DEFAULT_API_VERSION)
    try:
        return http.json(
            http.call(
                "GET",
                f"/{version}/{app.account_id}",
                params={"fields": fields},
                headers={"Authorization": f"OAuth {user_token}"},
            )
        )
    finally:
        http.close()
