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

Replies under a post (mastodon/documentation ``content/en/methods/statuses.md``
"Get parent and child statuses in context", mastodon/mastodon
``app/controllers/api/v1/statuses/contexts_controller.rb`` and
``app/models/concerns/status/threading_concern.rb``): ``GET
/api/v1/statuses/:id/context`` answers every ``descendant`` at once, replies to
replies included. It is not paginated (the controller: "pagination cannot be
introduced without breaking backwards-compatibility"): with a token the server returns
"up to 4,096 descendants, unlimited depth" (the documentation; ``CONTEXT_LIMIT =
4_096`` in the controller), cut in depth-first tree order (``ORDER BY path LIMIT``),
so on a post with more than that the threads that sort last -- the
newest replies to the post itself and what hangs under them -- are not in the answer
at all and cannot be listed (a warning is logged when the answer is that full). The
adapter makes its pages itself out of that one answer (:data:`REPLIES_PAGE`
replies each, one context call per fetch), oldest id first.

The cursor is the ids seen, not one highest id. Status ids are Snowflake-like
(milliseconds << 16), but a reply from another server takes its id from the time it
says it was written (``Mastodon::Snowflake::Callbacks`` in ``lib/mastodon/snowflake.rb``
backdates the id to ``created_at``), so a reply federated late can carry an id below
one already seen. The cursor therefore keeps ``after`` -- everything at or below it
was listed -- and ``seen``, the ids above it; ``after`` trails the newest id by
:data:`LOOKBACK_S` of Snowflake time, or less on a busy post, where ``seen`` keeps only
the newest :data:`SEEN_MAX` ids (a cursor of about 10 kB at most). A remote reply that
arrives later than that, behind newer ones, is not listed: a trade-off, said here.

Mentions: ``GET /api/v1/notifications?types[]=mention`` is not used. Every mention
that replies under the post is a descendant and in the context already; the
notifications are the whole account's rather than the post's (every live post's
fetch would walk the same list), and they need ``read:notifications``, a scope the
channels were not connected with (each agency would have to reconnect).

What the account can do to someone else's reply: answer it (``POST /api/v1/statuses``
with ``in_reply_to_id``). Mastodon gives an account no way to hide or delete a reply
by another account under its post: ``DELETE /api/v1/statuses/:id`` finds only the
caller's own statuses (``Status.where(account: current_account)``, 404 otherwise);
only the instance's moderators can remove one (reports, admin API). A detective who
wants one gone reports it to its server's moderators.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
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
    Reply,
    ReplyPage,
    Steps,
    TransientError,
)
from portal.publishing.channels.connect import Connection, OAuthApp, token_refusal
from portal.publishing.channels.http import Http
from portal.publishing.channels.registry import register

log = logging.getLogger(__name__)

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

#: Replies handed to the engine per page, cut from the one context answer.
REPLIES_PAGE = 100
#: The most descendants the context answers with a token (``CONTEXT_LIMIT``; a
#: channel's settings may say otherwise for a server that changed it).
CONTEXT_LIMIT = 4096
#: How far behind the newest id seen the cursor keeps the ids it saw (a remote reply
#: delivered late takes an id from when it was written), and how many it keeps.
LOOKBACK_S = 3600
SEEN_MAX = 500
#: ``GET /api/v1/statuses?id[]=`` takes at most ``DEFAULT_STATUSES_LIMIT`` ids
#: (Api::BaseController; more is a 422), and exists since 4.3.0 only.
LOOKUP_MAX = 20
#: The answer's visibility follows the reply's where that is narrower: a private
#: mention is not answered in public.
NARROWER = {"unlisted": "unlisted", "private": "private", "direct": "direct", "limited": "direct"}

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


def _snowflake_span(seconds: float) -> int:
    """The distance between two status ids ``seconds`` apart (``Mastodon::Snowflake``:
    48 bits of milliseconds above 16 bits of sequence)."""
    return int(seconds * 1000) << 16


class _Text(HTMLParser):
    """A status's ``content`` (HTML as Mastodon sanitises it: ``p``, ``br``, ``a``,
    ``span``...) as plain text: paragraphs apart, line breaks kept, tags dropped,
    entities unescaped (``convert_charrefs``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in {"p", "li", "blockquote", "pre"} and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(content: str) -> str:
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    lines = "".join(parser.parts).split("\n")
    return "\n".join(line.strip() for line in lines).strip()


def _time(value: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise TransientError(
            f"Mastodon answered a reply with an unreadable time: {value!r}"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class _Unprocessable(RejectedError):
    """422: Mastodon validated the request and refused it (too long, bad media...)."""


@register
class Mastodon(Channel):
    network = "mastodon"
    edits_in_place = True
    connect_with: ClassVar[str] = "oauth"
    uses_pkce: ClassVar[bool] = True
    account_label: ClassVar[str] = "Account (leave blank: the one who signs in)"
    lists_replies = True
    # No API lets an account hide or delete another account's reply (module docstring).
    can_hide_replies = False
    can_delete_replies = False
    can_answer_replies = True

    #: Injected by tests (a controlled clock); real time otherwise.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    now: Callable[[], float] = staticmethod(time.time)

    def __init__(self, credentials: Any, settings: Any) -> None:
        super().__init__(credentials, settings)
        self._http: Http | None = None
        self._me: str | None = None
        #: One fetch's context answer, by post: the pages after the first are cut from
        #: it instead of asking for all the descendants again.
        self._context: dict[str, list[dict[str, Any]]] = {}
        #: False once the server answered 404 to the multi-status lookup (before 4.3).
        self._lookup_many = True

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

    # -- replies under the account's posts -------------------------------------------

    def list_replies(self, published: Published, cursor: Any) -> ReplyPage:
        after, seen = self._cursor(cursor)
        post_id = published.remote_id
        if post_id not in self._context:
            self._context[post_id] = self._descendants(post_id)
        new = [
            status
            for status in self._context[post_id]
            if int(status["id"]) > after and status["id"] not in seen
        ]
        new.sort(key=lambda status: int(status["id"]))
        page_size = int(self._setting("replies_page", REPLIES_PAGE))
        page, rest = new[:page_size], new[page_size:]
        if not rest:
            del self._context[post_id]  # caught up: the next call asks the server again
        replies = [self._reply(status) for status in page]
        return ReplyPage(
            replies=replies,
            cursor=self._next_cursor(after, seen, [status["id"] for status in page]),
            more=bool(rest),
        )

    def look_up_replies(self, published: Published, remote_ids: list[str]) -> dict[str, Reply]:
        found: dict[str, Reply] = {}
        ids = [rid for rid in dict.fromkeys(remote_ids) if rid.isdigit()]
        for start in range(0, len(ids), LOOKUP_MAX):
            chunk = ids[start : start + LOOKUP_MAX]
            for status in self._statuses(chunk):
                if str(status.get("id")) in chunk:
                    reply = self._reply(self._checked(status))
                    found[reply.remote_id] = reply
        return found

    def answer_reply(self, published: Published, remote_id: str, text: str) -> Published:
        # The author and visibility of the reply, and whether it is still there.
        try:
            reply = self.http.json(self.http.call("GET", f"/api/v1/statuses/{remote_id}"))
        except RejectedError as exc:
            if "(404)" in exc.reason:
                raise RejectedError("The reply is no longer on Mastodon") from exc
            raise
        acct = str((reply.get("account") or {}).get("acct") or "")
        visibility = NARROWER.get(str(reply.get("visibility")), "") or str(
            self.settings.get("visibility") or "public"
        )
        # Mastodon's clients begin a reply with the author's handle: it is what
        # notifies them, and the server does not add it.
        status = f"@{acct} {text}" if acct else text
        digest = hashlib.sha256(f"{remote_id}\n{text}".encode()).hexdigest()
        response = self.http.call(
            "POST",
            "/api/v1/statuses",
            creates=True,
            data={"status": status, "in_reply_to_id": remote_id, "visibility": visibility},
            # A repeat within the hour returns the first answer instead of a second.
            headers={"Idempotency-Key": f"reply-{digest[:32]}"},
        )
        answer = self.http.json(response, creates=True)
        if not answer.get("id"):
            raise OutcomeUnknown("Mastodon answered the reply without its id")
        return Published(str(answer["id"]), str(answer.get("url") or ""), {"text": status})

    def _descendants(self, post_id: str) -> list[dict[str, Any]]:
        try:
            response = self.http.call("GET", f"/api/v1/statuses/{post_id}/context")
        except RejectedError as exc:
            if "(404)" in exc.reason:
                raise RejectedError(
                    "the post is no longer on Mastodon (deleted there?): no replies to fetch"
                ) from exc
            raise
        body = self.http.json(response)
        descendants = body.get("descendants")
        if not isinstance(descendants, list):
            raise TransientError("Mastodon answered the post's context without its descendants")
        if len(descendants) >= self._setting("context_limit", CONTEXT_LIMIT):
            log.warning(
                "Mastodon answered the context of %s with %d descendants, its limit: "
                "newer replies may be left out",
                post_id,
                len(descendants),
            )
        me = self._own_id()
        statuses = [self._checked(status) for status in descendants]
        # The account's own statuses in the thread (its updates, its answers) are not
        # replies to file.
        return [s for s in statuses if str((s.get("account") or {}).get("id")) != me]

    def _statuses(self, ids: list[str]) -> list[dict[str, Any]]:
        """The statuses among ``ids`` still visible to the account."""
        if self._lookup_many:
            try:
                response = self.http.call("GET", "/api/v1/statuses", params={"id[]": ids})
            except RejectedError as exc:
                if "(404)" not in exc.reason:
                    raise
                self._lookup_many = False  # before 4.3.0: one at a time
            else:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if not isinstance(body, list):
                    raise TransientError("Mastodon answered the statuses with something else")
                return body
        statuses = []
        for status_id in ids:
            try:
                response = self.http.call("GET", f"/api/v1/statuses/{status_id}")
            except RejectedError as exc:
                if "(404)" in exc.reason:
                    continue  # deleted, or no longer visible to the account
                raise
            statuses.append(self.http.json(response))
        return statuses

    def _own_id(self) -> str:
        if self._me is None:
            account = self.http.json(self.http.call("GET", "/api/v1/accounts/verify_credentials"))
            self._me = str(account.get("id") or "")
        return self._me

    @staticmethod
    def _checked(status: Any) -> dict[str, Any]:
        if not isinstance(status, dict) or not str(status.get("id") or "").isdigit():
            raise TransientError("Mastodon answered a reply without its id")
        if not isinstance(status.get("account"), dict):
            raise TransientError("Mastodon answered a reply without its author")
        return {**status, "id": str(status["id"])}

    def _reply(self, status: dict[str, Any]) -> Reply:
        acct = str(status["account"].get("acct") or status["account"].get("username") or "")
        # A local account's acct has no domain; its address names the instance.
        host = urlsplit(str(self.settings.get("base_url") or "")).netloc
        author = f"@{acct}" if "@" in acct or not host else f"@{acct}@{host}"
        return Reply(
            remote_id=status["id"],
            text=self._text(status),
            author=author if acct else "",
            created_at=_time(status.get("created_at")),
            url=str(status.get("url") or status.get("uri") or ""),
            edited=bool(status.get("edited_at")),
        )

    @staticmethod
    def _text(status: dict[str, Any]) -> str:
        """The reply's words; a content warning (``spoiler_text``) is what readers see
        first, so it comes first."""
        text = plain_text(str(status.get("content") or ""))
        warning = str(status.get("spoiler_text") or "").strip()
        return f"{warning}\n\n{text}".strip() if warning else text

    @staticmethod
    def _cursor(cursor: Any) -> tuple[int, set[str]]:
        if not isinstance(cursor, dict):
            return 0, set()
        after = str(cursor.get("after") or "0")
        seen = cursor.get("seen") or []
        return (int(after) if after.isdigit() else 0), {str(i) for i in seen}

    @staticmethod
    def _next_cursor(after: int, seen: set[str], listed: list[str]) -> dict[str, Any]:
        ids = sorted({int(i) for i in seen | set(listed)})
        if ids:
            after = max(after, ids[-1] - _snowflake_span(LOOKBACK_S))
        kept = [i for i in ids if i > after]
        if len(kept) > SEEN_MAX:
            after, kept = kept[-SEEN_MAX - 1], kept[-SEEN_MAX:]
        return {"after": str(after), "seen": [str(i) for i in kept]}

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
