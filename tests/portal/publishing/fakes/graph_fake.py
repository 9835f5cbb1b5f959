"""A local fake of Meta's Graph API and its rupload host, on 127.0.0.1 in a thread.

It follows the documentation summarised in ../shared/networks.md sections 1 and 2:

* Facebook Resumable Upload API (developers.facebook.com/docs/graph-api/
  resumable-upload-api): ``POST /{app-id}/uploads`` → ``{"id": "upload:<session>"}``;
  ``POST /upload:<session>`` with ``file_offset`` → ``{"h": <handle>}``;
  ``GET /upload:<session>`` → ``{"id", "file_offset"}``;
* Page videos (video-api/guides/publishing, video-api/reference): ``POST
  /{page-id}/videos`` with ``description`` and ``fbuploader_video_file_chunk``,
  ``GET /{video-id}?fields=status``, ``POST /{video-id}`` (edit), ``DELETE
  /{video-id}``, ``GET /{page-id}/videos``;
* Page Reels (video-api/guides/reels-publishing): ``POST /{page-id}/video_reels``
  ``upload_phase=start|finish``, ``POST rupload /video-upload/{v}/{video-id}`` with
  ``offset`` and ``file_size``, the status with its three phases (the shape from
  Meta's Postman collection);
* Instagram (instagram-platform content publishing, resumable uploads, ig-container,
  content_publishing_limit, ig-media/comments): containers with ``upload_type=
  resumable``, ``POST rupload /ig-api-upload/{v}/{container}``, ``status_code``,
  ``media_publish``, ``/media``, ``/comments``;
* errors (graph-api/guides/error-handling): ``{"error": {"message", "type", "code",
  "error_subcode", "fbtrace_id"}}`` with HTTP 400 (190 expired token, 4 app limit,
  32 Page limit with ``X-Business-Use-Case-Usage``), 500 for the network's own faults;
* Facebook Login's manual flow (facebook-login/guides/advanced/manual-flow): ``GET
  /oauth/access_token`` with the code, then ``grant_type=fb_exchange_token``.

Where the documentation is silent (the status enums, the publish-cap error code) the
fake does what networks.md marks unverified, the same way the adapters assume it.

Failures are switched per operation: ``fake.fail("ig_publish", "timeout_after_accept")``
makes the next such call do its work and then hang past the client's timeout.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

VERSION = "v21.0"
FAILURES = frozenset(
    {
        "token_expired",
        "throttle_4",
        "throttle_32",
        "server_error",
        "garbage",
        "timeout_after_accept",
    }
)


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body_size: int
    op: str = ""


@dataclass
class Video:
    id: str
    kind: str  # "video" or "reel"
    description: str = ""
    received: int = 0
    size: int = 0
    published: bool = False
    polls: int = 0


@dataclass
class Container:
    id: str
    caption: str
    status_code: str = "IN_PROGRESS"
    received: int = 0
    size: int = 0
    polls: int = 0
    media_id: str = ""


@dataclass
class GraphFake:
    page_id: str = "1001"
    app_id: str = "2002"
    ig_user_id: str = "3003"
    app_secret: str = "app-secret"
    page_token: str = "page-token"
    user_token: str = "user-token"
    page_name: str = "Springfield Police Department"
    ig_username: str = "springfieldpd"
    #: Status polls that answer "still processing" before the video is ready.
    processing_polls: int = 1
    #: What processing ends in: "ready" or "error".
    processing_outcome: str = "ready"
    quota_usage: int = 0
    quota_total: int = 50
    #: Seconds a "timeout_after_accept" answer waits (longer than the client's timeout).
    hang_s: float = 3.0
    #: OAuth codes the fake's dialog "issued", with the redirect URI they were for.
    codes: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    videos: dict[str, Video] = field(default_factory=dict)
    sessions: dict[str, Video] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(90001)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------------------

    def fail(self, op: str, *kinds: str) -> None:
        assert all(kind in FAILURES for kind in kinds), kinds
        self.failures.setdefault(op, []).extend(kinds)

    def ops(self) -> list[str]:
        return [r.op for r in self.requests]

    def bytes_uploaded(self) -> int:
        return sum(r.body_size for r in self.requests if r.op in {"upload", "rupload", "ig_upload"})

    def new_id(self) -> str:
        return str(next(self._ids))

    def start(self) -> GraphFake:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, each answer waits
            # for a delayed ACK (40 ms) and the tests crawl.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def handle_any(self) -> None:
                fake.handle(self)

            do_GET = do_POST = do_DELETE = handle_any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Channel settings that point an adapter at this fake."""
        return {
            "base_url": self.url,
            "rupload_url": self.url,
            "api_version": VERSION,
            "page_id": self.page_id,
            "app_id": self.app_id,
            "ig_user_id": self.ig_user_id,
            "poll_interval_s": 0,
            "poll_attempts": 5,
            "timeout_s": 1.5,
            **extra,
        }

    # -- HTTP ------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        split = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        params = dict(parse_qsl(split.query))
        content_type = request.headers.get("Content-Type") or ""
        if content_type.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode()))
        elif content_type.startswith("application/json") and body:
            params.update({k: str(v) for k, v in json.loads(body).items()})
        headers = {k.lower(): v for k, v in request.headers.items()}
        record = Recorded(request.command, split.path, params, headers, len(body))
        with self._lock:
            self.requests.append(record)
            status, answer, extra_headers, hang = self.route(record, body)
        if hang:
            time.sleep(self.hang_s)
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        try:
            request.send_response(status)
            kind = "text/html" if isinstance(answer, bytes) else "application/json"
            request.send_header("Content-Type", kind)
            request.send_header("Content-Length", str(len(payload)))
            for name, value in extra_headers.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting: the point of the hang

    def route(self, r: Recorded, body: bytes) -> tuple[int, Any, dict[str, str], bool]:
        parts = [p for p in r.path.split("/") if p]
        if parts[:1] in (["video-upload"], ["ig-api-upload"]) and parts[1:2] == [VERSION]:
            op = "rupload" if parts[0] == "video-upload" else "ig_upload"
            target = parts[2] if len(parts) == 3 else ""
        elif parts[:1] == [VERSION]:
            op, target = self.graph_op(r.method, parts[1:], r.params)
        else:
            return 404, error(803, "Unknown path"), {}, False
        r.op = op
        queued = self.failures.get(op) or []
        failure = queued.pop(0) if queued else ""
        if failure and failure != "timeout_after_accept":
            return (*failed(failure), False)
        status, answer = self.dispatch(op, target, r, body)
        return status, answer, {}, failure == "timeout_after_accept"

    def graph_op(self, method: str, path: list[str], params: dict[str, str]) -> tuple[str, str]:
        head = path[0] if path else ""
        tail = "/".join(path[1:])
        if head == "oauth" and tail == "access_token":
            return "token", ""
        if head == self.app_id and tail == "uploads":
            return "upload_session", ""
        if head.startswith("upload:"):
            return ("upload" if method == "POST" else "upload_status"), head
        if head == self.page_id:
            if tail == "videos":
                return ("videos" if method == "POST" else "page_videos"), head
            if tail == "video_reels":
                return f"reels_{params.get('upload_phase', '')}", head
            return "page", head
        if head == self.ig_user_id:
            ops = {"media": "ig_container" if method == "POST" else "ig_media"}
            ops |= {"media_publish": "ig_publish", "content_publishing_limit": "ig_quota"}
            return ops.get(tail, "ig_user"), head
        if tail == "comments":
            return "ig_comment", head
        if head in self.containers:
            return "ig_status", head
        if head in self.media:
            return "ig_permalink", head
        return {"GET": "status", "POST": "edit", "DELETE": "delete"}[method], head

    def token_of(self, r: Recorded) -> str:
        value = r.headers.get("authorization", "")
        return value.removeprefix("OAuth ") if value.startswith("OAuth ") else ""

    def dispatch(self, op: str, target: str, r: Recorded, body: bytes) -> tuple[int, Any]:
        p = r.params
        if op == "token":
            return self.oauth_token(p)
        needs_user = op.startswith(("upload", "ig_")) or (
            op == "page" and "access_token" in p.get("fields", "")
        )
        needs_user = needs_user or (op == "page" and "instagram" in p.get("fields", ""))
        expected = self.user_token if needs_user else self.page_token
        if self.token_of(r) != expected:
            return 400, error(190, "Invalid OAuth access token.", subcode=463)
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            return 400, error(100, f"Unsupported request {op}")
        result: tuple[int, Any] = handler(target, p, r, body)
        return result

    # -- OAuth -----------------------------------------------------------------------

    def oauth_token(self, p: dict[str, str]) -> tuple[int, Any]:
        if p.get("client_id") != self.app_id or p.get("client_secret") != self.app_secret:
            return 400, error(1, "Error validating client secret.", kind="OAuthException")
        if p.get("grant_type") == "fb_exchange_token":
            if p.get("fb_exchange_token") != "short-lived-token":
                return 400, error(190, "Invalid OAuth access token.")
            return 200, {
                "access_token": self.user_token,
                "token_type": "bearer",
                "expires_in": 5183944,
            }
        redirect_uri = self.codes.pop(p.get("code", ""), None)
        if redirect_uri is None or redirect_uri != p.get("redirect_uri"):
            return 400, error(100, "Invalid verification code format.", kind="OAuthException")
        return 200, {
            "access_token": "short-lived-token",
            "token_type": "bearer",
            "expires_in": 5400,
        }

    # -- Facebook --------------------------------------------------------------------

    def op_page(self, target: str, p: dict[str, str], r: Recorded, body: bytes) -> tuple[int, Any]:
        answer: dict[str, Any] = {"id": self.page_id}
        fields = p.get("fields", "")
        if "name" in fields:
            answer["name"] = self.page_name
        if "access_token" in fields:
            answer["access_token"] = self.page_token
        if "instagram_business_account" in fields:
            answer["instagram_business_account"] = {
                "id": self.ig_user_id,
                "username": self.ig_username,
            }
        return 200, answer

    def op_upload_session(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        if p.get("file_type") != "video/mp4" or not p.get("file_length", "").isdigit():
            return 400, error(100, "Invalid parameter")
        session = Video(id=f"upload:{self.new_id()}", kind="session", size=int(p["file_length"]))
        self.sessions[session.id] = session
        return 200, {"id": session.id}

    def op_upload_status(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        session = self.sessions.get(target)
        if session is None:
            return 400, error(100, "Unsupported get request.", subcode=33)
        return 200, {"id": session.id, "file_offset": session.received}

    def op_upload(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        session = self.sessions.get(target)
        if session is None:
            return 400, error(100, "Unsupported post request.", subcode=33)
        if r.headers.get("file_offset") != str(session.received):
            return 400, error(100, "Invalid file offset")
        session.received += len(body)
        if session.received != session.size:
            return 400, error(100, "Partial upload")
        return 200, {"h": f"handle-{target}"}

    def op_videos(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        handle = p.get("fbuploader_video_file_chunk", "")
        session = self.sessions.get(handle.removeprefix("handle-"))
        if session is None or session.received != session.size:
            return 400, error(100, "Invalid file handle")
        video = Video(
            self.new_id(), "video", p.get("description", ""), session.received, session.size
        )
        video.published = True
        self.videos[video.id] = video
        return 200, {"id": video.id}

    def op_page_videos(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        data = [
            {
                "id": v.id,
                "description": v.description,
                "permalink_url": f"/{self.page_id}/videos/{v.id}/",
            }
            for v in reversed(list(self.videos.values()))
            if v.kind == "video"
        ]
        return 200, {"data": data[: int(p.get("limit", "25"))]}

    def op_reels_start(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        video = Video(self.new_id(), "reel")
        self.videos[video.id] = video
        return 200, {
            "video_id": video.id,
            "upload_url": f"{self.url}/video-upload/{VERSION}/{video.id}",
        }

    def op_rupload(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        video = self.videos.get(target)
        if video is None or video.kind != "reel":
            return 400, {"debug_info": {"type": "NotFoundError", "message": "no such video"}}
        if not r.headers.get("file_size", "").isdigit() or r.headers.get("offset") != str(
            video.received
        ):
            return 400, {"debug_info": {"type": "ProcessingFailedError", "message": "bad offset"}}
        video.size = int(r.headers["file_size"])
        video.received += len(body)
        return 200, {"success": True}

    def op_reels_finish(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        video = self.videos.get(p.get("video_id", ""))
        if video is None or video.kind != "reel" or not video.size or video.received != video.size:
            return 400, error(100, "The video was not uploaded")
        if p.get("video_state") != "PUBLISHED":
            return 400, error(100, "Invalid video_state")
        video.description = p.get("description", "")
        video.published = True
        return 200, {"success": True}

    def op_status(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        video = self.videos.get(target)
        if video is None:
            return 400, error(100, "Unsupported get request.", subcode=33)
        video.polls += 1
        done = video.polls > self.processing_polls
        failed_now = done and self.processing_outcome == "error"
        if video.kind == "video":
            value = ("error" if failed_now else "ready") if done else "processing"
            status: dict[str, Any] = {"video_status": value}
        else:
            uploaded = bool(video.size) and video.received == video.size
            upload_phase = {
                "status": "complete" if uploaded else "in_progress",
                "bytes_transferred": video.received,
            }
            processing: dict[str, Any] = {
                "status": "error" if failed_now else ("complete" if done else "in_progress")
            }
            if failed_now:
                processing["errors"] = [{"code": 1363008, "message": "Video too short"}]
            status = {
                "video_status": "error"
                if failed_now
                else ("ready" if video.published else "processing"),
                "uploading_phase": upload_phase,
                "processing_phase": processing,
                "publishing_phase": {"status": "complete" if video.published else "not_started"},
            }
        return 200, {
            "id": video.id,
            "status": status,
            "permalink_url": f"/{self.page_id}/videos/{video.id}/",
        }

    def op_edit(self, target: str, p: dict[str, str], r: Recorded, body: bytes) -> tuple[int, Any]:
        video = self.videos.get(target)
        if video is None:
            return 400, error(100, "Unsupported post request.", subcode=33)
        video.description = p.get("description", video.description)
        return 200, {"success": True}

    def op_delete(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        if self.videos.pop(target, None) is None:
            return 400, error(100, "Unsupported delete request.", subcode=33)
        return 200, {"success": True}

    # -- Instagram -------------------------------------------------------------------

    def op_ig_user(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        return 200, {"id": self.ig_user_id, "username": self.ig_username}

    def op_ig_container(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        if p.get("media_type") != "REELS" or p.get("upload_type") != "resumable":
            return 400, error(100, "Only resumable REELS containers in this fake")
        container = Container(self.new_id(), p.get("caption", ""))
        self.containers[container.id] = container
        return 200, {
            "id": container.id,
            "uri": f"{self.url}/ig-api-upload/{VERSION}/{container.id}",
        }

    def op_ig_upload(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        container = self.containers.get(target)
        if container is None:
            return 400, {"debug_info": {"type": "NotFoundError", "message": "no such container"}}
        if r.headers.get("offset") != "0" or not r.headers.get("file_size", "").isdigit():
            return 400, {"debug_info": {"type": "ProcessingFailedError", "message": "bad offset"}}
        container.size = int(r.headers["file_size"])
        container.received = len(body)
        return 200, {"success": True, "message": "Upload successful."}

    def op_ig_status(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        container = self.containers[target]
        if (
            container.status_code == "IN_PROGRESS"
            and container.size
            and container.received == container.size
        ):
            container.polls += 1
            if container.polls > self.processing_polls:
                container.status_code = (
                    "ERROR" if self.processing_outcome == "error" else "FINISHED"
                )
        answer = {"id": container.id, "status_code": container.status_code}
        if container.status_code == "ERROR":
            answer["status"] = "Error: 2207026"
        return 200, answer

    def op_ig_quota(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        config = {"quota_total": self.quota_total, "quota_duration": 86400}
        return 200, {"data": [{"quota_usage": self.quota_usage, "config": config}]}

    def op_ig_publish(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        container = self.containers.get(p.get("creation_id", ""))
        if container is None or container.status_code != "FINISHED":
            return 400, error(9007, "Media ID is not available", subcode=2207027)
        if self.quota_usage >= self.quota_total:
            # The publish-cap code is unverified (networks.md); 9 / 2207042 is what
            # client libraries report.
            return 400, error(9, "Application request limit reached", subcode=2207042)
        self.quota_usage += 1
        media_id = self.new_id()
        container.status_code, container.media_id = "PUBLISHED", media_id
        self.media[media_id] = {
            "id": media_id,
            "caption": container.caption,
            "permalink": f"https://www.instagram.com/reel/R{media_id}/",
            "comments": [],
        }
        return 200, {"id": media_id}

    def op_ig_media(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        data = [
            {k: m[k] for k in ("id", "caption", "permalink")}
            for m in reversed(list(self.media.values()))
        ]
        return 200, {"data": data[: int(p.get("limit", "25"))]}

    def op_ig_permalink(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        return 200, {"id": target, "permalink": self.media[target]["permalink"]}

    def op_ig_comment(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        if target not in self.media or not p.get("message"):
            return 400, error(100, "Invalid parameter")
        comment = self.new_id()
        self.media[target]["comments"].append({"id": comment, "text": p["message"]})
        return 200, {"id": comment}


def error(
    code: int, message: str, *, subcode: int | None = None, kind: str = "OAuthException"
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        body["error_subcode"] = subcode
    return {"error": body}


def failed(kind: str) -> tuple[int, Any, dict[str, str]]:
    if kind == "token_expired":
        message = "Error validating access token: Session has expired on Tuesday."
        return 400, error(190, message, subcode=463), {}
    if kind == "throttle_4":
        return 400, error(4, "Application request limit reached"), {}
    if kind == "throttle_32":
        usage = {
            "1001": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7}]
        }
        return (
            400,
            error(32, "Page request limit reached"),
            {"X-Business-Use-Case-Usage": json.dumps(usage)},
        )
    if kind == "server_error":
        return 500, error(2, "Service temporarily unavailable", kind="OAuthException"), {}
    if kind == "garbage":
        return 200, b"<html><body>Sorry, something went wrong.</body></html>", {}
    raise AssertionError(kind)


def running_fake() -> Iterator[GraphFake]:
    fake = GraphFake().start()
    try:
        yield fake
    finally:
        fake.stop()
