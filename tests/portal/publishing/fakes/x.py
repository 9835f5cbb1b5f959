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

Replies (issue 13). Recent search ``GET /2/tweets/search/recent`` (docs.x.com ``x-api/
posts/search/integrate/paginate`` and ``build-a-query``): ``query`` (only the
``conversation_id:`` operator is understood here, and ``-from:``), ``since_id``,
``next_token``, ``max_results`` 10 to 100 (default 10, anything else a 400),
``tweet.fields``, ``expansions=author_id``, ``user.fields``; newest first within and
across pages; ``meta{newest_id, oldest_id, result_count, next_token}``, no ``data`` when
nothing matched; a ``next_token`` that never expires and answers the same page whenever
it is used (here: it stands for the last id of its page); only the last seven days are
searched, and a ``since_id`` older than that is a 400 (rooteco/tweetscape#421 [3p]).
Posts carry ``id``, ``text`` and ``edit_history_tweet_ids`` by default and the other
fields only when asked for. Edits (``x-api/fundamentals/edit-posts``): each one a new id,
the chain in ``edit_history_tweet_ids`` oldest first, a version asked for by its id
answered as that version, ``expansions=edit_history_tweet_ids`` bringing all versions
in ``includes.tweets``; deleting a version deletes the chain. Lookup ``GET /2/tweets?ids=``
(``x-api/posts/lookup``): posts gone come back as partial errors of a 200 answer
(``{"value","detail":"Could not find tweet with ids: [..].","title":"Not Found Error",
"resource_type":"tweet","parameter":"ids","resource_id","type":
"https://api.twitter.com/2/problems/resource-not-found"}``, HunterLarco/twitter-v2#33
[3p]). Hiding ``PUT /2/tweets/:id/hidden`` ``{"hidden": bool}`` → ``{"data":{"hidden"}}``
(``x-api/posts/hide-replies``): only in a conversation the account started, with the
``tweet.moderate.write`` scope (without it: 403 problem "Forbidden", plhery/
node-twitter-api-v2#265 [3p]), already hidden is a success, at most 725 hidden per
conversation (the wording and status of that refusal are unverified: a 403 here), and a
post that is gone answers a 404 (unverified). Replying to a post that is gone: 403 "You
attempted to reply to a Tweet that is deleted or not visible to you."
(plhery/node-twitter-api-v2#366 [3p]). Deleting another account's post: 403
(unverified wording). Search's rate limit: ``search_limit`` requests per 15 minutes
(Basic: 60 per 15 min with a user token, X's search migration page), each answer with
the ``x-rate-limit-*`` headers, over it a 429 until the window's reset.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import zlib
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
    {
        "tweet.read",
        "tweet.write",
        "users.read",
        "media.write",
        "tweet.moderate.write",
        "offline.access",
        "like.read",
    }
)
#: A token of a channel connected before the portal asked to moderate replies.
UNMODERATED_TOKEN = "x-token-without-moderation"  # noqa: S105 (the fake's token)
USER_ID = "1500000000000000001"
USERNAME = "tattletale"
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657
SEARCH_WINDOW_S = 7 * 86400
RATE_WINDOW_S = 15 * 60
MAX_HIDDEN = 725
_CONVERSATION = re.compile(r"^conversation_id:(\d+)(?: -from:(\w+))?$")
RESET_EPOCH = 1_796_186_100  # 2026-12-02 04:35:00 UTC
MAX_SEGMENT = 5 * 1024 * 1024


def _problem(status: int, title: str, detail: str) -> Response:
    return json_response(
        {"title": title, "detail": detail, "type": "about:blank", "status": status}, status
    )


def _not_found(post_id: str) -> dict[str, str]:
    return {
        "value": post_id,
        "detail": f"Could not find tweet with ids: [{post_id}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "ids",
        "resource_id": post_id,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }


def user_id(username: str) -> str:
    """Another account's id, the same for the same name."""
    return str(10**15 + zlib.crc32(username.encode()))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class FakeX(FakeServer):
    clock: Clock = field(default_factory=Clock)
    url_map: Map = field(
        default_factory=lambda: Map(
            [
                Rule("/2/media/upload", endpoint="media", methods=["GET", "POST"]),
                Rule("/2/tweets", endpoint="post", methods=["POST"]),
                Rule("/2/tweets", endpoint="lookup", methods=["GET"]),
                Rule("/2/tweets/search/recent", endpoint="search", methods=["GET"]),
                Rule("/2/tweets/<id>", endpoint="delete", methods=["DELETE"]),
                Rule("/2/tweets/<id>/hidden", endpoint="hide", methods=["PUT"]),
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
    access_tokens: set[str] = field(default_factory=lambda: {TOKEN, UNMODERATED_TOKEN})
    refresh_tokens: set[str] = field(default_factory=set)
    #: The scopes each token was granted (the consent page's, kept on renewal).
    scopes: dict[str, frozenset[str]] = field(
        default_factory=lambda: {
            TOKEN: SCOPES,
            UNMODERATED_TOKEN: SCOPES - {"tweet.moderate.write"},
        }
    )
    #: Other accounts' posts (replies in the account's conversations), by id; every
    #: version of an edited one, the chain in ``edit_history``.
    others: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Search requests allowed per 15-minute window (None: no limit).
    search_limit: int | None = None
    #: A broken search that answers every next_token with the same page and token.
    endless_paging: bool = False
    #: Ids the lookup fails to answer for (a partial error that is not "not found").
    lookup_failing: set[str] = field(default_factory=set)
    max_hidden: int = MAX_HIDDEN
    _window: list[float] = field(default_factory=lambda: [0.0, 0.0])  # start, count
    _last_id: int = 0
    #: Codes the consent page issued: code -> (redirect_uri, code_challenge).
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    _granted: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Media ids (posts get snowflake ids from the clock, see :meth:`new_id`).
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
        self._granted[code] = frozenset(scopes)
        return code

    def _client_ok(self, request: Request) -> bool:
        if request.form.get("client_id") != CLIENT_ID:
            return False
        if not self.confidential:
            return True
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _new_pair(self, scopes: frozenset[str]) -> dict[str, Any]:
        n = next(self._tokens)
        access, refresh = f"x-access-{n}", f"x-refresh-{n}"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        self.scopes[access] = self.scopes[refresh] = scopes
        return {
            "token_type": "bearer",
            "expires_in": 7200,
            "access_token": access,
            "scope": " ".join(sorted(scopes)),
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
            return json_response(self._new_pair(self.scopes[refresh]))
        granted = self._granted.pop(form.get("code", ""), frozenset())
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
        return json_response(self._new_pair(granted))

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

    def new_id(self) -> str:
        """A snowflake: the clock's milliseconds since X's epoch above bit 22, rising."""
        stamp = (int(self.clock.now() * 1000) - SNOWFLAKE_EPOCH_MS) << 22
        self._last_id = max(stamp, self._last_id + 1)
        return str(self._last_id)

    def _tweet(self, post_id: str) -> dict[str, Any] | None:
        return self.posts.get(post_id) or self.others.get(post_id)

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
        in_reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        parent = self._tweet(str(in_reply_to)) if in_reply_to else None
        if in_reply_to and parent is None:
            return _problem(
                403,
                "Forbidden",
                "You attempted to reply to a Tweet that is deleted or not visible to you.",
            )
        post_id = self.new_id()
        # What X shows: entities escaped, links as t.co, a link to the media at the end.
        shown = " ".join(self._tco() if w.startswith("http") else w for w in text.split(" "))
        shown = shown.replace("&", "&amp;") + (f" {self._tco()}" if media_ids else "")
        self.posts[post_id] = {
            "id": post_id,
            "text": shown,
            "sent_text": text,
            "created_at": self.clock.now(),
            "media_keys": [f"7_{m}" for m in media_ids],
            "in_reply_to": in_reply_to,
            "author_id": USER_ID,
            "conversation_id": parent["conversation_id"] if parent else post_id,
            "edit_history": [post_id],
            "hidden": False,
        }
        return json_response({"data": {"id": post_id, "text": shown}}, 201)

    def on_delete(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        if id in self.others:
            return _problem(403, "Forbidden", "You are not allowed to delete this Tweet.")
        if self.posts.pop(id, None) is None:
            return _problem(404, "Not Found Error", f"Could not find tweet with id: [{id}].")
        return json_response({"data": {"deleted": True}})

    # -- replies from other accounts (what the tests make happen on X) ---------------

    def add_reply(
        self, to: str, text: str, username: str, *, created_at: float | None = None
    ) -> str:
        """``username`` replies to post ``to`` (the account's, or a reply under it)."""
        parent = self._tweet(to)
        assert parent is not None, f"no post {to}"
        post_id = self.new_id()
        self.others[post_id] = {
            "id": post_id,
            "text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
            "author_id": user_id(username),
            "username": username,
            "created_at": self.clock.now() if created_at is None else created_at,
            "conversation_id": parent["conversation_id"],
            "in_reply_to": to,
            "edit_history": [post_id],
            "hidden": False,
            "superseded": False,
        }
        return post_id

    def edit_reply(self, post_id: str, text: str) -> str:
        """The author edits their reply: a new version with an id of its own."""
        old = self.others[post_id]
        chain = [*old["edit_history"]]
        new_id = self.new_id()
        chain.append(new_id)
        for version in chain[:-1]:
            self.others[version]["edit_history"] = chain
            self.others[version]["superseded"] = True
        self.others[new_id] = {
            **old,
            "id": new_id,
            "text": text.replace("&", "&amp;"),
            "created_at": self.clock.now(),
            "edit_history": chain,
            "superseded": False,
        }
        return new_id

    def remove_reply(self, post_id: str) -> None:
        """The author deletes their reply: every version of it goes."""
        for version in self.others[post_id]["edit_history"]:
            self.others.pop(version, None)

    def _shown(self, post: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": post["id"],
            "text": post["text"],
            "edit_history_tweet_ids": list(post["edit_history"]),
        }
        if "created_at" in fields:
            item["created_at"] = _iso(post["created_at"])
        if "author_id" in fields:
            item["author_id"] = post["author_id"]
        if "conversation_id" in fields:
            item["conversation_id"] = post["conversation_id"]
        return item

    def _users(self, posts: list[dict[str, Any]]) -> list[dict[str, str]]:
        users: dict[str, dict[str, str]] = {}
        for post in posts:
            username = post.get("username", USERNAME)
            users[post["author_id"]] = {
                "id": post["author_id"],
                "name": username.title(),
                "username": username,
            }
        return list(users.values())

    def _rate_limited(self) -> tuple[Response | None, dict[str, str]]:
        if self.search_limit is None:
            return None, {}
        now = self.clock.now()
        if now >= self._window[0] + RATE_WINDOW_S:
            self._window[:] = [now, 0]
        reset = str(int(self._window[0] + RATE_WINDOW_S))
        if self._window[1] >= self.search_limit:
            headers = {
                "x-rate-limit-limit": str(self.search_limit),
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": reset,
            }
            body = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
            return json_response(body, 429, headers), headers
        self._window[1] += 1
        return None, {
            "x-rate-limit-limit": str(self.search_limit),
            "x-rate-limit-remaining": str(self.search_limit - int(self._window[1])),
            "x-rate-limit-reset": reset,
        }

    def on_search(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        limited, headers = self._rate_limited()
        if limited is not None:
            return limited
        args = request.args
        match = _CONVERSATION.match(args.get("query", ""))
        size = args.get("max_results", "10")
        since_id = args.get("since_id", "")
        oldest = self.clock.now() - SEARCH_WINDOW_S
        if match is None or not size.isdigit() or not 10 <= int(size) <= 100:
            return _problem(
                400, "Invalid Request", "One or more parameters to your request was invalid."
            )
        if since_id and (
            not since_id.isdigit() or ((int(since_id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000 < oldest
        ):
            return _problem(
                400, "Invalid Request", "One or more parameters to your request was invalid."
            )
        conversation, excluded = match.group(1), match.group(2)
        token = args.get("next_token", "")
        until = int(token.removeprefix("b26v"), 36) if token else None
        if self.endless_paging:
            until = None
        matching = [
            p
            for p in [*self.posts.values(), *self.others.values()]
            if p["conversation_id"] == conversation
            and not p.get("superseded")
            and p["created_at"] >= oldest
            and (not since_id or int(p["id"]) > int(since_id))
            and (until is None or int(p["id"]) < until)
            and not (excluded and p.get("username", USERNAME) == excluded)
        ]
        matching.sort(key=lambda p: int(p["id"]), reverse=True)
        page = matching[: int(size)]
        fields = set((args.get("tweet.fields") or "").split(","))
        meta: dict[str, Any] = {"result_count": len(page)}
        if not page:
            return json_response({"meta": meta}, headers=headers)
        meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if len(matching) > len(page):
            meta["next_token"] = "b26v" + _base36(int(page[-1]["id"]))
        body: dict[str, Any] = {"data": [self._shown(p, fields) for p in page], "meta": meta}
        if "author_id" in (args.get("expansions") or "").split(","):
            body["includes"] = {"users": self._users(page)}
        return json_response(body, headers=headers)

    def on_lookup(self, request: Request) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        args = request.args
        ids = [i for i in (args.get("ids") or "").split(",") if i]
        if not ids or len(ids) > 100:
            return _problem(400, "Invalid Request", "ids must hold 1 to 100 ids")
        fields = set((args.get("tweet.fields") or "").split(","))
        expansions = set((args.get("expansions") or "").split(","))
        found = [p for i in ids if (p := self._tweet(i)) is not None]
        body: dict[str, Any] = {}
        if found:
            body["data"] = [self._shown(p, fields) for p in found]
        errors = [_not_found(i) for i in ids if self._tweet(i) is None]
        errors += [
            {
                "value": i,
                "detail": "Internal error",
                "title": "Service Unavailable",
                "resource_id": i,
                "type": "about:blank",
            }
            for i in ids
            if i in self.lookup_failing
        ]
        if errors:
            body["errors"] = errors
        includes: dict[str, Any] = {}
        if "author_id" in expansions and found:
            includes["users"] = self._users(found)
        if "edit_history_tweet_ids" in expansions:
            versions = {
                v: self._shown(self.others[v], fields)
                for p in found
                for v in p["edit_history"]
                if v in self.others and v != p["id"]
            }
            if versions:
                includes["tweets"] = list(versions.values())
        if includes:
            body["includes"] = includes
        return json_response(body)

    def on_hide(self, request: Request, id: str) -> Response:
        if not self._authorized(request):
            return self.fault_response("unauthorized")
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if "tweet.moderate.write" not in self.scopes.get(token, frozenset()):
            return _problem(403, "Forbidden", "Forbidden")
        body = request.get_json(silent=True) or {}
        if not isinstance(body.get("hidden"), bool):
            return _problem(400, "Invalid Request", "hidden is required")
        post = self.others.get(id)
        if post is None:
            return _problem(404, "Not Found Error", f"Could not find tweet with id: [{id}].")
        root = self.posts.get(post["conversation_id"])
        if root is None:
            return _problem(
                403, "Forbidden", "You can only hide replies in conversations you started."
            )
        hidden = [
            p
            for p in self.others.values()
            if p["conversation_id"] == post["conversation_id"] and p["hidden"]
        ]
        if body["hidden"] and not post["hidden"] and len(hidden) >= self.max_hidden:
            return _problem(
                403, "Forbidden", "You have hidden the most replies a conversation allows."
            )
        post["hidden"] = body["hidden"]
        return json_response({"data": {"hidden": body["hidden"]}})

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


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"
