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

OAuth 2.0 (docs.x.com ``fundamentals/authentication/oauth-2-0/authorization-code`` and
``user-access-token``): the consent page at x.com/i/oauth2/authorize, played by
:meth:`FakeX.authorize` (``response_type=code``, ``client_id``, ``redirect_uri``,
``scope``, ``state``, ``code_challenge`` with ``code_challenge_method`` S256 — X
requires PKCE); ``POST /2/oauth2/token`` with ``grant_type=authorization_code``,
``code``, ``redirect_uri``, ``code_verifier``, ``client_id``, and HTTP Basic with the
client secret for a confidential client, answers ``{"token_type": "bearer",
"expires_in": 7200, "access_token", "scope", "refresh_token"}``; ``grant_type=
refresh_token`` answers a new pair and the refresh token used is spent. The error
bodies follow RFC 6749 section 5.2 (``invalid_client`` 401, ``invalid_grant`` 400):
X's own wording of them is not documented.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.portal.publishing.fakes import Clock, FakeServer, garbage, json_response
from tests.portal.publishing.fakes.mastodon import query_value, s256

TOKEN = "x-oauth2-user-token"
CLIENT_ID = "x-client-id"
CLIENT_SECRET = "x-client-secret"
SCOPES = frozenset(
    {"tweet.read", "tweet.write", "users.read", "media.write", "offline.access", "like.read"}
)
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
                Rule("/2/oauth2/token", endpoint="token", methods=["POST"]),
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
    #: Whether the app is a confidential client (then the token endpoint wants Basic).
    confidential: bool = True
    access_tokens: set[str] = field(default_factory=lambda: {TOKEN})
    refresh_tokens: set[str] = field(default_factory=set)
    #: Codes the consent page issued: code -> (redirect_uri, code_challenge).
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1866000000000000001))
    _tokens: Any = field(default_factory=lambda: itertools.count(1))
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
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header.removeprefix("Bearer ") in self.access_tokens

    def expire_access_tokens(self) -> None:
        """Two hours have passed: every access token issued is refused (401)."""
        self.access_tokens.clear()

    # -- OAuth -----------------------------------------------------------------------

    def authorize(self, query: Mapping[str, Sequence[str] | str]) -> str:
        """The consent page: the account approves; the code the browser is sent back
        with. Refuses (AssertionError) what X's page would refuse."""

        def arg(name: str) -> str:
            return query_value(query, name)

        assert arg("response_type") == "code", "response_type must be code"
        assert arg("client_id") == CLIENT_ID, "unknown client"
        assert arg("redirect_uri") and arg("state"), "redirect_uri and state are required"
        scopes = set(arg("scope").split(" "))
        assert scopes <= SCOPES, f"unknown scopes: {scopes - SCOPES}"
        assert arg("code_challenge") and arg("code_challenge_method") == "S256", "PKCE S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = (arg("redirect_uri"), arg("code_challenge"))
        return code

    def _client_ok(self, request: Request) -> bool:
        if request.form.get("client_id") != CLIENT_ID:
            return False
        if not self.confidential:
            return True
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _new_pair(self) -> dict[str, Any]:
        n = next(self._tokens)
        access, refresh = f"x-access-{n}", f"x-refresh-{n}"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {
            "token_type": "bearer",
            "expires_in": 7200,
            "access_token": access,
            "scope": " ".join(sorted(SCOPES - {"like.read"})),
            "refresh_token": refresh,
        }

    def on_token(self, request: Request) -> Response:
        form = request.form
        if not self._client_ok(request):
            return json_response(
                {
                    "error": "invalid_client",
                    "error_description": "Missing valid authorization header",
                },
                401,
            )
        grant = form.get("grant_type")
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return json_response(
                    {
                        "error": "invalid_grant",
                        "error_description": "Value passed for the token was invalid.",
                    },
                    400,
                )
            self.refresh_tokens.discard(refresh)  # single use: rotated
            return json_response(self._new_pair())
        issued = self.codes.pop(form.get("code", ""), None)  # single use
        if (
            grant != "authorization_code"
            or issued is None
            or issued[0] != form.get("redirect_uri")
            or s256(form.get("code_verifier", "")) != issued[1]
        ):
            return json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Value passed for the authorization code was invalid.",
                },
                400,
            )
        return json_response(self._new_pair())

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
