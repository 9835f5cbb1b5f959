"""A local fake of Meta's Graph API and its rupload host, on 127.0.0.1 in a thread.

It follows the documentation summarised in ../shared/networks.md sections 1 and 2:

* Facebook Resumable Upload API (developers.facebook.com/docs/graph-api/
  resumable-upload-api): ``POST /{app-id}/uploads`` → ``{"id": "upload:<session>"}``;
  ``POST /upload:<session>`` with ``file_offset`` → ``{"h": <handle>}``;
  ``GET /upload:<session>`` → ``{"id", "file_offset"}``;
* Page videos (video-api/guides/publishing, video-api/reference): ``POST
  /{page-id}/videos`` with ``description`` and ``fbuploader_video_file_chunk``,
  ``GET /{video-id}?fields=status``, ``POST /{video-id}`` (edit), ``DELETE
  /{video-id}``, ``GET /{page-id}/videos`` (newest first, with ``created_time``,
  paged by ``after`` like every Graph edge: graph-api/results);
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
  /oauth/access_token`` with the code, then ``grant_type=fb_exchange_token``;
* comments under a Page video (graph-api/reference/object/comments, comment,
  graph-api/results, changelog v2.2, pages-api/comments-mentions): ``GET
  /{video-id}/comments`` with ``filter=stream`` (replies too, each with ``parent``, in
  time order), ``order=chronological`` or ``reverse_chronological``, ``limit``;
  ``paging.cursors.after`` on every page that holds comments and ``paging.next`` only
  when more wait; ``from`` left out for a person the Page may not see, and ``id`` for
  a token without the MODERATE task; ``POST /{comment-id}`` ``is_hidden``, ``DELETE
  /{comment-id}``, ``POST /{comment-id}/comments`` ``message``, each needing
  ``pages_manage_engagement`` (error 200 otherwise), the listing
  ``pages_read_user_content``;
* comments under an IG media (instagram-platform ig-media/comments, ig-comment,
  ig-comment/replies, comment-moderation guide): ``GET /{ig-media-id}/comments`` with
  ``replies{...}`` nested, paged by ``after``; ``POST /{ig-comment-id}`` ``hide``,
  ``DELETE /{ig-comment-id}``, ``POST /{ig-comment-id}/replies`` ``message`` (top-level
  and not hidden only), all needing ``instagram_manage_comments``. The order of the
  listing is not documented: newest first here, as client libraries report
  (``ig_newest_first``);
* several reads in one batch (graph-api/making-multiple-requests): ``POST /`` with
  ``batch`` = ``[{"method", "relative_url"}]``, answered ``[{"code", "body"}]`` in order,
  a gone object as its own 400 with error 100/33;
* Business Use Case throttling (graph-api/overview/rate-limiting): code 80001 (Pages)
  with ``X-Business-Use-Case-Usage``.

Where the documentation is silent (the status enums, the publish-cap error code) the
fake does what networks.md marks unverified, the same way the adapters assume it.

Failures are switched per operation: ``fake.fail("ig_publish", "timeout_after_accept")``
makes the next such call do its work and then hang past the client's timeout.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
        "throttle_80001",
        # A listing that answers the page it was asked for again and again, with the
        # same cursor and a "next": a network that pages forever.
        "same_page",
        # JSON, but not the documented shape.
        "bad_shape",
        # A batch in which one request timed out: its answer is null (the guide).
        "partial_batch",
    }
)
#: What the fake's Page token and user token were granted (the dialog's scopes).
PAGE_PERMISSIONS = frozenset(
    {
        "pages_show_list",
        "pages_read_engagement",
        "pages_read_user_content",
        "pages_manage_engagement",
    }
)
IG_PERMISSIONS = frozenset(
    {"instagram_basic", "instagram_manage_comments", "pages_read_engagement"}
)
#: The first comment's time; each later one is a minute after the one before.
COMMENTS_START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


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
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


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
class Comment:
    """A comment (or a reply: ``parent``) on a Facebook video or an IG media."""

    id: str
    on: str  # the video or media id
    network: str  # "facebook" or "instagram"
    text: str
    author_id: str
    author_name: str
    created: datetime
    parent: str = ""
    #: False: a person who has not allowed the app to see them ("from" is left out).
    visible_author: bool = True
    hidden: bool = False
    deleted: bool = False


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
    #: Every comment ever made, tombstones of deleted ones included (so a cursor, which
    #: is a position in this list, keeps its place), in the order they were made.
    comments: list[Comment] = field(default_factory=list)
    page_permissions: set[str] = field(default_factory=lambda: set(PAGE_PERMISSIONS))
    ig_permissions: set[str] = field(default_factory=lambda: set(IG_PERMISSIONS))
    #: The most comments a listing answers, whatever ``limit`` asks (unverified: a
    #: setting of the fake).
    max_page_size: int = 100
    ig_newest_first: bool = True
    #: The token's person cannot do the MODERATE task: comments come without ids
    #: (object/comments reference, in effect since v11.0).
    moderate_task: bool = True
    url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(90001)
        self._by_id: dict[str, Comment] = {}
        self._children: dict[str, list[Comment]] = {}
        # Reentrant: an answer made by a handler (under the lock) is a comment too.
        self._lock = threading.RLock()
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

    # -- comments: what people do on the network -----------------------------------

    def comment(
        self,
        on: str,
        text: str,
        *,
        author: tuple[str, str] = ("", ""),
        parent: str = "",
        visible_author: bool = True,
    ) -> Comment:
        """Someone comments on ``on`` (or replies to the comment ``parent``)."""
        network = "instagram" if on in self.media else "facebook"
        number = len(self.comments)
        author_id, name = author
        if not author_id:
            author_id, name = f"55{number:05d}", f"Neighbour {number}"
            if network == "instagram":
                name = f"neighbour{number}"
        comment = Comment(
            id=f"{on}_{number + 1}" if network == "facebook" else f"1780{number + 1:06d}",
            on=on,
            network=network,
            text=text,
            author_id=author_id,
            author_name=name,
            created=COMMENTS_START + timedelta(minutes=number),
            parent=parent,
            visible_author=visible_author,
        )
        with self._lock:
            self.comments.append(comment)
            self._by_id[comment.id] = comment
            self._children.setdefault(parent, []).append(comment)
        return comment

    def known_comment(self, comment_id: str) -> Comment | None:
        """The comment with this id, deleted or not."""
        return self._by_id.get(comment_id)

    def comment_by_id(self, comment_id: str) -> Comment | None:
        found = self._by_id.get(comment_id)
        return found if found is not None and not found.deleted else None

    def edit_comment(self, comment_id: str, text: str) -> None:
        found = self.comment_by_id(comment_id)
        assert found is not None
        found.text = text

    def delete_comment(self, comment_id: str) -> None:
        found = self.comment_by_id(comment_id)
        assert found is not None
        found.deleted = True

    def live_comments(self, on: str) -> list[Comment]:
        return [c for c in self.comments if c.on == on and not c.deleted]

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
        if failure in ("same_page", "partial_batch"):
            r.params[f"_{failure}"] = "1"
        elif failure and failure != "timeout_after_accept":
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
        if head == "" and method == "POST":
            return "batch", ""
        if head in self.videos and tail == "comments":
            return "fb_comments", head
        if head in self.media and tail == "comments":
            return ("ig_comments" if method == "GET" else "ig_comment"), head
        known = self.known_comment(head)
        if known is not None:
            network = known.network
            if network == "facebook":
                ops = {"comments": "fb_answer", "": "fb_hide" if method == "POST" else ""}
            else:
                ops = {"replies": "ig_answer", "": "ig_hide" if method == "POST" else ""}
            if method == "DELETE" and not tail:
                return ("fb_delete_comment" if network == "facebook" else "ig_delete_comment"), head
            read = "fb_comment_read" if network == "facebook" else "ig_comment_read"
            return ops.get(tail, "") or read, head
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
        if op == "batch":
            # Each request of a batch is checked against the comment it reads.
            expected = (
                self.token_of(r)
                if self.token_of(r)
                in {
                    self.user_token,
                    self.page_token,
                }
                else self.page_token
            )
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

    def add_video(self, description: str, created: datetime) -> Video:
        """A video posted on the Page some other way (by hand, another tool)."""
        video = Video(self.new_id(), "video", description, 1, 1, published=True, created=created)
        self.videos[video.id] = video
        return video

    def op_page_videos(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        listed = sorted(
            (v for v in self.videos.values() if v.kind == "video"),
            key=lambda v: (v.created, int(v.id)),
            reverse=True,
        )
        start = 0
        after = p.get("after", "")
        if after:
            ids = [v.id for v in listed]
            named = base64.urlsafe_b64decode(after.encode()).decode()
            if named not in ids:
                return 400, error(100, "Invalid cursor")
            start = ids.index(named) + 1
        limit = min(int(p.get("limit") or 25), self.max_page_size)
        shown = listed[start : start + limit]
        answer: dict[str, Any] = {
            "data": [
                {
                    "id": v.id,
                    "description": v.description,
                    "permalink_url": f"/{self.page_id}/videos/{v.id}/",
                    "created_time": graph_time(v.created),
                }
                for v in shown
            ]
        }
        if shown:
            answer["paging"] = {
                "cursors": {"before": cursor_of(shown[0].id), "after": cursor_of(shown[-1].id)}
            }
            if start + limit < len(listed):
                path = f"/{VERSION}/{self.page_id}/videos"
                answer["paging"]["next"] = f"{self.url}{path}?after={cursor_of(shown[-1].id)}"
        return 200, answer

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
        # The account's own comment: in the media's list, and among its comments.
        comment = self.comment(target, p["message"], author=(self.ig_user_id, self.ig_username))
        self.media[target]["comments"].append({"id": comment.id, "text": p["message"]})
        return 200, {"id": comment.id}

    # -- comments --------------------------------------------------------------------

    def fb_json(self, c: Comment) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": c.id,
            "message": c.text,
            "created_time": graph_time(c.created),
            "permalink_url": f"https://www.facebook.com/{self.page_id}/videos/{c.on}/"
            f"?comment_id={c.id}",
            "is_hidden": c.hidden,
        }
        if c.visible_author:
            answer["from"] = {"id": c.author_id, "name": c.author_name}
        if c.parent:
            answer["parent"] = {"id": c.parent}
        if not self.moderate_task:
            del answer["id"]
        return answer

    def ig_json(self, c: Comment, *, with_replies: bool = True) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": c.id,
            "text": c.text,
            "username": c.author_name,
            "timestamp": graph_time(c.created),
            "hidden": c.hidden,
            "from": {"id": c.author_id, "username": c.author_name},
        }
        if c.parent:
            answer["parent_id"] = c.parent
        elif with_replies:
            replies = [r for r in self._children.get(c.id, []) if not r.deleted]
            if replies:
                answer["replies"] = {"data": [self.ig_json(r) for r in replies]}
        return answer

    def listing(
        self, ordered: list[Comment], p: dict[str, str], path: str, render: Any
    ) -> tuple[int, Any]:
        """One page of ``ordered`` (tombstones included) after the ``after`` cursor,
        which names the comment it follows: a deleted one keeps its place."""
        start = 0
        after = p.get("after", "")
        if after:
            try:
                named = base64.urlsafe_b64decode(after.encode()).decode()
            except ValueError:
                return 400, error(100, "Invalid cursor")
            ids = [c.id for c in ordered]
            if named not in ids:
                return 400, error(100, "Invalid cursor")
            start = ids.index(named) + 1
        rest = ordered[start:]
        limit = min(int(p.get("limit") or 25), self.max_page_size)
        shown: list[Comment] = []
        last = None
        for comment in rest:
            if len(shown) == limit:
                break
            last = comment
            if not comment.deleted:
                shown.append(comment)
        if p.get("_same_page"):
            # Pages forever: the same comments, the same cursor, always a next.
            cursor = after or cursor_of(ordered[0].id if ordered else "none")
            return 200, {
                "data": [render(c) for c in shown],
                "paging": {
                    "cursors": {"before": cursor, "after": cursor},
                    "next": f"{self.url}{path}?after={cursor}",
                },
            }
        more = last is not None and any(not c.deleted for c in rest[rest.index(last) + 1 :])
        answer: dict[str, Any] = {"data": [render(c) for c in shown]}
        if last is not None:
            answer["paging"] = {
                "cursors": {"before": cursor_of(rest[0].id), "after": cursor_of(last.id)}
            }
            if more:
                answer["paging"]["next"] = f"{self.url}{path}?after={cursor_of(last.id)}"
        return 200, answer

    def missing(self, *needed: str, granted: set[str]) -> tuple[int, Any] | None:
        lacking = [name for name in needed if name not in granted]
        if lacking:
            return 403, error(200, f"(#200) This action requires the {lacking[0]} permission")
        return None

    def op_fb_comments(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing(
            "pages_read_engagement", "pages_read_user_content", granted=self.page_permissions
        )
        if refused:
            return refused
        order = p.get("order", "chronological")
        if p.get("filter") != "stream" or order not in ("chronological", "reverse_chronological"):
            return 400, error(100, "This fake answers filter=stream only")
        # filter=stream: "all-level comments in chronological order" (replies among them).
        ordered = [c for c in self.comments if c.on == target]
        if order == "reverse_chronological":
            ordered.reverse()
        return self.listing(ordered, p, r.path, self.fb_json)

    def op_fb_comment_read(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported get request.", subcode=33)
        return 200, self.fb_json(found)

    def op_fb_hide(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing("pages_manage_engagement", granted=self.page_permissions)
        if refused:
            return refused
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported post request.", subcode=33)
        if p.get("is_hidden") not in ("true", "false"):
            return 400, error(100, "Invalid parameter")
        found.hidden = p["is_hidden"] == "true"
        return 200, {"success": True}

    def op_fb_delete_comment(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing("pages_manage_engagement", granted=self.page_permissions)
        if refused:
            return refused
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported delete request.", subcode=33)
        found.deleted = True
        return 200, {"success": True}

    def op_fb_answer(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing("pages_manage_engagement", granted=self.page_permissions)
        if refused:
            return refused
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported post request.", subcode=33)
        if not p.get("message"):
            return 400, error(100, "(#100) Missing message or attachment")
        # Facebook threads are two deep: an answer to a reply joins its comment's thread.
        answer = self.comment_by_page(found.on, p["message"], parent=found.parent or found.id)
        return 200, {"id": answer.id}

    def comment_by_page(self, on: str, text: str, *, parent: str) -> Comment:
        if on in self.media:
            return self.comment(on, text, author=(self.ig_user_id, self.ig_username), parent=parent)
        return self.comment(on, text, author=(self.page_id, self.page_name), parent=parent)

    def op_ig_comments(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing("instagram_manage_comments", granted=self.ig_permissions)
        if refused:
            return refused
        ordered = [c for c in self.comments if c.on == target and not c.parent]
        if self.ig_newest_first:
            ordered.reverse()
        return self.listing(ordered, p, r.path, self.ig_json)

    def op_ig_comment_read(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported get request.", subcode=33)
        return 200, self.ig_json(found, with_replies=False)

    def op_ig_hide(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing("instagram_manage_comments", granted=self.ig_permissions)
        if refused:
            return refused
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported post request.", subcode=33)
        if p.get("hide") not in ("true", "false"):
            return 400, error(100, "Invalid parameter")
        found.hidden = p["hide"] == "true"
        return 200, {"success": True}

    def op_ig_delete_comment(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing("instagram_manage_comments", granted=self.ig_permissions)
        if refused:
            return refused
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported delete request.", subcode=33)
        found.deleted = True
        return 200, {"success": True}

    def op_ig_answer(
        self, target: str, p: dict[str, str], r: Recorded, body: bytes
    ) -> tuple[int, Any]:
        refused = self.missing("instagram_manage_comments", granted=self.ig_permissions)
        if refused:
            return refused
        found = self.comment_by_id(target)
        if found is None:
            return 400, error(100, "Unsupported post request.", subcode=33)
        if found.hidden:
            # "You cannot reply to hidden comments" (the error's code is unverified).
            return 400, error(100, "Cannot reply to a hidden comment")
        if not p.get("message"):
            return 400, error(100, "Invalid parameter")
        answer = self.comment_by_page(found.on, p["message"], parent=found.parent or found.id)
        return 200, {"id": answer.id}

    def op_batch(self, target: str, p: dict[str, str], r: Recorded, body: bytes) -> tuple[int, Any]:
        try:
            requests = json.loads(p.get("batch", ""))
        except ValueError:
            return 400, error(100, "Invalid batch")
        if not isinstance(requests, list) or len(requests) > 50:
            return 400, error(100, "A batch holds at most 50 requests")
        token = self.token_of(r)
        answers = []
        for request in requests:
            split = urlsplit(str(request.get("relative_url", "")))
            found = self.comment_by_id(split.path.strip("/"))
            if request.get("method") != "GET":
                answers.append({"code": 400, "body": json.dumps(error(100, "GET only here"))})
            elif found is None:
                gone = error(100, "Unsupported get request.", subcode=33)
                answers.append({"code": 400, "body": json.dumps(gone)})
            elif token != (self.user_token if found.network == "instagram" else self.page_token):
                bad = error(190, "Invalid OAuth access token.", subcode=463)
                answers.append({"code": 400, "body": json.dumps(bad)})
            else:
                answer = self.fb_json(found) if found.network == "facebook" else self.ig_json(found)
                answers.append({"code": 200, "body": json.dumps(answer)})
        if p.get("_partial_batch"):
            answers[-1] = None
        return 200, answers


def cursor_of(comment_id: str) -> str:
    return base64.urlsafe_b64encode(comment_id.encode()).decode()


def graph_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


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
    if kind == "throttle_80001":
        usage = {
            "1001": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 3}]
        }
        return (
            400,
            error(80001, "There have been too many calls to this Page account."),
            {"X-Business-Use-Case-Usage": json.dumps(usage)},
        )
    if kind == "bad_shape":
        return 200, {"data": {"comments": "soon"}}, {}
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
