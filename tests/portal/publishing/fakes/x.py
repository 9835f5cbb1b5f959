"""The X API v2 on loopback.

Follows /work/shared/networks.md section 5, which cites docs.x.com
``x-api/media/quickstart/media-upload-chunked`` (``POST /2/media/upload`` with
``command=INIT`` → ``{"data":{"id","media_key","expires_after_secs"}}``, ``APPEND`` with
``media_id``, ``segment_index`` and the ``media`` part, ``FINALIZE`` with
``processing_info``), the GET media/upload STATUS reference (``processing_info`` with
``state`` pending → in_progress → succeeded | failed, ``check_after_secs``,
``error{code,name,message}``), xdevplatform/samples ``Media Upload/media_upload_v2.py``
(form fields as the sample sends them), ``x-api/posts/creation-of-a-post``
(``POST /2/tweets`` → ``{"data":{"id","text"}}``, ``reply.in_reply_to_tweet_id``,
``DELETE /2/tweets/:id``), ``fundamentals/rate-limits`` (``x-rate-limit-limit``,
``-remaining``, ``-reset`` in Unix seconds; the 429 body ``{"errors":[{"code":88,...}]}``),
``response-codes-and-errors`` (problem JSON) and akrherz/iembot#163 [3p] for the 403 on
duplicate text.

Unverified there, so modelled on the public behaviour and switchable: the user
timeline ``GET /2/users/:id/tweets`` as the check path (and that it lists a post at
once), the 5 MB segment limit (v1.1's), and a 404 for deleting a post already gone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.portal.publishing.conftest import Clock
from tests.portal.publishing.fakes import FakeServer, garbage, json_response

TOKEN = "x-oauth2-user-token"
USER_ID = "1500000000000000001"
RESET_EPOCH = 1_796_186_100  # 2026-12-02 04:35:00 UTC
MAX_SEGMENT = 5 * 1024 * 1024


def _problem(status: int, title: str, detail: str) -> Response:
    return json_response(
        {"title": title, "detail": detail, "type": "about:blank", "status": status}, status
    )


@dataclass
class FakeX(FakeServer):
    clock: Clock = field(default_factory=Clock)
    url_map: Map = field(
        default_factory=lambda: Map(
            [
                Rule("/2/media/upload", endpoint="media", methods=["GET", "POST"]),
                Rule("/2/tweets", endpoint="post", methods=["POST"]),
                Rule("/2/tweets/<id>", endpoint="delete", methods=["DELETE"]),
                Rule("/2/users/me", endpoint="me", methods=["GET"]),
                Rule("/2/users/<id>/tweets", endpoint="timeline", methods=["GET"]),
            ]
        )
    )
    #: STATUS answers before processing succeeds (the first ones "pending").
    processing_polls: int = 2
    check_after_secs: int = 3
    #: The error processing ends with, when set.
    processing_error: str | None = None
    #: Posts the timeline lists per page at most (it also honours max_results).
    page_size: int = 100
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1866000000000000001))
    _links: Any = field(default_factory=lambda: itertools.count(1))

    def classify(self, request: Request, endpoint: str) -> str:
        if endpoint == "media":
            command = request.form.get("command") or request.args.get("command") or ""
            return f"media_{command.lower()}"
        return endpoint

    def fault_response(self, fault: str) -> Response:
        if fault == "unauthorized":
            return _problem(401, "Unauthorized", "Unauthorized")
        if fault == "rate_limited":
            headers = {
                "x-rate-limit-limit": "200",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(RESET_EPOCH),
            }
            return json_response(
                {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}, 429, headers
            )
        if fault == "server_error":
            return _problem(503, "Service Unavailable", "Service Unavailable")
        return garbage()

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _tco(self) -> str:
        return f"https://t.co/fake{next(self._links)}"

    # -- media -----------------------------------------------------------------------

    def on_media_init(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        form = request.form
        if form.get("media_type") != "video/mp4" or form.get("media_category") not in {
            "amplify_video",
            "tweet_video",
        }:
            return _problem(400, "Invalid Request", "media_type or media_category is invalid")
        if not (form.get("total_bytes") or "").isdigit():
            return _problem(400, "Invalid Request", "total_bytes is required")
        media_id = str(next(self._ids))
        self.uploads[media_id] = {
            "total_bytes": int(form["total_bytes"]),
            "segments": {},
            "finalized": False,
            "polls_left": self.processing_polls,
            "state": None,
        }
        return json_response(
            {"data": {"id": media_id, "media_key": f"7_{media_id}", "expires_after_secs": 86400}}
        )

    def on_media_append(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        upload = self.uploads.get(request.form.get("media_id", ""))
        media = request.files.get("media")
        index = request.form.get("segment_index", "")
        if upload is None or media is None or not index.isdigit():
            return _problem(
                400, "Invalid Request", "media_id, segment_index and media are required"
            )
        data = media.read()
        if len(data) > MAX_SEGMENT:
            return _problem(400, "Invalid Request", "segment is larger than 5 MB")
        upload["segments"][int(index)] = data
        return Response(status=204)

    def on_media_finalize(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        media_id = request.form.get("media_id", "")
        upload = self.uploads.get(media_id)
        if upload is None:
            return _problem(400, "Invalid Request", "unknown media_id")
        segments = upload["segments"]
        if sorted(segments) != list(range(len(segments))):
            return _problem(400, "Invalid Request", "Segments do not add up to the file")
        if sum(len(s) for s in segments.values()) != upload["total_bytes"]:
            return _problem(400, "Invalid Request", "File size does not match total_bytes")
        upload["finalized"] = True
        upload["state"] = "pending"
        return json_response({"data": {"id": media_id, "processing_info": self._info(upload)}})

    def _info(self, upload: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"state": upload["state"]}
        if upload["state"] in {"pending", "in_progress"}:
            info["check_after_secs"] = self.check_after_secs
        if upload["state"] == "failed":
            info["error"] = {"code": 1, "name": "InvalidMedia", "message": self.processing_error}
        return info

    def on_media_status(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        media_id = request.args.get("media_id", "")
        upload = self.uploads.get(media_id)
        if upload is None or not upload["finalized"]:
            return _problem(400, "Invalid Request", "media_id is not finalized")
        if self.processing_error:
            upload["state"] = "failed"
        elif upload["polls_left"] > 0:
            upload["polls_left"] -= 1
            upload["state"] = "in_progress"
        else:
            upload["state"] = "succeeded"
        return json_response({"data": {"id": media_id, "processing_info": self._info(upload)}})

    # -- posts -----------------------------------------------------------------------

    def on_post(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        body = request.get_json(silent=True) or {}
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _problem(400, "Invalid Request", "text is required")
        if any(p["sent_text"] == text for p in self.posts.values()):
            return _problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        media_ids = (body.get("media") or {}).get("media_ids") or []
        for media_id in media_ids:
            if (self.uploads.get(media_id) or {}).get("state") != "succeeded":
                return _problem(400, "Invalid Request", "Your media IDs are invalid.")
        post_id = str(next(self._ids))
        # What X shows: entities escaped, links as t.co, a link to the media at the end.
        shown = " ".join(self._tco() if w.startswith("http") else w for w in text.split(" "))
        shown = shown.replace("&", "&amp;") + (f" {self._tco()}" if media_ids else "")
        self.posts[post_id] = {
            "id": post_id,
            "text": shown,
            "sent_text": text,
            "created_at": self.clock.now(),
            "media_keys": [f"7_{m}" for m in media_ids],
            "in_reply_to": (body.get("reply") or {}).get("in_reply_to_tweet_id"),
        }
        return json_response({"data": {"id": post_id, "text": shown}}, 201)

    def on_delete(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        if self.posts.pop(id, None) is None:
            return _problem(404, "Not Found Error", f"Could not find tweet with id: [{id}].")
        return json_response({"data": {"deleted": True}})

    def on_me(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        return json_response(
            {"data": {"id": USER_ID, "name": "Tattletale", "username": "tattletale"}}
        )

    def on_timeline(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        args = request.args
        start = args.get("start_time")
        since = (
            datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            if start
            else 0
        )
        excluded = set((args.get("exclude") or "").split(","))
        posts = [
            p
            for p in sorted(self.posts.values(), key=lambda p: int(p["id"]), reverse=True)
            if id == USER_ID
            and p["created_at"] >= since
            and not ("replies" in excluded and p["in_reply_to"])
        ]
        offset = int(args.get("pagination_token") or 0)
        size = min(self.page_size, int(args.get("max_results") or 10))
        page = posts[offset : offset + size]
        data = []
        for p in page:
            item: dict[str, Any] = {"id": p["id"], "text": p["text"]}
            if p["media_keys"]:
                item["attachments"] = {"media_keys": p["media_keys"]}
            item["created_at"] = datetime.fromtimestamp(p["created_at"], UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            )
            data.append(item)
        meta: dict[str, Any] = {"result_count": len(data)}
        if offset + size < len(posts):
            meta["next_token"] = str(offset + size)
        return json_response({"data": data, "meta": meta} if data else {"meta": meta})
