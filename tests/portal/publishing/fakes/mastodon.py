"""A Mastodon server on loopback.

Follows /work/shared/networks.md section 4, which cites mastodon/documentation
``content/en/methods/media.md`` (POST /api/v2/media: 200 processed, 202 accepted with
``url: null``; GET /api/v1/media/:id: 206 processing, 200 with ``url``, 422 with an
error), ``methods/statuses.md`` (POST/PUT/DELETE /api/v1/statuses, the
``Idempotency-Key`` header kept an hour and answered with the original status — also
mastodon/mastodon ``app/services/post_status_service.rb``), ``api/rate-limits.md``
(``X-RateLimit-Limit/Remaining/Reset``, the reset an ISO-8601 instant, no Retry-After,
429 body ``{"error":"Too many requests"}``) and ``entities/Error.md`` (401
``{"error":"The access token is invalid"}``).

OAuth (``methods/oauth.md``): ``GET /oauth/authorize`` is the admin's browser at the
consent page, played by :meth:`FakeMastodon.authorize` (``response_type=code``,
``client_id``, ``redirect_uri``, ``scope`` within the app's, ``state``; PKCE
``code_challenge`` with ``code_challenge_method=S256`` since 4.3); ``POST /oauth/token``
with ``grant_type=authorization_code``, ``code``, ``client_id``, ``client_secret``,
``redirect_uri`` (and ``code_verifier``) answers ``{"access_token", "token_type":
"Bearer", "scope", "created_at"}``; a wrong client 401 ``invalid_client``, a wrong,
used or mismatched code 400 ``invalid_grant`` (Doorkeeper's wording, as
``entities/Error.md`` shows it).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.portal.publishing.fakes import FakeServer, garbage, json_response

TOKEN = "mastodon-user-token"
CLIENT_ID = "mastodon-client-id"
CLIENT_SECRET = "mastodon-client-secret"
#: The scopes the agency's app was registered with (POST /api/v1/apps).
APP_SCOPES = frozenset({"read:accounts", "read:statuses", "write:media", "write:statuses"})
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication "
    "included, or unsupported authentication method."
)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def query_value(query: Mapping[str, Sequence[str] | str], name: str) -> str:
    value = query.get(name, "")
    return value if isinstance(value, str) else (value[0] if value else "")


RESET_AT = "2026-12-02T05:05:00.000Z"


@dataclass
class FakeMastodon(FakeServer):
    url_map: Map = field(
        default_factory=lambda: Map(
            [
                Rule("/api/v1/accounts/verify_credentials", endpoint="verify", methods=["GET"]),
                Rule(
                    "/api/v1/accounts/<id>/statuses", endpoint="account_statuses", methods=["GET"]
                ),
                Rule("/api/v2/media", endpoint="upload", methods=["POST"]),
                Rule("/api/v1/media/<id>", endpoint="media", methods=["GET"]),
                Rule("/api/v1/statuses", endpoint="post", methods=["POST"]),
                Rule("/api/v1/statuses/<id>", endpoint="edit", methods=["PUT"]),
                Rule("/api/v1/statuses/<id>", endpoint="delete", methods=["DELETE"]),
                Rule("/oauth/token", endpoint="token", methods=["POST"]),
            ]
        )
    )
    #: Polls answered 206 before a video counts as processed (0: processed at upload,
    #: answered 200 as small images are).
    processing_polls: int = 2
    #: Set to the error a video's processing ends with (GET media/:id answers 422).
    processing_error: str | None = None
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    #: Codes the consent page issued: code -> (redirect_uri, scope, code_challenge).
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(109000000000000001))

    def fault_response(self, fault: str) -> Response:
        if fault == "unauthorized":
            return json_response({"error": "The access token is invalid"}, 401)
        if fault == "rate_limited":
            headers = {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": RESET_AT,
            }
            return json_response({"error": "Too many requests"}, 429, headers)
        if fault == "server_error":
            return json_response({"error": "We're sorry, but something went wrong"}, 500)
        return garbage()

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _unauthorized(self) -> Response:
        return self.fault_response("unauthorized")

    def _status_json(self, status: dict[str, Any]) -> dict[str, Any]:
        return {
            **status,
            "url": f"{self.url}/@tattletale/{status['id']}",
            "uri": f"{self.url}/users/tattletale/statuses/{status['id']}",
            "media_attachments": [self.media[m] for m in status["media_ids"]],
        }

    # -- OAuth -----------------------------------------------------------------------

    def authorize(self, query: Mapping[str, Sequence[str] | str]) -> str:
        """The consent page: the admin signs in and approves; the code the browser is
        sent back with. Refuses (AssertionError) what Mastodon's page would refuse."""

        def arg(name: str) -> str:
            return query_value(query, name)

        assert arg("response_type") == "code", "response_type must be code"
        assert arg("client_id") == CLIENT_ID, "unknown client"
        assert arg("redirect_uri"), "redirect_uri is required"
        assert arg("state"), "the portal always sends a state"
        scopes = set(arg("scope").split(" "))
        assert scopes <= APP_SCOPES, f"scopes outside the app's: {scopes - APP_SCOPES}"
        challenge = arg("code_challenge")
        if challenge:
            assert arg("code_challenge_method") == "S256", "only S256 is accepted"
        code = secrets.token_urlsafe(16)
        self.codes[code] = (arg("redirect_uri"), arg("scope"), challenge)
        return code

    def on_token(self, request: Request) -> Response:
        form = request.form
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return json_response(
                {"error": "invalid_client", "error_description": INVALID_CLIENT}, 401
            )
        issued = self.codes.pop(form.get("code", ""), None)  # single use
        verifier = form.get("code_verifier", "")
        if (
            form.get("grant_type") != "authorization_code"
            or issued is None
            or issued[0] != form.get("redirect_uri")
            or (issued[2] and s256(verifier) != issued[2])
        ):
            return json_response(
                {"error": "invalid_grant", "error_description": INVALID_GRANT}, 400
            )
        return json_response(
            {"access_token": TOKEN, "token_type": "Bearer", "scope": issued[1], "created_at": 1}
        )

    # -- endpoints -------------------------------------------------------------------

    def on_verify(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        return json_response({"id": "42", "username": "tattletale", "acct": "tattletale"})

    def on_account_statuses(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        newest_first = sorted(self.statuses.values(), key=lambda s: int(s["id"]), reverse=True)
        return json_response([self._status_json(s) for s in newest_first])

    def on_upload(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        upload = request.files.get("file")
        if upload is None:
            return json_response({"error": "Validation failed: File can't be blank"}, 422)
        media_id = str(next(self._ids))
        self.media[media_id] = {
            "id": media_id,
            "type": "video",
            "url": None,
            "preview_url": f"{self.url}/previews/{media_id}.png",
            "description": request.form.get("description"),
            "polls_left": self.processing_polls,
            "size": len(upload.read()),
        }
        if self.processing_polls == 0:
            self.media[media_id]["url"] = f"{self.url}/media/{media_id}.mp4"
            return json_response(self._public(media_id), 200)
        return json_response(self._public(media_id), 202)

    def _public(self, media_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.media[media_id].items() if k not in {"polls_left", "size"}}

    def on_media(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        media = self.media.get(id)
        if media is None:
            return json_response({"error": "Record not found"}, 404)
        if self.processing_error:
            return json_response({"error": self.processing_error}, 422)
        if media["polls_left"] > 0:
            media["polls_left"] -= 1
            return json_response(self._public(id), 206)
        media["url"] = f"{self.url}/media/{id}.mp4"
        return json_response(self._public(id), 200)

    def on_post(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        key = request.headers.get("Idempotency-Key")
        if key and key in self.idempotency:
            return json_response(self._status_json(self.statuses[self.idempotency[key]]))
        media_ids = request.form.getlist("media_ids[]")
        for media_id in media_ids:
            media = self.media.get(media_id)
            if media is None:
                return json_response({"error": "Validation failed: media not found"}, 422)
            if media["url"] is None:
                return json_response(
                    {
                        "error": "Cannot attach files that have not finished processing. "
                        "Try again in a moment!"
                    },
                    422,
                )
        text = request.form.get("status", "")
        if len(text) > 500:
            return json_response(
                {"error": "Validation failed: Text character limit of 500 exceeded"}, 422
            )
        status_id = str(next(self._ids))
        self.statuses[status_id] = {
            "id": status_id,
            "content": f"<p>{text}</p>",
            "text": text,
            "visibility": request.form.get("visibility", "public"),
            "in_reply_to_id": request.form.get("in_reply_to_id"),
            "media_ids": media_ids,
            "edited": False,
        }
        if key:
            self.idempotency[key] = status_id
        return json_response(self._status_json(self.statuses[status_id]))

    def on_edit(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        status = self.statuses.get(id)
        if status is None:
            return json_response({"error": "Record not found"}, 404)
        text = request.form.get("status", "")
        if len(text) > 500:
            return json_response(
                {"error": "Validation failed: Text character limit of 500 exceeded"}, 422
            )
        status.update(
            text=text,
            content=f"<p>{text}</p>",
            media_ids=request.form.getlist("media_ids[]"),
            edited=True,
        )
        return json_response(self._status_json(status))

    def on_delete(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        status = self.statuses.pop(id, None)
        if status is None:
            return json_response({"error": "Record not found"}, 404)
        return json_response(
            {**self._status_json({**status, "media_ids": []}), "text": status["text"]}
        )
