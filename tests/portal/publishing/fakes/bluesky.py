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

Unverified there, so switches here: the HTTP status of ``already_exists`` (409 here),
and what a second createRecord at an existing key answers (400 InvalidRequest here).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
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
            ]
        )
    )
    #: getJobStatus answers that pass before a job is COMPLETED.
    processing_polls: int = 3
    #: (failureCode, message) a job fails with, when set.
    processing_failure: tuple[str, str] | None = None
    can_upload: bool = True
    #: Answer a rate limit with Retry-After only (the client honours it too).
    retry_after_only: bool = False
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    service_tokens: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha256 -> blob
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # rkey -> record
    _n: Any = field(default_factory=itertools.count)

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
            {"canUpload": True, "remainingDailyVideos": 25, "remainingDailyBytes": 10**10}
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
        uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
        cid = (
            "bafyrei" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:52]
        )
        self.records[rkey] = {"uri": uri, "cid": cid, "value": record}
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
        if request.args.get("repo") != DID or rkey not in self.records:
            return self._error(
                "RecordNotFound", f"Could not locate record: at://{DID}/app.bsky.feed.post/{rkey}"
            )
        return json_response(self.records[rkey])

    def on_delete_record(self, request: Request) -> Response:
        if error := self._check_access(request):
            return error
        body = request.get_json(silent=True) or {}
        self.records.pop(str(body.get("rkey")), None)
        return json_response({"commit": {"cid": "bafyreicommit", "rev": "x"}})
