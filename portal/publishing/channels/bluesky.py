"""Bluesky: the video through Bluesky's video service and its job status, then a post
record whose key is chosen before it is created.

Follows /work/shared/networks.md section 6 (bluesky-social/atproto lexicons
``com/atproto/server/*``, ``com/atproto/repo/*``, ``app/bsky/video/*``,
``app/bsky/feed/post.json``, ``app/bsky/embed/video.json``; bluesky-social/bsky-docs
``docs/tutorials/video.mdx``; ``packages/xrpc-server/src/rate-limiter-http.ts`` for the
rate-limit headers, ``packages/pds/src/auth-verifier.ts`` for ExpiredToken).

Exactly once: the record key (a TID) and ``createdAt`` are derived once and stored
before ``createRecord`` is sent, so every later attempt names the same record:
:meth:`Bluesky.find` asks ``getRecord`` for it, and ``publish`` looks before it sends
again. What the PDS answers to a second create at an existing key is unverified, which
is why the adapter never relies on it.

Connecting: an app password (not the account's password; bsky.app Settings, App
passwords), checked by creating a session on the PDS, whose DID and the account's own
PDS are kept in the channel's settings.

Replies (lexicons ``app/bsky/feed/getPostThread.json``, ``getPosts.json``,
``defs.json``, ``threadgate.json``, ``com/atproto/repo/putRecord.json``; the Bluesky
app's ``src/state/queries/threadgate`` for how it hides a reply): documented is a thread
as one tree (``threadViewPost`` with ``replies``, which may hold ``notFoundPost`` and
``blockedPost``), with no cursor and no paging, ``depth`` at most 1000; a batch lookup
of at most 25 posts; and hiding through the post's threadgate record (its key is the
post's key; ``hiddenReplies`` holds at most 50 uris). Posts cannot be edited, and an
account cannot delete another's post. Undocumented: how many replies the AppView leaves
out of a very large thread, and whether ``getPostThread`` still shows hidden replies
(they are marked hidden from the threadgate when it does).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import regex

from portal.publishing.channels.base import (
    CapReached,
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
from portal.publishing.channels.connect import Connection
from portal.publishing.channels.http import Http
from portal.publishing.channels.registry import register

DEFAULT_PDS_URL = "https://bsky.social"
DEFAULT_VIDEO_URL = "https://video.bsky.app"
#: The audience of the service token for getUploadLimits (the tutorial's value).
DEFAULT_VIDEO_AUD = "did:web:video.bsky.app"
POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
#: feed/post.json: ``text`` maxGraphemes 300, maxLength 3000 (bytes).
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
#: The service token asked for lasts this long (getServiceAuth defaults to 60 s, too
#: short for a large upload on a slow line).
SERVICE_TOKEN_S = 1800
#: The tutorial polls about once a second; the bound hands the attempt back to the
#: engine with the job id stored, so the next attempt goes on polling.
POLL_INTERVAL_S = 1.0
PROCESSING_TIMEOUT_S = 600.0

#: How deep getPostThread is asked to go. The lexicon allows 1000, but every level nests
#: the answer's JSON twice and Python's decoder gives up near 500 levels.
REPLY_DEPTH = 200
#: A chain deeper than that is read on from its deepest replies, one call each, at
#: most this many calls a listing (ten times 200 levels).
REPLY_CONTINUATIONS = 10
#: New replies handed to the engine per page. A thread comes whole, in one answer with
#: no cursor, so the pages are cut here: each page is a fresh call from the stored
#: cursor, filed and committed before the next.
REPLY_PAGE = 100
#: threadgate.json: ``hiddenReplies`` maxLength 50; getPosts.json: ``uris`` maxLength 25.
MAX_HIDDEN_REPLIES = 50
MAX_LOOKUP = 25
#: A handle that no longer resolves (app.bsky.actor.defs): the DID names the author then.
INVALID_HANDLE = "handle.invalid"

#: app.bsky.video.defs jobStatus states; any other value means "still in progress".
COMPLETED, FAILED = "JOB_STATE_COMPLETED", "JOB_STATE_FAILED"
_EXPIRED = {"ExpiredToken", "InvalidToken"}
#: What of a session is kept between jobs (com.atproto.server.createSession output).
SESSION_KEYS = ("accessJwt", "refreshJwt", "did", "handle")
_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_URL = re.compile(r"https?://[^\s]+")
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_TAG = re.compile(r"(?:^|(?<=\s))#([^\s#]+)")
_TRAILING = ".,;:!?)\"'"


class _TokenExpired(CredentialError):
    """The session's access token expired: renew the session once and try again."""


class _NotFound(RejectedError):
    """The PDS has no such record (400 RecordNotFound), or the AppView no such post
    (400 NotFound, getPostThread.json)."""


def new_tid(now_s: float, clock_id: int) -> str:
    """A record key in the TID syntax: 53 bits of microseconds and 10 of clock id,
    base32-sortable, 13 characters."""
    return _tid(int(now_s * 1_000_000), clock_id)


def _tid_value(tid: str) -> int:
    value = 0
    for char in tid:
        value = value * 32 + _S32.index(char)
    return value


def _tid(microseconds: int, clock_id: int) -> str:
    n = (microseconds << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_S32[n & 31])
        n >>= 5
    return "".join(reversed(chars))


_CLOCK_ID = secrets.randbelow(1024)
_last_us = 0
_tid_lock = threading.Lock()


def next_tid(now_s: float) -> str:
    """A fresh TID, later than every one this process made before (as atproto's own
    TID.next does): two records in the same microsecond never share a key."""
    global _last_us
    with _tid_lock:
        _last_us = max(int(now_s * 1_000_000), _last_us + 1)
        return _tid(_last_us, _CLOCK_ID)


def count_graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def facets_for(text: str) -> list[dict[str, Any]]:
    """Links and hashtags as rich-text facets: Bluesky shows a bare URL as plain text.
    Offsets are in UTF-8 bytes (app.bsky.richtext.facet byteSlice)."""
    facets: list[dict[str, Any]] = []

    def add(start: int, end: int, feature: dict[str, Any]) -> None:
        facets.append(
            {
                "index": {
                    "byteStart": len(text[:start].encode()),
                    "byteEnd": len(text[:end].encode()),
                },
                "features": [feature],
            }
        )

    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        add(
            match.start(),
            match.start() + len(url),
            {"$type": "app.bsky.richtext.facet#link", "uri": url},
        )
    for match in _TAG.finditer(text):
        tag = match.group(1).rstrip(_TRAILING)
        if tag and not tag.isdigit():
            add(
                match.start(),
                match.start(1) + len(tag),
                {"$type": "app.bsky.richtext.facet#tag", "tag": tag},
            )
    return facets


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    return str(body.get("error") or ""), str(body.get("message") or "")[:300]


@register
class Bluesky(Channel):
    network = "bluesky"
    edits_in_place = False
    connect_with: ClassVar[str] = "app_password"
    lists_replies = True
    can_hide_replies = True
    #: Another account's post lives in its own repository: only its author deletes it.
    can_delete_replies = False
    can_answer_replies = True

    #: Injected by tests (a controlled clock); real time otherwise.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    now: Callable[[], float] = staticmethod(time.time)

    def __init__(self, credentials: Any, settings: Any) -> None:
        super().__init__(credentials, settings)
        self._pds: Http | None = None
        self._video: Http | None = None
        self._session: dict[str, Any] | None = None
        #: Whether the session came from the stored credentials (not made in this run).
        self._session_stored = False

    # -- connecting -----------------------------------------------------------------

    @classmethod
    def connect_password(cls, settings: Any, *, identifier: str, password: str) -> Connection:
        """Sign in once with the app password: a refused one is said so, with the PDS's
        reason, before anything is stored."""
        pds_url = str(settings.get("pds_url") or settings.get("base_url") or DEFAULT_PDS_URL)
        adapter = cls(
            {"identifier": identifier, "app_password": password},
            {**settings, "pds_url": pds_url.rstrip("/")},
        )
        entry = adapter.pds
        try:
            response = entry.call(
                "POST",
                "/xrpc/com.atproto.server.createSession",
                json={"identifier": identifier, "password": password},
                accept=(401,),
            )
            if response.status_code == 401:
                name, message = _error(response)
                raise CredentialError(
                    f"Bluesky refused the sign-in ({name or 401}): {message or 'no reason given'}."
                    " Use the account's handle and an app password made for the portal."
                )
            session = adapter._use_session(entry.json(response))
            pds = str(adapter.pds.client.base_url).rstrip("/")
        finally:
            entry.close()
            adapter.pds.close()  # the account's own PDS, when the entryway named one
        return Connection(
            credentials={"identifier": identifier, "app_password": password},
            settings={"pds_url": pds, "did": str(session["did"])},
            name="@" + str(session.get("handle") or identifier),
        )

    # -- plumbing --------------------------------------------------------------------

    def close(self) -> None:
        for client in (self._pds, self._video):
            if client is not None:
                client.close()

    def _http(self, base_url: str) -> Http:
        return Http(
            base_url.rstrip("/"),
            network="Bluesky",
            timeout_s=self.settings.get("timeout_s"),
            retry_after=self._retry_after,
            refine=self._refine,
        )

    def _retry_after(self, response: httpx.Response) -> float | None:
        reset = response.headers.get("RateLimit-Reset")
        if reset and reset.isdigit():
            return max(0.0, int(reset) - self.now())
        wait = response.headers.get("Retry-After")
        if wait and wait.isdigit():
            return float(wait)
        return None

    def _refine(self, response: httpx.Response) -> ChannelError | None:
        if response.status_code != 400:
            return None
        name, message = _error(response)
        if name in _EXPIRED:
            return _TokenExpired(f"Bluesky's session expired ({name})")
        if name == "RecordNotFound":
            return _NotFound(f"Bluesky has no such record: {message}")
        if name == "NotFound":
            return _NotFound(f"Bluesky has no such post: {message}")
        if name == "InvalidSwap":
            # A stale swapRecord (packages/pds/src/api/com/atproto/repo/putRecord.ts): the
            # record changed between our read and our write (the app hid another reply
            # at that moment), so a retry reads it again.
            return TransientError(f"Bluesky's record changed while it was written: {message}")
        if name in {"AuthFactorTokenRequired", "AccountTakedown"}:
            return CredentialError(f"Bluesky refused the sign-in ({name}): {message}")
        return RejectedError(f"Bluesky refused it ({name or 400}): {message}")

    def _setting(self, name: str, default: float) -> float:
        value = self.settings.get(name)
        return float(value) if value is not None else default

    @property
    def pds(self) -> Http:
        if self._pds is None:
            self._pds = self._http(str(self.settings.get("pds_url") or DEFAULT_PDS_URL))
        return self._pds

    @property
    def video(self) -> Http:
        if self._video is None:
            self._video = self._http(str(self.settings.get("video_url") or DEFAULT_VIDEO_URL))
        return self._video

    def _sign_in(self) -> dict[str, Any]:
        response = self.pds.call(
            "POST",
            "/xrpc/com.atproto.server.createSession",
            json={
                "identifier": self.credentials.get("identifier", ""),
                "password": self.credentials.get("app_password", ""),
            },
        )
        return self._use_session(self.pds.json(response))

    def _use_session(self, session: dict[str, Any]) -> dict[str, Any]:
        if not session.get("accessJwt") or not session.get("did"):
            raise TransientError("Bluesky answered the sign-in without a session")
        # The account's own PDS (its DID document's #atproto_pds service), which the
        # official client talks to after signing in through the entryway.
        for service in (session.get("didDoc") or {}).get("service") or []:
            endpoint = str(service.get("serviceEndpoint") or "").rstrip("/")
            if (
                service.get("id") == "#atproto_pds"
                and endpoint
                and endpoint != str(self.pds.client.base_url).rstrip("/")
            ):
                self._pds = self._http(endpoint)
        self._session = session
        self._session_stored = False
        # Kept with the channel's credentials (encrypted like them), so the next job
        # goes on with this session: createSession allows 300 sign-ins a day, and a
        # fetch of replies every five minutes per live post would spend them by noon.
        self.updated_credentials = {
            **self.credentials,
            "session": {k: session[k] for k in SESSION_KEYS if session.get(k)},
        }
        return session

    @property
    def session(self) -> dict[str, Any]:
        if self._session is None:
            stored = self.credentials.get("session")
            if isinstance(stored, dict) and stored.get("accessJwt") and stored.get("did"):
                self._session, self._session_stored = dict(stored), True
                return self._session
        return self._session or self._sign_in()

    def _renew(self) -> None:
        """Refresh the session; when the refresh token is refused too, sign in again
        with the app password (the credential the channel keeps)."""
        try:
            response = self.pds.call(
                "POST",
                "/xrpc/com.atproto.server.refreshSession",
                headers={"Authorization": f"Bearer {self.session.get('refreshJwt', '')}"},
            )
            session = self.pds.json(response)
            session.setdefault("did", self.session["did"])
            self._use_session({**self.session, **session})
        except CredentialError:
            self._session = None
            self._sign_in()

    def _xrpc(
        self, method: str, nsid: str, *, creates: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """A call to the PDS as the account; an expired token renews the session once."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.session['accessJwt']}"}
            try:
                response = self.pds.call(
                    method, f"/xrpc/{nsid}", creates=creates, headers=headers, **kwargs
                )
            except _TokenExpired:
                # Refused before it was carried out, so repeating it is safe.
                if attempt == 2:
                    raise CredentialError("Bluesky keeps refusing the renewed session") from None
                self._renew()
                continue
            except CredentialError:
                if attempt == 2 or not self._session_stored:
                    raise
                # A stored session the PDS no longer knows (revoked, signed by an old
                # key): the app password is what the channel really holds.
                self._session = None
                self._sign_in()
                continue
            return self.pds.json(response, creates=creates) if response.content else {}
        raise AssertionError("unreachable")

    def _service_token(self, aud: str, lxm: str) -> str:
        body = self._xrpc(
            "GET",
            "com.atproto.server.getServiceAuth",
            params={"aud": aud, "lxm": lxm, "exp": int(self.now()) + SERVICE_TOKEN_S},
        )
        if not body.get("token"):
            raise TransientError("Bluesky answered the service-auth request without a token")
        return str(body["token"])

    def _pds_aud(self) -> str:
        host = urlsplit(str(self.pds.client.base_url)).netloc
        return "did:web:" + host.replace(":", "%3A")  # did:web encodes a port's colon

    # -- the interface ---------------------------------------------------------------

    def test_connection(self) -> str:
        return "@" + str(self.session.get("handle") or self.settings.get("handle") or "?")

    def publish(self, draft: Draft, steps: Steps) -> Published:
        self._check_text(draft.text)
        state = steps.state
        if state.get("bluesky_uri"):
            return self._stored(state)
        if state.get("bluesky_sent"):
            found = self.find(draft, steps)
            if found is not None:
                return found
        record: dict[str, Any] = {"$type": POST, "text": draft.text}
        if draft.media is not None:
            blob = self._upload(draft, steps)
            record["embed"] = {
                "$type": "app.bsky.embed.video",
                "video": blob,
                "alt": draft.alt,
                "aspectRatio": {"width": draft.media.width, "height": draft.media.height},
            }
        if not state.get("bluesky_rkey"):
            steps.save(
                "record_key",
                bluesky_rkey=next_tid(self.now()),
                bluesky_created_at=self._iso_now(),
            )
        state = steps.state
        record["createdAt"] = state["bluesky_created_at"]
        return self._create(record, state["bluesky_rkey"], steps)

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        state = steps.state
        if state.get("bluesky_uri"):
            return self._stored(state)
        rkey = state.get("bluesky_rkey")
        if not rkey or not state.get("bluesky_sent"):
            return None  # createRecord was never sent
        try:
            record = self._xrpc(
                "GET",
                "com.atproto.repo.getRecord",
                params={"repo": self.session["did"], "collection": POST, "rkey": rkey},
            )
        except _NotFound:
            return None
        if not record.get("uri"):
            raise OutcomeUnknown("Bluesky answered the record lookup without the record")
        steps.save("posted", bluesky_uri=record["uri"], bluesky_cid=record.get("cid"))
        return self._stored(steps.state)

    def update(self, published: Published, text: str) -> Published:
        self._check_text(text)
        parent = self._post_ref(published)
        root = published.extra.get("root") or parent
        record = {
            "$type": POST,
            "text": text,
            "createdAt": self._iso_now(),
            "reply": {"root": root, "parent": parent},
        }
        reply = self._create(record, next_tid(self.now()), None)
        return Published(reply.remote_id, reply.url, {**reply.extra, "root": root})

    def delete(self, published: Published) -> None:
        rkey = str(published.extra.get("rkey") or published.remote_id.rsplit("/", 1)[-1])
        with contextlib.suppress(_NotFound):  # already gone
            self._xrpc(
                "POST",
                "com.atproto.repo.deleteRecord",
                json={"repo": self.session["did"], "collection": POST, "rkey": rkey},
            )

    # -- replies ---------------------------------------------------------------------

    def list_replies(self, published: Published, cursor: Any) -> ReplyPage:
        """Every reply in the post's thread (replies to replies too) not by the account,
        oldest first. The cursor is the newest ``indexedAt`` listed and the uris listed
        at that instant: a thread has no paging token, so the next call skips what is
        not newer."""
        try:
            thread, hidden = self._thread(self._post_uri(published))
        except _NotFound:
            raise RejectedError("the post is no longer on Bluesky") from None
        if thread.get("notFound") or not isinstance(thread.get("post"), dict):
            raise RejectedError("the post is no longer on Bluesky")
        views, deeper = _descendants(thread)
        for _ in range(REPLY_CONTINUATIONS):
            if not deeper:
                break
            try:
                below, _gate = self._thread(deeper.pop(0))
            except _NotFound:
                continue  # deleted since the first answer
            more_views, more_deeper = _descendants(below)
            views += more_views
            deeper += more_deeper
        since, seen = _cursor(cursor)
        own = self.session["did"]
        new: list[tuple[datetime, Reply]] = []
        listed: set[str] = set()
        for view in views:
            found = _reply(view, hidden)
            if found is None or found[1].remote_id in listed:
                continue
            at, reply = found
            listed.add(reply.remote_id)
            if (view.get("author") or {}).get("did") == own:
                continue  # the account's own updates and answers
            if since is not None and (at < since or (at == since and reply.remote_id in seen)):
                continue
            new.append((at, reply))
        new.sort(key=lambda item: (item[0], item[1].remote_id))
        page = new[:REPLY_PAGE]
        if not page:
            return ReplyPage(replies=[], cursor=cursor, more=False)
        last = page[-1][0]
        at_last = [reply.remote_id for at, reply in page if at == last]
        if since == last:
            at_last = sorted(seen | set(at_last))
        return ReplyPage(
            replies=[reply for _, reply in page],
            cursor={"at": last.isoformat(), "uris": at_last},
            more=len(new) > REPLY_PAGE,
        )

    def _thread(self, uri: str) -> tuple[dict[str, Any], set[str]]:
        """The thread under ``uri`` and the replies its threadgate hides (the answer's
        own ``threadgate``, or the one on the root's postView: both are in the
        lexicons)."""
        body = self._xrpc(
            "GET",
            "app.bsky.feed.getPostThread",
            params={"uri": uri, "depth": REPLY_DEPTH, "parentHeight": 0},
        )
        thread = body.get("thread")
        if not isinstance(thread, dict):
            raise TransientError("Bluesky answered the thread without one")
        root = thread.get("post")
        return thread, _hidden_replies(body) | _hidden_replies(
            root if isinstance(root, dict) else {}
        )

    def look_up_replies(self, published: Published, remote_ids: list[str]) -> dict[str, Reply]:
        """getPosts: a post deleted, or by an account that blocks the agency's (or is
        blocked by it), is left out of the answer. ``hidden`` is not known here (the
        threadgate comes with the post's thread, not with its replies)."""
        found: dict[str, Reply] = {}
        for uri, view in self._posts(remote_ids).items():
            reply = _reply(view, set())
            if reply is not None:
                found[uri] = reply[1]
        return found

    def hide_reply(self, published: Published, remote_id: str) -> None:
        """Add the reply to the post's threadgate ``hiddenReplies``, keeping what the
        record held (its reply rules, the replies hidden before), as the Bluesky app
        does. A reply already gone takes none of the 50 places."""
        if remote_id not in self._posts([remote_id]):
            return
        uri = self._post_uri(published)
        rkey = uri.rsplit("/", 1)[-1]  # threadgate.json: the key of the post it gates
        did = self.session["did"]
        try:
            current: dict[str, Any] | None = self._xrpc(
                "GET",
                "com.atproto.repo.getRecord",
                params={"repo": did, "collection": THREADGATE, "rkey": rkey},
            )
        except _NotFound:
            current = None
        value = (current or {}).get("value")
        value = dict(value) if isinstance(value, dict) else {}
        hidden = [str(u) for u in value.get("hiddenReplies") or [] if isinstance(u, str)]
        if remote_id in hidden:
            return
        if len(hidden) >= MAX_HIDDEN_REPLIES:
            raise RejectedError(
                f"Bluesky hides at most {MAX_HIDDEN_REPLIES} replies under a post and this "
                f"post has {len(hidden)} hidden already: the reply is still shown"
            )
        # "allow" stays as it was: absent means anyone may reply, [] means nobody may.
        record = {
            **value,
            "$type": THREADGATE,
            "post": uri,
            "createdAt": value.get("createdAt") or self._iso_now(),
            "hiddenReplies": [*hidden, remote_id],
        }
        write: dict[str, Any] = {"repo": did, "collection": THREADGATE, "rkey": rkey}
        if current and current.get("cid"):
            # Compare and swap: a reply hidden from the app meanwhile is not overwritten.
            write["swapRecord"] = current["cid"]
        self._xrpc("POST", "com.atproto.repo.putRecord", json={**write, "record": record})

    def answer_reply(self, published: Published, remote_id: str, text: str) -> Published:
        """A reply from the account under the reply, at a record key derived from the
        reply's uri: a second attempt finds the first answer instead of posting again."""
        self._check_text(text)
        view = self._posts([remote_id]).get(remote_id)
        if view is None or not view.get("cid"):
            raise RejectedError("the reply is no longer on Bluesky: there is nothing to answer")
        rkey = self._answer_key(remote_id, view)
        try:
            existing = self._xrpc(
                "GET",
                "com.atproto.repo.getRecord",
                params={"repo": self.session["did"], "collection": POST, "rkey": rkey},
            )
        except _NotFound:
            existing = None
        root = published.extra.get("root") or self._post_ref(published)
        if existing and existing.get("uri"):
            value = existing.get("value") or {}
            parent = ((value.get("reply") or {}).get("parent") or {}).get("uri")
            if parent == remote_id:
                answer = self._published(str(existing["uri"]), existing.get("cid"))
                return Published(answer.remote_id, answer.url, {**answer.extra, "root": root})
            rkey = next_tid(self.now())  # another record at that key: not ours to reuse
        record = {
            "$type": POST,
            "text": text,
            "createdAt": self._iso_now(),
            "reply": {"root": root, "parent": {"uri": remote_id, "cid": view["cid"]}},
        }
        answer = self._create(record, rkey, None)
        return Published(answer.remote_id, answer.url, {**answer.extra, "root": root})

    def _post_uri(self, published: Published) -> str:
        return str(published.extra.get("uri") or published.remote_id)

    def _post_ref(self, published: Published) -> dict[str, Any]:
        """The post as a strongRef (a reply names the exact version of its parent)."""
        uri = self._post_uri(published)
        cid = published.extra.get("cid")
        if not cid:
            cid = self._xrpc(
                "GET",
                "com.atproto.repo.getRecord",
                params={
                    "repo": self.session["did"],
                    "collection": POST,
                    "rkey": uri.rsplit("/", 1)[-1],
                },
            ).get("cid")
        return {"uri": uri, "cid": cid}

    def _posts(self, uris: list[str]) -> dict[str, dict[str, Any]]:
        """The postViews of those of ``uris`` still visible; a missing one is gone."""
        if len(uris) > MAX_LOOKUP:
            raise ValueError(f"Bluesky looks up at most {MAX_LOOKUP} posts a call")
        if not uris:
            return {}
        body = self._xrpc("GET", "app.bsky.feed.getPosts", params={"uris": list(uris)})
        posts = body.get("posts")
        if not isinstance(posts, list):
            raise TransientError("Bluesky answered the lookup without its posts")
        wanted = set(uris)
        return {
            str(view["uri"]): view
            for view in posts
            if isinstance(view, dict) and view.get("uri") in wanted
        }

    def _answer_key(self, reply_uri: str, view: dict[str, Any]) -> str:
        """A TID made of the reply's own time (its key's, or when Bluesky indexed it)
        and ten bits of its uri's hash: the same for every attempt at answering it."""
        clock_id = int.from_bytes(hashlib.sha256(reply_uri.encode()).digest()[:2]) & 0x3FF
        key = reply_uri.rsplit("/", 1)[-1]
        if _TID.match(key):
            return _tid(_tid_value(key) >> 10, clock_id)
        at = _parse_time(view.get("indexedAt")) or datetime.fromtimestamp(0, UTC)
        return _tid(int(at.timestamp() * 1_000_000), clock_id)

    # -- steps -----------------------------------------------------------------------

    def _check_text(self, text: str) -> None:
        graphemes, size = count_graphemes(text), len(text.encode())
        if graphemes > MAX_GRAPHEMES:
            raise RejectedError(
                f"the caption has {graphemes} characters; Bluesky allows {MAX_GRAPHEMES}"
            )
        if size > MAX_BYTES:
            raise RejectedError(f"the caption takes {size} bytes; Bluesky allows {MAX_BYTES}")

    def _iso_now(self) -> str:
        return (
            datetime.fromtimestamp(self.now(), UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    def _upload(self, draft: Draft, steps: Steps) -> dict[str, Any]:
        assert draft.media is not None
        state = steps.state
        if state.get("bluesky_blob"):
            return dict(state["bluesky_blob"])
        job_id = state.get("bluesky_job_id")
        if not job_id:
            if self.settings.get("check_upload_limits", True):
                self._check_upload_limits(draft.media.size)
            token = self._service_token(self._pds_aud(), "com.atproto.repo.uploadBlob")
            response = self.video.call(
                "POST",
                "/xrpc/app.bsky.video.uploadVideo",
                params={"did": self.session["did"], "name": draft.media.path.name},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": draft.media.content_type,
                },
                content=draft.media.path.read_bytes(),
                # A video the service already has: 409 already_exists with its blob
                # (the status is not documented; the tutorial handles the error name).
                accept=(409,),
            )
            job = self._job(self.video.json(response))
            if response.status_code == 409 and job.get("error") != "already_exists":
                raise self.video.error_for(response, creates=False)
            if job.get("blob"):
                return self._blob_ready(job["blob"], steps)
            job_id = job.get("jobId")
            if not job_id:
                raise TransientError("Bluesky accepted the video without a job id")
            steps.save("video_processing", bluesky_job_id=str(job_id))
        return self._wait_for_job(str(job_id), steps)

    def _check_upload_limits(self, size: int) -> None:
        token = self._service_token(
            str(self.settings.get("video_aud") or DEFAULT_VIDEO_AUD),
            "app.bsky.video.getUploadLimits",
        )
        limits = self.video.json(
            self.video.call(
                "GET",
                "/xrpc/app.bsky.video.getUploadLimits",
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        if limits.get("canUpload") is False:
            reason = limits.get("message") or limits.get("error") or "no uploads left today"
            text = f"Bluesky will not take a video from this account now: {reason}"
            # The daily allowance (videos or bytes, getUploadLimits' remainingDaily*)
            # frees again; anything else (an unverified e-mail, a suspended account)
            # needs a person. The answer gives no reset time: the engine looks again.
            if limits.get("error") == "DailyLimitExceeded" or any(
                limits.get(key) == 0 for key in ("remainingDailyVideos", "remainingDailyBytes")
            ):
                raise CapReached(text)
            raise RejectedError(text)
        left = limits.get("remainingDailyBytes")
        if isinstance(left, int) and left < size:
            # It would be refused part way: it waits for the allowance instead.
            raise CapReached(
                f"Bluesky allows {left} more bytes of video today and this one is {size}"
            )

    @staticmethod
    def _job(body: dict[str, Any]) -> dict[str, Any]:
        # The lexicon wraps it as {"jobStatus": {...}}; the tutorial reads the upload's
        # answer as the job status itself. Both are accepted.
        inner = body.get("jobStatus")
        return dict(inner) if isinstance(inner, dict) else body

    def _blob_ready(self, blob: Any, steps: Steps) -> dict[str, Any]:
        if not isinstance(blob, dict):
            raise TransientError("Bluesky answered the video with a malformed blob")
        steps.save("video_ready", bluesky_blob=blob)
        return blob

    def _wait_for_job(self, job_id: str, steps: Steps) -> dict[str, Any]:
        budget = self._setting("processing_timeout_s", PROCESSING_TIMEOUT_S)
        interval = self._setting("poll_interval_s", POLL_INTERVAL_S)
        waited = 0.0
        while True:
            response = self.video.call(
                "GET", "/xrpc/app.bsky.video.getJobStatus", params={"jobId": job_id}
            )
            job = self._job(self.video.json(response))
            if job.get("blob") and (
                job.get("state") == COMPLETED or job.get("error") == "already_exists"
            ):
                return self._blob_ready(job["blob"], steps)
            if job.get("state") == FAILED:
                code = job.get("failureCode") or job.get("error") or "failed"
                message = f": {job['message']}" if job.get("message") else ""
                raise RejectedError(f"Bluesky could not process the video ({code}){message}")
            if waited >= budget:
                raise TransientError(
                    f"Bluesky was still processing the video after {int(waited)} s"
                )
            self.sleep(interval)
            waited += interval

    def _create(self, record: dict[str, Any], rkey: str, steps: Steps | None) -> Published:
        if facets := facets_for(record["text"]):
            record["facets"] = facets
        if steps is not None:
            steps.save("posting", bluesky_sent=True)
        body = self._xrpc(
            "POST",
            "com.atproto.repo.createRecord",
            creates=True,
            json={"repo": self.session["did"], "collection": POST, "rkey": rkey, "record": record},
        )
        if not body.get("uri"):
            raise OutcomeUnknown("Bluesky answered the post without its uri")
        if steps is not None:
            steps.save("posted", bluesky_uri=body["uri"], bluesky_cid=body.get("cid"))
        return self._published(str(body["uri"]), body.get("cid"))

    def _stored(self, state: Any) -> Published:
        return self._published(str(state["bluesky_uri"]), state.get("bluesky_cid"))

    def _published(self, uri: str, cid: Any) -> Published:
        rkey = uri.rsplit("/", 1)[-1]
        who = (
            (self._session or {}).get("handle") or self.settings.get("handle") or uri.split("/")[2]
        )
        return Published(
            uri,
            f"https://bsky.app/profile/{who}/post/{rkey}",
            {"uri": uri, "cid": cid, "rkey": rkey},
        )


# -- reading threads ----------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _cursor(cursor: Any) -> tuple[datetime | None, set[str]]:
    """The stored cursor read back; one that cannot be read starts from the beginning
    (the engine files a reply seen twice once)."""
    if not isinstance(cursor, dict):
        return None, set()
    uris = cursor.get("uris")
    return _parse_time(cursor.get("at")), {u for u in uris or [] if isinstance(u, str)}


def _hidden_replies(holder: dict[str, Any]) -> set[str]:
    """The uris a threadgateView hides (``threadgate.record.hiddenReplies``)."""
    gate = holder.get("threadgate")
    record = gate.get("record") if isinstance(gate, dict) else None
    hidden = record.get("hiddenReplies") if isinstance(record, dict) else None
    return {u for u in hidden or [] if isinstance(u, str)}


def _descendants(thread: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The postViews of every threadViewPost under the root, walked without recursion,
    and the uris of the deepest ones whose replies the answer left out (``replyCount``
    above zero, no replies shown: the depth asked for ends there). ``notFoundPost`` and
    ``blockedPost`` carry no text and no replies: they are passed over."""
    views: list[dict[str, Any]] = []
    deeper: list[str] = []
    pending = [(thread, 0)]
    while pending:
        node, level = pending.pop()
        replies = node.get("replies")
        for child in replies if isinstance(replies, list) else []:
            if not isinstance(child, dict) or not isinstance(child.get("post"), dict):
                continue
            view = child["post"]
            views.append(view)
            pending.append((child, level + 1))
            count = view.get("replyCount")
            if (
                level + 1 >= REPLY_DEPTH
                and not child.get("replies")
                and isinstance(count, int)
                and count > 0
                and isinstance(view.get("uri"), str)
            ):
                deeper.append(view["uri"])
    return views, deeper


def _reply(view: dict[str, Any], hidden: set[str]) -> tuple[datetime, Reply] | None:
    """A postView as a reply, with the time it is ordered by (``indexedAt``); ``None``
    when it lacks what a reply needs."""
    uri = view.get("uri")
    indexed = _parse_time(view.get("indexedAt"))
    author = view.get("author")
    if not isinstance(uri, str) or not uri.startswith("at://") or indexed is None:
        return None
    if not isinstance(author, dict):
        return None
    handle = author.get("handle")
    who = str(handle if handle and handle != INVALID_HANDLE else author.get("did") or "")
    record = view.get("record")
    if not isinstance(record, dict):
        record = {}
    text = record.get("text")
    # createdAt is the author's claim; like the AppView's own sorting, one later than
    # the indexing is not believed.
    created = _parse_time(record.get("createdAt"))
    return indexed, Reply(
        remote_id=uri,
        text=text if isinstance(text, str) else "",
        author=who,
        created_at=min(created, indexed) if created is not None else indexed,
        url=f"https://bsky.app/profile/{who}/post/{uri.rsplit('/', 1)[-1]}" if who else "",
        hidden=uri in hidden,
    )
