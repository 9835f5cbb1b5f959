"""A Bluesky PDS and video service on loopback (one server plays both: their XRPC
method names do not overlap).

Follows /work/shared/networks.md section 6, which cites bluesky-social/atproto lexicons
(``com.atproto.server.createSession``/``refreshSession``/``getServiceAuth``,
``com.atproto.repo.createRecord``/``getRecord``/``deleteRecord``,
``app.bsky.video.uploadVideo``/``getJobStatus``/``getUploadLimits`` and
``app.bsky.video.defs`` jobStatus with its states and failure codes,
``app.bsky.feed.post`` text ≤300 graphemes), bluesky-social/bsky-docs
``docs/tutorials/video.mdx`` (service token with ``aud=did:web:<PDS host>`` and
``lxm=com.atproto.repo.uploadBlob``; ``already_exists`` with the blob),
``packages/xrpc-server/src/rate-limiter-http.ts`` (429 with ``RateLimit-Limit``,
``-Remaining``, ``-Reset`` in epoch seconds, ``-Policy``) and
``packages/pds/src/auth-verifier.ts`` (400 ``ExpiredToken``).

Replies (the fake plays the AppView too, which the PDS proxies ``app.bsky.*`` queries
to): ``app.bsky.feed.getPostThread`` (``uri``, ``depth`` 0–1000, ``parentHeight``
0–1000; the whole tree in one answer, no cursor, ``threadViewPost`` nodes whose
``replies`` may hold ``notFoundPost`` and ``blockedPost``; 400 ``NotFound`` for a post
it does not have), ``app.bsky.feed.getPosts`` (``uris`` at most 25; the posts it can
show, the others left out), ``app.bsky.feed.defs`` postView (``uri``, ``cid``,
``author`` {did, handle}, ``record``, ``indexedAt``; ``threadgate`` on the gated post,
and beside the thread in getPostThread's answer),
``app.bsky.feed.threadgate`` (rkey = the post's, ``post``, ``createdAt``, ``allow`` at
most 5, ``hiddenReplies`` at most 50) written by ``com.atproto.repo.putRecord`` with
``swapRecord``, all from the lexicons of bluesky-social/atproto; a write to another
account's repository is refused with 401 and a stale ``swapRecord`` with 400
``InvalidSwap`` (``packages/pds/src/api/com/atproto/repo/putRecord.ts``).

Unverified there, so switches here: the HTTP status of ``already_exists`` (409 here),
what a second createRecord at an existing key answers (400 InvalidRequest here), and the
order of a node's replies (newest first here, as the AppView's first thread query
ordered them: the adapter must not rely on it).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import regex
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.portal.publishing.fakes import FakeServer, garbage, json_response

IDENTIFIER = "tattletale.bsky.social"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
DID = "did:plc:tattletale0000000000000"
RESET_EPOCH = 1_796_185_500  # 2026-12-02 04:25:00 UTC
PROGRESS = [
    "JOB_STATE_CREATED",
    "JOB_STATE_ENCODING",
    "JOB_STATE_ENCODED",
    "JOB_STATE_SCANNING",
    "JOB_STATE_SCANNED",
    "JOB_STATE_UPLOADING",
    "JOB_STATE_UPLOADED",
    "JOB_STATE_COMPLETED",
]
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
#: When the fake indexes its first post; each later one a millisecond after the last.
INDEX_START = datetime(2026, 12, 2, 4, 20, tzinfo=UTC)
_S32 = "234567abcdefghijklmnopqrstuvwxyz"


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tid_at(at: datetime, clock_id: int = 0) -> str:
    n = (int(at.timestamp() * 1_000_000) << 10) | clock_id
    return "".join(_S32[(n >> (5 * i)) & 31] for i in reversed(range(13)))


def xrpc(name: str) -> str:
    return f"/xrpc/{name}"


@dataclass
class FakeBluesky(FakeServer):
    url_map: Map = field(
        default_factory=lambda: Map(
            [
                Rule(
                    xrpc("com.atproto.server.createSession"),
                    endpoint="create_session",
                    methods=["POST"],
                ),
                Rule(
                    xrpc("com.atproto.server.refreshSession"),
                    endpoint="refresh_session",
                    methods=["POST"],
                ),
                Rule(
                    xrpc("com.atproto.server.getServiceAuth"),
                    endpoint="service_auth",
                    methods=["GET"],
                ),
                Rule(
                    xrpc("app.bsky.video.getUploadLimits"),
                    endpoint="upload_limits",
                    methods=["GET"],
                ),
                Rule(xrpc("app.bsky.video.uploadVideo"), endpoint="upload_video", methods=["POST"]),
                Rule(xrpc("app.bsky.video.getJobStatus"), endpoint="job_status", methods=["GET"]),
                Rule(
                    xrpc("com.atproto.repo.createRecord"),
                    endpoint="create_record",
                    methods=["POST"],
                ),
                Rule(xrpc("com.atproto.repo.getRecord"), endpoint="get_record", methods=["GET"]),
                Rule(
                    xrpc("com.atproto.repo.deleteRecord"),
                    endpoint="delete_record",
                    methods=["POST"],
                ),
                Rule(xrpc("com.atproto.repo.putRecord"), endpoint="put_record", methods=["POST"]),
                Rule(
                    xrpc("app.bsky.feed.getPostThread"),
                    endpoint="get_post_thread",
                    methods=["GET"],
                ),
                Rule(xrpc("app.bsky.feed.getPosts"), endpoint="get_posts", methods=["GET"]),
            ]
        )
    )
    #: getJobStatus answers that pass before a job is COMPLETED.
    processing_polls: int = 3
    #: (failureCode, message) a job fails with, when set.
    processing_failure: tuple[str, str] | None = None
    can_upload: bool = True
    remaining_daily_bytes: int = 10**10
    #: Answer a rate limit with Retry-After only (the client honours it too).
    retry_after_only: bool = False
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    service_tokens: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha256 -> blob
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # rkey -> record
    #: Other accounts' posts (their repositories, as the AppView indexed them): uri ->
    #: {"uri", "cid", "author": {"did", "handle"}, "record"}.
    others: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: uri -> indexedAt, for every post the AppView has seen (the account's too).
    indexed: dict[str, str] = field(default_factory=dict)
    #: Posts the account cannot see (a block either way): shown as blockedPost.
    blocked: set[str] = field(default_factory=set)
    #: Posts deleted while replies hung under them: shown as notFoundPost.
    tombstones: dict[str, str] = field(default_factory=dict)  # uri -> parent uri
    threadgates: dict[str, dict[str, Any]] = field(default_factory=dict)  # rkey -> record
    _n: Any = field(default_factory=itertools.count)
    _indexed_n: Any = field(default_factory=itertools.count)

    def expire_sessions(self) -> None:
        """Every access token issued so far now answers 400 ExpiredToken."""
        self.expired |= self.access_tokens

    def fault_response(self, fault: str) -> Response:
        if fault == "unauthorized":
            return json_response(
                {"error": "AuthenticationRequired", "message": "Authentication Required"}, 401
            )
        if fault == "rate_limited":
            headers = (
                {"Retry-After": "120"}
                if self.retry_after_only
                else {
                    "RateLimit-Limit": "3000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(RESET_EPOCH),
                    "RateLimit-Policy": "3000;w=300",
                }
            )
            return json_response(
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, 429, headers
            )
        if fault == "server_error":
            return json_response(
                {"error": "InternalServerError", "message": "Internal Server Error"}, 500
            )
        return garbage()

    def _error(self, name: str, message: str, status: int = 400) -> Response:
        return json_response({"error": name, "message": message}, status)

    def _bearer(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""

    def _check_access(self, request: Request) -> Response | None:
        token = self._bearer(request)
        if token in self.expired:
            return self._error("ExpiredToken", "Token has expired")
        if token not in self.access_tokens:
            return self._error("AuthenticationRequired", "Authentication Required", 401)
        return None

    def _session(self) -> dict[str, Any]:
        n = next(self._n)
        access, refresh = f"access-{n}", f"refresh-{n}"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": IDENTIFIER,
            "did": DID,
            "didDoc": {
                "id": DID,
                "service": [
                    {
                        "id": "#atproto_pds",
                        "type": "AtprotoPersonalDataServer",
                        "serviceEndpoint": self.url,
                    }
                ],
            },
        }

    @property
    def pds_aud(self) -> str:
        return "did:web:" + self.url.removeprefix("http://").replace(":", "%3A")

    # -- server ----------------------------------------------------------------------

    def on_create_session(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if body.get("identifier") != IDENTIFIER or body.get("password") != APP_PASSWORD:
            return self._error("AuthenticationRequired", "Invalid identifier or password", 401)
        return json_response(self._session())

    def on_refresh_session(self, request: Request) -> Response:
        token = self._bearer(request)
        if token not in self.refresh_tokens:
            return self._error("ExpiredToken", "Token has expired")
        self.refresh_tokens.discard(token)
        session = self._session()
        session.pop("didDoc")
        return json_response(session)

    def on_service_auth(self, request: Request) -> Response:
        if error := self._check_access(request):
            return error
        token = f"service-{next(self._n)}"
        self.service_tokens[token] = (
            request.args.get("aud", ""),
            request.args.get("lxm", ""),
            int(request.args.get("exp", "0")),
        )
        return json_response({"token": token})

    def _check_service(self, request: Request, aud: str, lxm: str) -> Response | None:
        granted = self.service_tokens.get(self._bearer(request))
        if granted is None or granted[:2] != (aud, lxm):
            return self._error("AuthenticationRequired", "Invalid service token", 401)
        return None

    # -- video service ---------------------------------------------------------------

    def on_upload_limits(self, request: Request) -> Response:
        if error := self._check_service(
            request, "did:web:video.bsky.app", "app.bsky.video.getUploadLimits"
        ):
            return error
        if not self.can_upload:
            return json_response(
                {
                    "canUpload": False,
                    "remainingDailyVideos": 0,
                    "remainingDailyBytes": 0,
                    "message": "You have reached your daily upload limit",
                    "error": "DailyLimitExceeded",
                }
            )
        return json_response(
            {
                "canUpload": True,
                "remainingDailyVideos": 25,
                "remainingDailyBytes": self.remaining_daily_bytes,
            }
        )

    def on_upload_video(self, request: Request) -> Response:
        if error := self._check_service(request, self.pds_aud, "com.atproto.repo.uploadBlob"):
            return error
        if request.args.get("did") != DID or not request.args.get("name"):
            return self._error("InvalidRequest", "did and name are required")
        if request.content_type != "video/mp4":
            return self._error("InvalidRequest", "unsupported content type")
        data = request.get_data()
        digest = hashlib.sha256(data).hexdigest()
        job_id = f"job-{next(self._n)}"
        if digest in self.blobs:
            existing = {
                "jobId": job_id,
                "did": DID,
                "state": "JOB_STATE_COMPLETED",
                "error": "already_exists",
                "message": "Video already processed",
                "blob": self.blobs[digest],
            }
            return json_response(existing, 409)
        self.jobs[job_id] = {
            "jobId": job_id,
            "did": DID,
            "state": PROGRESS[0],
            "progress": 0,
            "polls_left": self.processing_polls,
            "digest": digest,
            "size": len(data),
        }
        return json_response({"jobStatus": self._job(job_id)})

    def _job(self, job_id: str) -> dict[str, Any]:
        return {
            k: v for k, v in self.jobs[job_id].items() if k not in {"polls_left", "digest", "size"}
        }

    def on_job_status(self, request: Request) -> Response:
        job = self.jobs.get(request.args.get("jobId", ""))
        if job is None:
            return self._error("NotFound", "job not found", 404)
        if self.processing_failure:
            code, message = self.processing_failure
            job.update(state="JOB_STATE_FAILED", failureCode=code, error=code, message=message)
        elif job["polls_left"] > 0:
            job["polls_left"] -= 1
            job["state"] = PROGRESS[
                min(len(PROGRESS) - 2, self.processing_polls - job["polls_left"])
            ]
        else:
            blob = {
                "$type": "blob",
                "ref": {"$link": "bafkrei" + job["digest"][:52]},
                "mimeType": "video/mp4",
                "size": job["size"],
            }
            self.blobs[job["digest"]] = blob
            job.update(state="JOB_STATE_COMPLETED", progress=100, blob=blob)
        return json_response({"jobStatus": self._job(job["jobId"])})

    # -- repository ------------------------------------------------------------------

    def on_create_record(self, request: Request) -> Response:
        if error := self._check_access(request):
            return error
        body = request.get_json(silent=True) or {}
        record, rkey = body.get("record") or {}, body.get("rkey")
        if body.get("repo") != DID or body.get("collection") != "app.bsky.feed.post":
            return self._error("InvalidRequest", "wrong repo or collection")
        if not rkey or not TID.match(rkey):
            return self._error("InvalidRequest", "Invalid record key")
        if rkey in self.records:
            return self._error("InvalidRequest", "Record already exists")
        if not record.get("text") or not record.get("createdAt"):
            return self._error(
                "InvalidRequest", "Invalid app.bsky.feed.post record: text and createdAt required"
            )
        if len(regex.findall(r"\X", record["text"])) > 300:
            return self._error(
                "InvalidRequest",
                "Invalid app.bsky.feed.post record: "
                "Record/text must not be longer than 300 graphemes",
            )
        video = (record.get("embed") or {}).get("video")
        if video is not None and video not in self.blobs.values():
            return self._error("InvalidRequest", "Could not find blob")
        reply = record.get("reply")
        if reply is not None:
            for part in ("root", "parent"):
                ref = reply.get(part) if isinstance(reply, dict) else None
                if not isinstance(ref, dict) or not all(
                    isinstance(ref.get(k), str) and ref.get(k) for k in ("uri", "cid")
                ):
                    return self._error(
                        "InvalidRequest",
                        f"Invalid app.bsky.feed.post record: Record/reply/{part} must be a "
                        "strongRef (uri and cid)",
                    )
        uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
        cid = (
            "bafyrei" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:52]
        )
        self.records[rkey] = {"uri": uri, "cid": cid, "value": record}
        self.indexed[uri] = self._next_indexed()
        return json_response(
            {
                "uri": uri,
                "cid": cid,
                "commit": {"cid": "bafyreicommit", "rev": rkey},
                "validationStatus": "valid",
            }
        )

    def on_get_record(self, request: Request) -> Response:
        rkey = request.args.get("rkey", "")
        collection = request.args.get("collection") or POST
        stored = self.threadgates if collection == THREADGATE else self.records
        if request.args.get("repo") != DID or rkey not in stored:
            return self._error(
                "RecordNotFound", f"Could not locate record: at://{DID}/{collection}/{rkey}"
            )
        return json_response(stored[rkey])

    def on_delete_record(self, request: Request) -> Response:
        if error := self._check_access(request):
            return error
        body = request.get_json(silent=True) or {}
        if body.get("repo") != DID:
            return self._error("AuthenticationRequired", "Authentication Required", 401)
        self.records.pop(str(body.get("rkey")), None)
        return json_response({"commit": {"cid": "bafyreicommit", "rev": "x"}})

    def on_put_record(self, request: Request) -> Response:
        if error := self._check_access(request):
            return error
        body = request.get_json(silent=True) or {}
        if body.get("repo") != DID:
            # Only the account's own repository is written to: another's reply is not.
            return self._error("AuthenticationRequired", "Authentication Required", 401)
        rkey, record = str(body.get("rkey") or ""), body.get("record")
        if body.get("collection") != THREADGATE:
            return self._error("InvalidRequest", "the fake only rewrites threadgates")
        post = self.records.get(rkey)
        if not isinstance(record, dict) or post is None or record.get("post") != post["uri"]:
            return self._error(
                "InvalidRequest",
                "Invalid app.bsky.feed.threadgate record: the key and post must be the post's",
            )
        if record.get("$type") != THREADGATE or not record.get("createdAt"):
            return self._error(
                "InvalidRequest", "Invalid app.bsky.feed.threadgate record: createdAt required"
            )
        hidden = record.get("hiddenReplies") or []
        if not isinstance(hidden, list) or len(hidden) > 50:
            return self._error(
                "InvalidRequest",
                "Invalid app.bsky.feed.threadgate record: "
                "Record/hiddenReplies must not have more than 50 elements",
            )
        if not all(isinstance(u, str) and u.startswith("at://") for u in hidden):
            return self._error(
                "InvalidRequest",
                "Invalid app.bsky.feed.threadgate record: Record/hiddenReplies must be at-uris",
            )
        if len(record.get("allow") or []) > 5:
            return self._error(
                "InvalidRequest",
                "Invalid app.bsky.feed.threadgate record: "
                "Record/allow must not have more than 5 elements",
            )
        current = self.threadgates.get(rkey)
        if "swapRecord" in body and body["swapRecord"] != (current or {}).get("cid"):
            return self._error("InvalidSwap", f"Record was at {(current or {}).get('cid')}")
        uri = f"at://{DID}/{THREADGATE}/{rkey}"
        cid = (
            "bafyrei" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:52]
        )
        self.threadgates[rkey] = {"uri": uri, "cid": cid, "value": record}
        return json_response(
            {
                "uri": uri,
                "cid": cid,
                "commit": {"cid": "bafyreicommit", "rev": rkey},
                "validationStatus": "valid",
            }
        )

    # -- the AppView's side: threads and post lookups ----------------------------------

    def _next_indexed(self) -> str:
        return iso(INDEX_START + timedelta(milliseconds=next(self._indexed_n)))

    def add_reply(
        self,
        parent: str,
        text: str,
        *,
        handle: str = "neighbour.bsky.social",
        indexed_at: str | None = None,
        created_at: str | None = None,
    ) -> str:
        """Someone else's reply under ``parent`` (a uri); return its uri."""
        n = next(self._n)
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        at = indexed_at or self._next_indexed()
        rkey = tid_at(datetime.fromisoformat(at), n % 1024)
        uri = f"at://{did}/{POST}/{rkey}"
        root = self._view(parent)
        root_ref = ((root or {}).get("record") or {}).get("reply", {}).get("root")
        parent_ref = {"uri": parent, "cid": (root or {}).get("cid", "")}
        record = {
            "$type": POST,
            "text": text,
            "createdAt": created_at or at,
            "reply": {"root": root_ref or parent_ref, "parent": parent_ref},
        }
        cid = "bafyrei" + hashlib.sha256(f"{uri} {text}".encode()).hexdigest()[:52]
        self.others[uri] = {
            "uri": uri,
            "cid": cid,
            "author": {"did": did, "handle": handle},
            "record": record,
        }
        self.indexed[uri] = at
        return uri

    def rewrite_post(self, uri: str, text: str) -> None:
        """The author rewrites the record in place (putRecord at its key): Bluesky has no
        edit, and the AppView shows the new text under the same uri, with a new cid."""
        post = self.others[uri]
        post["record"] = {**post["record"], "text": text}
        post["cid"] = "bafyrei" + hashlib.sha256(f"{uri} {text}".encode()).hexdigest()[:52]

    def delete_post(self, uri: str) -> None:
        """The author deletes it; replies under it leave a notFoundPost behind."""
        view = self._view(uri)
        self.others.pop(uri, None)
        if view is not None and any(self._parent(v) == uri for v in self._all_views()):
            self.tombstones[uri] = self._parent(view) or ""

    def _all_views(self) -> list[dict[str, Any]]:
        own = [
            {
                "uri": r["uri"],
                "cid": r["cid"],
                "author": {"did": DID, "handle": IDENTIFIER},
                "record": r["value"],
            }
            for r in self.records.values()
        ]
        return own + list(self.others.values())

    def _view(self, uri: str) -> dict[str, Any] | None:
        if uri in self.others:
            return self.others[uri]
        rkey = uri.rsplit("/", 1)[-1]
        if uri.startswith(f"at://{DID}/{POST}/") and rkey in self.records:
            r = self.records[rkey]
            return {
                "uri": r["uri"],
                "cid": r["cid"],
                "author": {"did": DID, "handle": IDENTIFIER},
                "record": r["value"],
            }
        return None

    @staticmethod
    def _parent(view: dict[str, Any]) -> str | None:
        return ((view.get("record") or {}).get("reply") or {}).get("parent", {}).get("uri")

    def _post_view(self, view: dict[str, Any], replies: int = 0) -> dict[str, Any]:
        out = {
            "$type": "app.bsky.feed.defs#postView",
            **view,
            "indexedAt": self.indexed.get(view["uri"], iso(INDEX_START)),
            "replyCount": replies,
            "repostCount": 0,
            "likeCount": 0,
            "labels": [],
        }
        gate = self.threadgates.get(view["uri"].rsplit("/", 1)[-1])
        if view["author"]["did"] == DID and gate is not None:
            # defs.json threadgateView: the record under "record", not "value".
            out["threadgate"] = {
                "uri": gate["uri"],
                "cid": gate["cid"],
                "record": gate["value"],
                "lists": [],
            }
        return out

    def on_get_post_thread(self, request: Request) -> Response:
        if error := self._check_access(request):
            return error
        uri = request.args.get("uri", "")
        try:
            depth = int(request.args.get("depth", "6"))
            height = int(request.args.get("parentHeight", "80"))
        except ValueError:
            return self._error("InvalidRequest", "depth and parentHeight must be integers")
        if not 0 <= depth <= 1000 or not 0 <= height <= 1000:
            return self._error("InvalidRequest", "depth and parentHeight must be 0 to 1000")
        root = self._view(uri)
        if root is None:
            return self._error("NotFound", f"Post not found: {uri}")
        children: dict[str, list[dict[str, Any]]] = {}
        for view in self._all_views():
            parent = self._parent(view)
            if parent is not None:
                children.setdefault(parent, []).append(view)
        for gone, parent in self.tombstones.items():
            children.setdefault(parent, []).append({"uri": gone, "tombstone": True})

        def node(view: dict[str, Any], below: int) -> dict[str, Any]:
            if view.get("tombstone"):
                return {
                    "$type": "app.bsky.feed.defs#notFoundPost",
                    "uri": view["uri"],
                    "notFound": True,
                }
            if view["uri"] in self.blocked:
                return {
                    "$type": "app.bsky.feed.defs#blockedPost",
                    "uri": view["uri"],
                    "blocked": True,
                    "author": {"did": view["author"]["did"]},
                }
            out: dict[str, Any] = {
                "$type": "app.bsky.feed.defs#threadViewPost",
                "post": self._post_view(view, len(children.get(view["uri"], []))),
            }
            if below > 0:
                under = sorted(
                    children.get(view["uri"], []),
                    key=lambda v: self.indexed.get(v["uri"], ""),
                    reverse=True,
                )
                out["replies"] = [node(child, below - 1) for child in under]
            return out

        answer: dict[str, Any] = {"thread": node(root, depth)}
        gate = (answer["thread"].get("post") or {}).get("threadgate")
        if gate is not None:
            answer["threadgate"] = gate  # getPostThread.json: beside the thread, too
        return json_response(answer)

    def on_get_posts(self, request: Request) -> Response:
        if error := self._check_access(request):
            return error
        uris = request.args.getlist("uris")
        if len(uris) > 25:
            return self._error("InvalidRequest", "uris must not have more than 25 elements")
        views = [self._view(uri) for uri in uris if uri not in self.blocked]
        return json_response({"posts": [self._post_view(v) for v in views if v is not None]})
