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
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping
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
    Steps,
    TransientError,
)
from portal.publishing.channels.connect import Connection, OAuthApp, token_refusal
from portal.publishing.channels.http import Http
from portal.publishing.channels.registry import register

DEFAULT_API_URL = "https://api.x.com"
DEFAULT_AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
OAUTH2_PATH = "/2/oauth2/token"
#: Reading the account and its posts, posting, uploading media, and a refresh token.
SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
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
            return RejectedError(f"X refused it (403): {detail}")
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
