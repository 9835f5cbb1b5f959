"""Mastodon: an asynchronous media upload, then a status sent with an Idempotency-Key.

Follows /work/shared/networks.md section 4 (mastodon/documentation
``content/en/methods/media.md``, ``statuses.md``, ``api/rate-limits.md``, and
mastodon/mastodon ``app/services/post_status_service.rb``).

Exactly once: the status is sent with ``Idempotency-Key: <draft.key>``. Mastodon keeps
the key for an hour and answers a repeat with the original status instead of a second
one, so after a lost answer :meth:`Mastodon.find` simply sends the same request again.
Past that hour a repeat would post twice, so ``find`` then looks for the status that
carries our media among the account's own statuses instead, and says it cannot tell
when there is no media to recognise it by.

Connecting: OAuth 2.0 authorization code on the agency's own instance
(``content/en/methods/oauth.md``: ``GET /oauth/authorize``, ``POST /oauth/token``; the
app registered with ``POST /api/v1/apps`` and the redirect address the channel pages
show), with PKCE (S256), which Mastodon supports since 4.3 (an older server ignores the
challenge: Doorkeeper checks PKCE only where its grants table has the columns).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

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

#: Mastodon keeps an Idempotency-Key for 3600 s (``setex 3600`` in PostStatusService);
#: a repeat is trusted only well inside that, leaving room for clocks and queues.
IDEMPOTENCY_WINDOW_S = 3000.0
#: How long to wait for the server to transcode a video before giving the attempt back
#: to the engine (the stored media id lets the next attempt go on polling).
PROCESSING_TIMEOUT_S = 600.0
POLL_INTERVAL_S = 2.0
#: Statuses looked through when the idempotency window has passed.
TIMELINE_LIMIT = 40
#: What the adapter's calls need (``content/en/api/oauth-scopes.md``): the account's
#: name, uploading, posting, editing and deleting, and -- read:statuses -- the
#: account's own statuses that :meth:`Mastodon.find` searches: with a token at all,
#: that endpoint demands the scope (``authorize_if_got_token! :read, :'read:statuses'``
#: in Api::V1::Accounts::StatusesController).
SCOPES = ("read:accounts", "read:statuses", "write:media", "write:statuses")

# The 422 PostStatusService gives while attached media is still being processed
# (wording as several clients quote it [3p]; matched loosely on purpose).
_NOT_READY = "not finished processing"


def _seconds_until(reset: str | None, now: float) -> float | None:
    """``X-RateLimit-Reset`` is an ISO-8601 instant (Mastodon sends no Retry-After)."""
    if not reset:
        return None
    try:
        at = datetime.fromisoformat(reset.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, at.timestamp() - now)


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("error_description") or body)[:300]
    return str(body)[:200]


class _Unprocessable(RejectedError):
    """422: Mastodon validated the request and refused it (too long, bad media...)."""


@register
class Mastodon(Channel):
    network = "mastodon"
    edits_in_place = True
    connect_with: ClassVar[str] = "oauth"
    uses_pkce: ClassVar[bool] = True
    account_label: ClassVar[str] = "Account (leave blank: the one who signs in)"

    #: Injected by tests (a controlled clock); real time otherwise.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    now: Callable[[], float] = staticmethod(time.time)

    def __init__(self, credentials: Any, settings: Any) -> None:
        super().__init__(credentials, settings)
        self._http: Http | None = None

    # -- connecting (OAuth 2.0 authorization code) ----------------------------------

    @staticmethod
    def _instance(app: OAuthApp) -> str:
        base_url = str(app.settings.get("base_url") or "").rstrip("/")
        if not base_url:
            raise CredentialError("Mastodon: give the address of your agency's instance")
        return base_url

    @classmethod
    def authorize_url(cls, app: OAuthApp, *, state: str, code_challenge: str | None = None) -> str:
        query = {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "scope": " ".join(SCOPES),
            "state": state,
        }
        if code_challenge:
            query.update(code_challenge=code_challenge, code_challenge_method="S256")
        return f"{cls._instance(app)}/oauth/authorize?{urlencode(query)}"

    @classmethod
    def exchange_code(
        cls, app: OAuthApp, *, code: str, code_verifier: str | None = None
    ) -> Connection:
        base_url = cls._instance(app)
        http = Http(base_url, network="Mastodon", timeout_s=app.settings.get("timeout_s"))
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": app.redirect_uri,
            "scope": " ".join(SCOPES),
        }
        if code_verifier:
            data["code_verifier"] = code_verifier
        try:
            response = http.call("POST", "/oauth/token", data=data, accept=(400, 401))
            body = http.json(response)
        finally:
            http.close()
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise token_refusal("Mastodon", body, response.status_code)
        adapter = cls({"access_token": token}, {**app.settings, "base_url": base_url})
        try:
            name = adapter.test_connection()
        finally:
            adapter.http.close()
        return Connection(
            credentials={"access_token": token}, settings={"base_url": base_url}, name=name
        )

    # -- plumbing --------------------------------------------------------------------

    @property
    def http(self) -> Http:
        if self._http is None:
            base_url = str(self.settings.get("base_url") or "").rstrip("/")
            self._http = Http(
                base_url,
                network="Mastodon",
                headers={"Authorization": f"Bearer {self.credentials.get('access_token', '')}"},
                timeout_s=self.settings.get("timeout_s"),
                retry_after=lambda r: _seconds_until(
                    r.headers.get("X-RateLimit-Reset"), self.now()
                ),
                refine=self._refine,
            )
        return self._http

    def _refine(self, response: httpx.Response) -> ChannelError | None:
        if response.status_code == 422:
            message = _error_text(response)
            if _NOT_READY in message:
                return TransientError(f"Mastodon is still processing the video: {message}")
            return _Unprocessable(f"Mastodon refused it: {message}")
        return None

    def _setting(self, name: str, default: float) -> float:
        value = self.settings.get(name)
        return float(value) if value is not None else default

    # -- the interface ---------------------------------------------------------------

    def test_connection(self) -> str:
        account = self.http.json(self.http.call("GET", "/api/v1/accounts/verify_credentials"))
        acct = str(account.get("acct") or account.get("username") or "?")
        # A local account's acct has no domain; its full address names the instance too.
        host = urlsplit(str(self.settings.get("base_url") or "")).netloc
        return f"@{acct}" if "@" in acct or not host else f"@{acct}@{host}"

    def publish(self, draft: Draft, steps: Steps) -> Published:
        state = steps.state
        if state.get("mastodon_status_id"):
            return self._stored(state, draft)
        media_ids: list[str] = []
        if draft.media is not None:
            media_ids.append(self._upload(draft, steps))
        steps.save("posting", mastodon_sent_at=self.now())
        return self._post(draft, steps, media_ids)

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        state = steps.state
        if state.get("mastodon_status_id"):
            return self._stored(state, draft)
        sent_at = state.get("mastodon_sent_at")
        if sent_at is None:
            return None  # the status request was never sent
        media_id = state.get("mastodon_media_id")
        if self.now() - float(sent_at) < self._setting(
            "idempotency_window_s", IDEMPOTENCY_WINDOW_S
        ):
            # Same key: the original status if there is one, else the one it should be.
            try:
                return self._post(draft, steps, [media_id] if media_id else [])
            except OutcomeUnknown as exc:
                # Still inside the window, so asking again later is as safe as now.
                raise TransientError(exc.reason) from exc
        if not media_id:
            raise OutcomeUnknown(
                "Mastodon's idempotency window has passed and a post without media "
                "cannot be recognised: check the account"
            )
        return self._find_by_media(draft, steps, str(media_id))

    def update(self, published: Published, text: str) -> Published:
        original = str(published.extra.get("text", ""))
        data: dict[str, Any] = {"status": f"{text}\n\n{original}".strip()}
        media_ids = list(published.extra.get("media_ids", []))
        if media_ids:
            # An edit replaces the attachments; naming them again keeps the video.
            data["media_ids[]"] = media_ids
        try:
            response = self.http.call("PUT", f"/api/v1/statuses/{published.remote_id}", data=data)
        except _Unprocessable:
            # Too long with the update in front: a reply instead, keyed so that a
            # repeat after a lost answer returns the first reply.
            digest = hashlib.sha256(f"{published.remote_id}\n{text}".encode()).hexdigest()
            response = self.http.call(
                "POST",
                "/api/v1/statuses",
                creates=True,
                data={"status": text, "in_reply_to_id": published.remote_id},
                headers={"Idempotency-Key": f"reply-{digest[:32]}"},
            )
        status = self.http.json(response)
        return Published(str(status["id"]), str(status.get("url") or ""), {"text": text})

    def delete(self, published: Published) -> None:
        try:
            self.http.call("DELETE", f"/api/v1/statuses/{published.remote_id}")
        except RejectedError as exc:
            if "(404)" not in exc.reason:
                raise

    # -- steps -----------------------------------------------------------------------

    def _upload(self, draft: Draft, steps: Steps) -> str:
        assert draft.media is not None
        state = steps.state
        media_id = state.get("mastodon_media_id")
        if state.get("mastodon_media_ready"):
            return str(media_id)
        if not media_id:
            with draft.media.path.open("rb") as handle:
                response = self.http.call(
                    "POST",
                    "/api/v2/media",
                    files={"file": (draft.media.path.name, handle, draft.media.content_type)},
                    data={"description": draft.alt},
                )
            media = self.http.json(response)
            media_id = str(media.get("id") or "")
            if not media_id:
                raise TransientError("Mastodon accepted the video without giving its id")
            steps.save("uploaded", mastodon_media_id=media_id)
            if response.status_code == 200 and media.get("url"):
                steps.save("processed", mastodon_media_ready=True)
                return media_id
        self._wait_for_media(str(media_id), steps)
        return str(media_id)

    def _wait_for_media(self, media_id: str, steps: Steps) -> None:
        budget = self._setting("processing_timeout_s", PROCESSING_TIMEOUT_S)
        interval = self._setting("poll_interval_s", POLL_INTERVAL_S)
        waited = 0.0
        while True:
            response = self.http.call("GET", f"/api/v1/media/{media_id}")
            if response.status_code == 200 and self.http.json(response).get("url"):
                steps.save("processed", mastodon_media_ready=True)
                return
            if waited >= budget:
                raise TransientError(
                    f"Mastodon was still processing the video after {int(waited)} s"
                )
            self.sleep(interval)
            waited += interval

    def _post(self, draft: Draft, steps: Steps, media_ids: list[str]) -> Published:
        data: dict[str, Any] = {
            "status": draft.text,
            "visibility": self.settings.get("visibility") or "public",
        }
        if media_ids:
            data["media_ids[]"] = media_ids
        response = self.http.call(
            "POST",
            "/api/v1/statuses",
            creates=True,
            data=data,
            headers={"Idempotency-Key": draft.key},
        )
        status = self.http.json(response, creates=True)
        if not status.get("id"):
            raise OutcomeUnknown("Mastodon answered the post without its id")
        steps.save(
            "posted",
            mastodon_status_id=str(status["id"]),
            mastodon_url=str(status.get("url") or ""),
        )
        return self._published(str(status["id"]), str(status.get("url") or ""), draft, media_ids)

    def _find_by_media(self, draft: Draft, steps: Steps, media_id: str) -> Published | None:
        account = self.http.json(self.http.call("GET", "/api/v1/accounts/verify_credentials"))
        response = self.http.call(
            "GET",
            f"/api/v1/accounts/{account.get('id')}/statuses",
            params={"only_media": "true", "exclude_replies": "true", "limit": TIMELINE_LIMIT},
        )
        statuses = response.json() if response.content else []
        if not isinstance(statuses, list):
            raise OutcomeUnknown("Mastodon answered the account's statuses with something else")
        for status in statuses:
            attached = {str(m.get("id")) for m in status.get("media_attachments") or []}
            if media_id in attached:
                steps.save(
                    "posted",
                    mastodon_status_id=str(status["id"]),
                    mastodon_url=str(status.get("url") or ""),
                )
                return self._stored(steps.state, draft)
        return None

    def _stored(self, state: Any, draft: Draft) -> Published:
        media_id = state.get("mastodon_media_id")
        return self._published(
            str(state["mastodon_status_id"]),
            str(state.get("mastodon_url") or ""),
            draft,
            [str(media_id)] if media_id else [],
        )

    def _published(
        self, status_id: str, url: str, draft: Draft, media_ids: list[str] | None = None
    ) -> Published:
        return Published(status_id, url, {"text": draft.text, "media_ids": media_ids or []})
