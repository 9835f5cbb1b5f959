"""Instagram Reels on a professional account ("instagram").

Follows ../shared/networks.md section 2 and the documentation it cites:

* container — ``POST /{ig-user-id}/media`` with ``media_type=REELS``, the ``caption``
  and ``upload_type=resumable`` (docs/instagram-platform/content-publishing/
  resumable-uploads), which answers ``{"id", "uri"}``; the bytes then go to that
  ``uri`` on rupload.facebook.com with ``Authorization: OAuth``, ``offset`` and
  ``file_size`` headers. The resumable upload is used rather than ``video_url``
  because it needs no public URL of the rendition: the portal serves renditions
  publicly only for published appeals, and a URL Instagram fetches on its own schedule
  would tie a post to what the public site serves at that moment;
* status — ``GET /{container-id}?fields=status_code,status``: ``IN_PROGRESS``,
  ``FINISHED``, ``ERROR``, ``EXPIRED`` (not published within 24 h), ``PUBLISHED``
  (ig-container reference);
* quota — ``GET /{ig-user-id}/content_publishing_limit?fields=quota_usage,config``
  (the cap is "currently 50" a day on the reference page, 25 or 100 elsewhere: the
  adapter reads the network's own ``quota_total`` and never assumes one);
* publish — ``POST /{ig-user-id}/media_publish`` with ``creation_id``;
* update — a comment from the account, ``POST /{ig-media-id}/comments`` with
  ``message`` (captions cannot be edited through the API);
* delete — the IG Media reference offers none, so :attr:`can_delete` is False;
* comments (instagram-platform ig-media/comments, ig-comment, ig-comment/replies, the
  comment-moderation guide; ``instagram_manage_comments``) — ``GET
  /{ig-media-id}/comments`` lists the top-level comments, paged by ``after``, each with
  its ``replies`` asked for as a nested field; ``POST /{ig-comment-id}`` with
  ``hide=true`` hides one, ``DELETE /{ig-comment-id}`` deletes one, ``POST
  /{ig-comment-id}/replies`` with ``message`` answers: "you can only reply to top-level
  comments; replies to a reply will be added to the top-level comment" and "you cannot
  reply to hidden comments".

Exactly once: the container id is stored before anything else; a container whose
``status_code`` is ``PUBLISHED`` is never published again, and its media is looked up
among the account's (``GET /{ig-user-id}/media``) by its caption.

Tokens: the long-lived user token of Facebook Login lasts about 60 days (then the
network answers 190 and the coordinator is asked to reconnect). The resumable upload
is documented for Facebook Login apps only.

**Unverified** about comments: the listing's order (client libraries say newest
first; the reference does not say), how many nested ``replies`` come with a comment,
and whether a comment can be edited (the app offers no edit; a changed text is still
compared by the replies engine). A poll walks from the newest comment to the newest
one the last poll saw (:class:`~portal.publishing.channels.graph.Walk`), returning only
what is newer; a reply comes with its comment, so one under an old comment would be
missed: every ``full_walk_every``-th walk (setting ``replies_full_walk_every``) goes
through them all, which finds it, and finds everything in any order. The engine files
a comment once, whatever is listed twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from portal.publishing.channels.base import (
    CapReached,
    CredentialError,
    Draft,
    OutcomeUnknown,
    Published,
    RejectedError,
    Reply,
    ReplyPage,
    Steps,
    TransientError,
)
from portal.publishing.channels.connect import Connection, OAuthApp
from portal.publishing.channels.facebook import file_chunks, mapping, require_media
from portal.publishing.channels.graph import GraphChannel, graph_time, page_lookup
from portal.publishing.channels.registry import register

FIND_LIMIT = 25
COMMENT_FIELDS = "id,text,username,timestamp,hidden,from{id,username}"
LISTING_FIELDS = f"{COMMENT_FIELDS},replies{{{COMMENT_FIELDS}}}"


@register
class InstagramReels(GraphChannel):
    network: ClassVar[str] = "instagram"
    edits_in_place: ClassVar[bool] = False
    can_delete: ClassVar[bool] = False
    account_label: ClassVar[str] = "Facebook Page id (the Page the Instagram account is linked to)"
    moderated_with: ClassVar[str] = "user_access_token"
    hide_field: ClassVar[str] = "hide"
    scopes: ClassVar[tuple[str, ...]] = (
        "instagram_basic",
        "instagram_content_publish",
        "instagram_manage_comments",
        "pages_show_list",
        "pages_read_engagement",
    )

    lists_replies: ClassVar[bool] = True
    #: The order is unverified (see above): every 12th walk (an hour, at the default
    #: 5-minute polls) returns every comment, late replies under old ones included.
    full_walk_every: ClassVar[int] = 12
    can_hide_replies: ClassVar[bool] = True
    can_delete_replies: ClassVar[bool] = True
    can_answer_replies: ClassVar[bool] = True

    @property
    def ig_user_id(self) -> str:
        value = str(self.settings.get("ig_user_id") or "")
        if not value:
            raise CredentialError("instagram: no Instagram account is set for this channel")
        return value

    def user_auth(self) -> dict[str, str]:
        return self.auth("user_access_token")

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.http.json(
            self.http.call("GET", self.graph_path(path), params=params, headers=self.user_auth())
        )

    def container_status(self, container: str) -> tuple[str, str]:
        body = self.get(container, fields="status_code,status")
        return str(body.get("status_code") or "").upper(), str(body.get("status") or "")

    def test_connection(self) -> str:
        body = self.get(self.ig_user_id, fields="username")
        return "@" + str(body.get("username") or self.ig_user_id)

    def publish(self, draft: Draft, steps: Steps) -> Published:
        media = require_media(draft, self.network)
        state = dict(steps.state)
        if state.get("media_id"):
            return self.published(str(state["media_id"]))
        container = str(state.get("container_id") or "")
        if container:
            code, _ = self.container_status(container)
            if code == "PUBLISHED":
                return self.find_published(draft, steps)
            if code == "EXPIRED":
                container = ""  # 24 hours passed: a new container, from the start
        if not container:
            body = self.http.json(
                self.http.call(
                    "POST",
                    self.graph_path(f"{self.ig_user_id}/media"),
                    data={
                        "media_type": "REELS",
                        "upload_type": "resumable",
                        "caption": draft.text,
                        "share_to_feed": "true"
                        if self.settings.get("share_to_feed", True)
                        else "false",
                    },
                    headers=self.user_auth(),
                )
            )
            container = str(body.get("id") or "")
            if not container:
                raise RejectedError("instagram created no container")
            uri = self.check_rupload(str(body.get("uri") or ""))
            steps.save("container", container_id=container, upload_uri=uri, uploaded=False)
            state.update(container_id=container, upload_uri=uri, uploaded=False)
        if not state.get("uploaded"):
            # An upload cut short is sent again whole: the resumable-upload guide
            # documents no way to ask the container how much it holds.
            body = self.http.json(
                self.http.call(
                    "POST",
                    self.check_rupload(str(state["upload_uri"])),
                    content=file_chunks(media.path, 0),
                    headers={
                        **self.user_auth(),
                        "offset": "0",
                        "file_size": str(media.size),
                        "Content-Length": str(media.size),
                    },
                )
            )
            if body.get("success") is not True:
                raise RejectedError(f"instagram did not take the upload: {body.get('debug_info')}")
            steps.save("uploaded", uploaded=True)
        finished = self.wait_for_container(container)
        if finished == "PUBLISHED":
            return self.find_published(draft, steps)
        self.check_quota()
        body = self.http.json(
            self.http.call(
                "POST",
                self.graph_path(f"{self.ig_user_id}/media_publish"),
                data={"creation_id": container},
                headers=self.user_auth(),
                creates=True,
            ),
            creates=True,
        )
        media_id = str(body.get("id") or "")
        if not media_id:
            raise OutcomeUnknown("instagram accepted the publish but gave no media id")
        steps.save("published", media_id=media_id)
        return self.published(media_id)

    def wait_for_container(self, container: str) -> str:
        seen: list[str] = []

        def check() -> bool:
            code, detail = self.container_status(container)
            seen.append(code)
            if code == "ERROR":
                raise RejectedError(f"instagram could not process the video (status {detail})")
            if code == "EXPIRED":
                # Unpublished for 24 hours; the next attempt makes a new container.
                raise TransientError("instagram's container expired before it was published")
            return code in ("FINISHED", "PUBLISHED")

        self.poll(check, "processing the video")
        return seen[-1]

    def check_quota(self) -> None:
        body = self.get(f"{self.ig_user_id}/content_publishing_limit", fields="quota_usage,config")
        data = body.get("data") or [{}]
        entry = data[0] if isinstance(data[0], dict) else {}
        raw_config = entry.get("config")
        config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}
        usage, total = entry.get("quota_usage"), config.get("quota_total")
        if isinstance(usage, int) and isinstance(total, int) and usage >= total:
            hours = int(config.get("quota_duration") or 86400) // 3600
            # A rolling window (the answer gives no reset time): the engine looks again.
            raise CapReached(
                f"instagram's daily cap is reached: {usage} of {total} posts by the API "
                f"in {hours} hours"
            )

    def published(self, media_id: str) -> Published:
        body = self.get(media_id, fields="permalink")
        url = str(body.get("permalink") or "")
        return Published(media_id, url if url.startswith("https://") else "")

    def find_published(self, draft: Draft, steps: Steps) -> Published:
        """The media of a PUBLISHED container: among the account's latest, by caption."""
        body = self.get(f"{self.ig_user_id}/media", fields="id,caption,permalink", limit=FIND_LIMIT)
        for item in body.get("data") or []:
            if isinstance(item, dict) and item.get("caption") == draft.text and item.get("id"):
                media_id = str(item["id"])
                steps.save("published", media_id=media_id)
                url = str(item.get("permalink") or "")
                return Published(media_id, url if url.startswith("https://") else "")
        raise OutcomeUnknown("instagram published the container but its post was not found")

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        if steps.state.get("media_id"):
            return self.published(str(steps.state["media_id"]))
        container = str(steps.state.get("container_id") or "")
        if not container:
            return None  # no container: nothing can have been published
        code, _ = self.container_status(container)
        if code == "PUBLISHED":
            return self.find_published(draft, steps)
        # IN_PROGRESS, FINISHED, ERROR, EXPIRED: not published; publish() resumes.
        return None

    def update(self, published: Published, text: str) -> Published:
        body = self.http.json(
            self.http.call(
                "POST",
                self.graph_path(f"{published.remote_id}/comments"),
                data={"message": text},
                headers=self.user_auth(),
                creates=True,
            ),
            creates=True,
        )
        comment = str(body.get("id") or "")
        return Published(comment, published.url, {"comment_on": published.remote_id})

    def delete(self, published: Published) -> None:
        raise RejectedError("Instagram's API offers no way to delete a post; remove it in the app")

    # -- comments under the account's media ----------------------------------------------

    def list_replies(self, published: Published, cursor: Any) -> ReplyPage:
        walk, full = self.replies_walk(cursor)
        params = {"fields": LISTING_FIELDS, "limit": self.replies_page_size}
        body = self.comments_page(
            f"{published.remote_id}/comments", params, self.user_auth(), walk.after
        )
        data = body.get("data")
        if not isinstance(data, list):
            raise TransientError("instagram answered the comments with no data list")
        comments = [item for item in data if isinstance(item, dict) and item.get("id")]
        listed = [
            self.comment_reply(item, published)
            for item in self.with_replies(comments)
            if not self.own(item)
        ]
        # The listing's order is that of the top-level comments; replies ride along.
        oldest = min((graph_time(c.get("timestamp")) for c in comments), default=None)
        paging = mapping(body.get("paging"))
        after = str(mapping(paging.get("cursors")).get("after") or "")
        return walk.step(listed, oldest, after if paging.get("next") else "", full=full)

    @staticmethod
    def with_replies(comments: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for comment in comments:
            yield comment
            replies = mapping(comment.get("replies")).get("data")
            for reply in replies if isinstance(replies, list) else []:
                if isinstance(reply, dict) and reply.get("id"):
                    yield reply

    def own(self, comment: Mapping[str, Any]) -> bool:
        """A comment by the account itself (its updates, its answers): not a tip."""
        author = mapping(comment.get("from"))
        username = str(comment.get("username") or author.get("username") or "")
        mine = str(self.settings.get("ig_username") or "")
        return str(author.get("id") or "") == self.ig_user_id or bool(mine and username == mine)

    def comment_reply(self, comment: Mapping[str, Any], published: Published) -> Reply:
        username = str(
            comment.get("username") or mapping(comment.get("from")).get("username") or ""
        )
        return Reply(
            remote_id=str(comment["id"]),
            text=str(comment.get("text") or ""),  # plain text on Instagram
            author=f"@{username}" if username else "",
            created_at=graph_time(comment.get("timestamp")),
            # A comment has no permalink of its own: the post's.
            url=published.url,
            hidden=comment.get("hidden") is True,
        )

    def look_up_replies(self, published: Published, remote_ids: list[str]) -> dict[str, Reply]:
        found = self.batch_get(remote_ids, COMMENT_FIELDS, self.user_auth())
        # Keyed by the id asked for: an answer without its id (a token that lost the
        # MODERATE task) still says the comment is there, not that it was deleted.
        return {
            remote_id: self.comment_reply({**comment, "id": remote_id}, published)
            for remote_id, comment in found.items()
        }

    def answer_reply(self, published: Published, remote_id: str, text: str) -> Published:
        comment = self.get(remote_id, fields="id,hidden,parent_id")
        if comment.get("hidden") is True:
            raise RejectedError(
                "Instagram lets no one answer a hidden comment: unhide it in the app to answer"
            )
        # Only top-level comments take replies (an answer to a reply would land under
        # its comment anyway): answer that one, on purpose.
        target = str(comment.get("parent_id") or remote_id)
        body = self.http.json(
            self.http.call(
                "POST",
                self.graph_path(f"{target}/replies"),
                data={"message": text},
                headers=self.user_auth(),
                creates=True,
            ),
            creates=True,
        )
        answer = str(body.get("id") or "")
        if not answer:
            raise OutcomeUnknown("instagram accepted the answer but gave no id")
        return Published(answer, published.url, {"answer_to": target})

    @classmethod
    def exchange_code(
        cls, app: OAuthApp, *, code: str, code_verifier: str | None = None
    ) -> Connection:
        if not app.account_id:
            raise RejectedError("Name the Facebook Page the Instagram account is linked to.")
        user_token = cls.user_token(app, code)
        page = page_lookup(
            app, cls.network, user_token, "name,instagram_business_account{id,username}"
        )
        account = page.get("instagram_business_account")
        if not isinstance(account, dict) or not account.get("id"):
            raise RejectedError("That Page has no Instagram professional account linked to it.")
        return Connection(
            credentials={"user_access_token": user_token},
            settings={
                "page_id": app.account_id,
                "ig_user_id": str(account["id"]),
                # Tells the account's own comments from other people's.
                "ig_username": str(account.get("username") or ""),
                "app_id": app.client_id,
            },
            name="@" + str(account.get("username") or account["id"]),
        )
