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

Replies (``methods/statuses.md``; mastodon/mastodon
``app/controllers/api/v1/statuses/contexts_controller.rb``,
``app/models/concerns/status/threading_concern.rb``, ``api/v1/statuses_controller.rb``):
``GET /api/v1/statuses/:id/context`` answers ``{"ancestors", "descendants"}``, not
paginated; with a token at most ``CONTEXT_LIMIT = 4_096`` descendants, in depth-first
order of the reply tree, children by id (``ORDER BY path LIMIT``; the promotion of the
author's self-replies to the top is not played). ``GET /api/v1/statuses?id[]=`` (4.3.0+)
answers the statuses that exist and are visible, fewer than asked when some are gone,
and more than ``DEFAULT_STATUSES_LIMIT = 20`` ids are a 422; a server before 4.3.0 has
no such route (404, played by ``multi_lookup = False``). ``GET /api/v1/statuses/:id``
is 404 ``{"error":"Record not found"}`` for a status deleted or not visible. A status
carries ``account`` (``acct`` without a domain for a local account, ``name@domain``
for a remote one), ``content`` as HTML, ``created_at`` and ``edited_at`` (null until
edited, ``entities/Status.md``). PUT and DELETE find only the caller's own statuses
(``Status.where(account: current_account).find``): anyone else's is a 404. A reply
whose ``in_reply_to_id`` does not exist is a 404 (``statuses.errors.in_reply_not_found``).
"""

from __future__ import annotations

import base64
import hashlib
import html
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
#: The account the token belongs to.
OWN = {"id": "42", "username": "tattletale", "acct": "tattletale"}
CONTEXT_LIMIT = 4096
DEFAULT_STATUSES_LIMIT = 20
CREATED_AT = "2026-12-02T04:25:00.000Z"
IN_REPLY_NOT_FOUND = "The post you are trying to reply to does not appear to exist."


def account(acct: str) -> dict[str, str]:
    """A replying account: ``name`` is local to the instance, ``name@domain`` remote."""
    number = int(hashlib.sha256(acct.encode()).hexdigest()[:8], 16)
    return {"id": str(1000 + number), "username": acct.split("@")[0], "acct": acct}


def content_html(text: str, mention: str = "tattletale") -> str:
    """Text as Mastodon renders it: paragraphs, ``<br />`` for line breaks, entities
    escaped, the mention of the account replied to as an h-card link first."""
    paragraphs = [html.escape(p).replace("\n", "<br />") for p in text.split("\n\n")]
    if mention:
        card = (
            f'<span class="h-card" translate="no"><a href="https://police.example/@{mention}" '
            f'class="u-url mention">@<span>{mention}</span></a></span> '
        )
        paragraphs[0] = card + paragraphs[0]
    return "".join(f"<p>{p}</p>" for p in paragraphs)


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
                Rule("/api/v1/statuses", endpoint="lookup", methods=["GET"]),
                Rule("/api/v1/statuses/<id>", endpoint="status", methods=["GET"]),
                Rule("/api/v1/statuses/<id>/context", endpoint="context", methods=["GET"]),
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
    #: The server's cap on a context's descendants (``CONTEXT_LIMIT``).
    context_limit: int = CONTEXT_LIMIT
    #: False: a server before 4.3.0, without ``GET /api/v1/statuses?id[]=``.
    multi_lookup: bool = True
    #: Fields a status is answered with whatever it holds (a broken server's answer).
    mangled: dict[str, dict[str, Any]] = field(default_factory=dict)
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
        author = status.get("account") or OWN
        name, _, domain = str(author["acct"]).partition("@")
        origin = f"https://{domain}" if domain else self.url
        return {
            "created_at": CREATED_AT,
            "edited_at": None,
            "visibility": "public",
            **status,
            "account": author,
            "url": f"{origin}/@{name}/{status['id']}",
            "uri": f"{origin}/users/{name}/statuses/{status['id']}",
            "media_attachments": [self.media[m] for m in status["media_ids"]],
            **self.mangled.get(status["id"], {}),
        }

    def _own(self, status: dict[str, Any] | None) -> bool:
        return status is not None and (status.get("account") or OWN)["id"] == OWN["id"]

    # -- what the test makes happen on the network -------------------------------------

    def add_reply(
        self,
        in_reply_to_id: str,
        text: str,
        acct: str = "neighbour",
        *,
        status_id: str | None = None,
        visibility: str = "public",
        created_at: str = CREATED_AT,
    ) -> str:
        """Someone replies (``status_id`` given: a remote reply whose id was backdated
        to when its server says it was written)."""
        parent = self.statuses[in_reply_to_id]
        status_id = status_id or str(next(self._ids))
        self.statuses[status_id] = {
            "id": status_id,
            "account": account(acct),
            "content": content_html(text),
            "text": text,
            "created_at": created_at,
            "visibility": visibility,
            "in_reply_to_id": in_reply_to_id,
            "in_reply_to_account_id": (parent.get("account") or OWN)["id"],
            "media_ids": [],
            "edited": False,
        }
        return status_id

    def edit_reply(self, status_id: str, text: str) -> None:
        self.statuses[status_id].update(
            text=text, content=content_html(text), edited_at="2026-12-02T04:40:00.000Z"
        )

    def descendants(self, status_id: str) -> list[dict[str, Any]]:
        """Depth-first, children by id, as the recursive query orders ``path``."""
        children: dict[str, list[str]] = {}
        for key, status in self.statuses.items():
            parent = status.get("in_reply_to_id")
            if parent:
                children.setdefault(str(parent), []).append(key)
        found: list[dict[str, Any]] = []
        stack = sorted(children.get(status_id, []), key=int, reverse=True)
        while stack and len(found) < self.context_limit:
            current = stack.pop()
            found.append(self.statuses[current])
            stack.extend(sorted(children.get(current, []), key=int, reverse=True))
        return found

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
        own = [s for s in self.statuses.values() if self._own(s)]
        newest_first = sorted(own, key=lambda s: int(s["id"]), reverse=True)
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
        in_reply_to_id = request.form.get("in_reply_to_id")
        if in_reply_to_id and in_reply_to_id not in self.statuses:
            return json_response({"error": IN_REPLY_NOT_FOUND}, 404)
        status_id = str(next(self._ids))
        self.statuses[status_id] = {
            "id": status_id,
            "content": f"<p>{text}</p>",
            "text": text,
            "visibility": request.form.get("visibility", "public"),
            "in_reply_to_id": in_reply_to_id,
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
        if not self._own(status):
            return json_response({"error": "Record not found"}, 404)
        assert status is not None
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
            edited_at="2026-12-02T04:30:00.000Z",
        )
        return json_response(self._status_json(status))

    def on_delete(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        if not self._own(self.statuses.get(id)):
            # Someone else's reply under our post included: not the account's to delete.
            return json_response({"error": "Record not found"}, 404)
        status = self.statuses.pop(id)
        return json_response(
            {**self._status_json({**status, "media_ids": []}), "text": status["text"]}
        )

    def on_status(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        status = self.statuses.get(id)
        if status is None:
            return json_response({"error": "Record not found"}, 404)
        return json_response(self._status_json(status))

    def on_lookup(self, request: Request) -> Response:
        if not self.multi_lookup:
            return Response("<html>The page you are looking for isn't here.</html>", 404)
        if not self._authorized(request):
            return self._unauthorized()
        ids = list(dict.fromkeys(request.args.getlist("id[]")))
        if len(ids) > DEFAULT_STATUSES_LIMIT:
            return json_response({"error": "Mastodon::ValidationError"}, 422)
        return json_response(
            [self._status_json(self.statuses[i]) for i in ids if i in self.statuses]
        )

    def on_context(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        status = self.statuses.get(id)
        if status is None:
            return json_response({"error": "Record not found"}, 404)
        ancestors: list[dict[str, Any]] = []
        parent = status.get("in_reply_to_id")
        while parent and parent in self.statuses:
            ancestors.insert(0, self._status_json(self.statuses[parent]))
            parent = self.statuses[parent].get("in_reply_to_id")
        descendants = [self._status_json(s) for s in self.descendants(id)]
        return json_response({"ancestors": ancestors, "descendants": descendants})
