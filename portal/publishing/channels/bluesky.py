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
"""

from __future__ import annotations

import contextlib
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
from portal.publishing.channels.connect import Connection
from portal.publishing.channels.http import Http
from portal.publishing.channels.registry import register

DEFAULT_PDS_URL = "https://bsky.social"
DEFAULT_VIDEO_URL = "https://video.bsky.app"
#: The audience of the service token for getUploadLimits (the tutorial's value).
DEFAULT_VIDEO_AUD = "did:web:video.bsky.app"
POST = "app.bsky.feed.post"
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

#: app.bsky.video.defs jobStatus states; any other value means "still in progress".
COMPLETED, FAILED = "JOB_STATE_COMPLETED", "JOB_STATE_FAILED"
_EXPIRED = {"ExpiredToken", "InvalidToken"}
_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_URL = re.compile(r"https?://[^\s]+")
_TAG = re.compile(r"(?:^|(?<=\s))#([^\s#]+)")
_TRAILING = ".,;:!?)\"'"


class _TokenExpired(CredentialError):
    """The session's access token expired: renew the session once and try again."""


class _NotFound(RejectedError):
    """The PDS has no such record (400 RecordNotFound)."""


def new_tid(now_s: float, clock_id: int) -> str:
    """A record key in the TID syntax: 53 bits of microseconds and 10 of clock id,
    base32-sortable, 13 characters."""
    return _tid(int(now_s * 1_000_000), clock_id)


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

    #: Injected by tests (a controlled clock); real time otherwise.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    now: Callable[[], float] = staticmethod(time.time)

    def __init__(self, credentials: Any, settings: Any) -> None:
        super().__init__(credentials, settings)
        self._pds: Http | None = None
        self._video: Http | None = None
        self._session: dict[str, Any] | None = None

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
        return session

    @property
    def session(self) -> dict[str, Any]:
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
        uri = str(published.extra.get("uri") or published.remote_id)
        cid = published.extra.get("cid")
        if not cid:
            # A reply names the exact version of its parent (a strongRef): ask for it.
            cid = self._xrpc(
                "GET",
                "com.atproto.repo.getRecord",
                params={
                    "repo": self.session["did"],
                    "collection": POST,
                    "rkey": uri.rsplit("/", 1)[-1],
                },
            ).get("cid")
        parent = {"uri": uri, "cid": cid}
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
                self._check_upload_limits()
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

    def _check_upload_limits(self) -> None:
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
            raise RejectedError(f"Bluesky will not take a video from this account now: {reason}")

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
