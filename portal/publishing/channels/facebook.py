"""A Facebook Page: a regular Page video ("facebook") and a Page Reel ("facebook_reel").

Follows ../shared/networks.md section 1 and the documentation it cites:

* regular video — Resumable Upload API (docs/graph-api/resumable-upload-api,
  video-api/guides/publishing): ``POST /{app-id}/uploads`` opens a session (user
  token), ``POST /upload:<session>`` with ``file_offset`` sends the bytes and returns a
  file handle, ``POST /{page-id}/videos`` with ``description`` and
  ``fbuploader_video_file_chunk=<handle>`` posts it (Page token);
* Reels — video-api/guides/reels-publishing: ``POST /{page-id}/video_reels``
  ``upload_phase=start`` returns ``video_id`` and the rupload URL, the bytes go there
  with ``offset`` and ``file_size`` headers, ``GET /{video-id}?fields=status`` reports
  the phases, ``upload_phase=finish`` with ``video_state=PUBLISHED`` and
  ``description`` publishes;
* ``POST /{video-id}`` edits the description, ``DELETE /{video-id}`` removes it,
  ``GET /{page-id}/videos`` lists the Page's videos (video-api/reference);
* comments under the video (a Reel is a video too: its id is the one stored) —
  ``GET /{video-id}/comments`` (docs/graph-api/reference/object/comments, video/comments):
  ``filter=stream`` returns comments of all levels (replies flat among them, each with
  its ``parent``) in time order, ``order=reverse_chronological`` newest first; paging
  by cursor (docs/graph-api/results: ``paging.cursors.after``, and no ``paging.next``
  on the last page: the end is told by its absence, not by a short page). A cursor is
  invalidated when its comment is deleted, so none is kept between polls: each walks
  from the newest comment to the newest the last one saw
  (:class:`~portal.publishing.channels.graph.Walk`). ``from`` is left out for people
  who have not allowed the app to see them: their comments come with no author. Hiding
  is ``POST /{comment-id}`` with ``is_hidden=true`` (changelog v2.2), deleting
  ``DELETE /{comment-id}``, answering ``POST /{comment-id}/comments`` with ``message``
  (pages-api/comments-mentions: a Page token with ``pages_manage_engagement`` and
  ``pages_read_engagement``, and the MODERATE task; the guide's third name,
  "pages_read_user_engagement", is in no permissions reference and is not asked for,
  since the dialog refuses an unknown scope); ``pages_read_user_content`` lets the
  Page read what people post on it (features-reference/page-public-content-access
  names it with pages_read_engagement as what reading public comments needs).

Exactly once: Facebook documents no idempotency key. The video id is stored the moment
it is known (the Reel's start phase returns it before anything is published, so one
Reel per delivery is certain: finishing the same video twice cannot make two). The
regular video's id only comes back from the call that posts it; when that answer is
lost, :meth:`FacebookVideo.find` looks for it among the Page's videos posted since the
moment before the call (stored before it was made): newest first, page by page
(``paging.cursors.after``, graph-api/results), a bounded number of pages, the caption
matched only among videos created since then, so a busy Page, or an older video with
the same caption, neither hides it nor is taken for it. Two matches, a listing that
ends before reaching that moment, or none at all leave it to a person.

**Unverified** (settings, with the defaults below): that ``/{page-id}/videos`` lists
newest first (what it shows; the reference does not say), and its largest ``limit``
(``find_page_size``); the ``status.video_status`` values
(``ready_states``, ``error_states``), the names of the Reel phases' states, and that
``uploading_phase.bytes_transferred`` tells where an interrupted Reel upload stopped.
For comments: the edge's largest ``limit`` (``replies_page_size``); what Graph answers
for a cursor whose comment was deleted (one refused restarts the walk); that
comments carry no documented "edited" field, so an edit is seen only as changed text
(which the replies engine compares).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from portal.publishing.channels.base import (
    CredentialError,
    Draft,
    Media,
    OutcomeUnknown,
    Published,
    RejectedError,
    Reply,
    ReplyPage,
    Steps,
    TransientError,
)
from portal.publishing.channels.connect import Connection, OAuthApp
from portal.publishing.channels.graph import GraphChannel, MissingObject, graph_time, page_lookup
from portal.publishing.channels.registry import register

WEB_URL = "https://www.facebook.com"
DEFAULT_READY_STATES = ("ready", "published")
DEFAULT_ERROR_STATES = ("error", "expired")
CHUNK_BYTES = 1024 * 1024
# find(): videos a listing page asks for, and the most pages read looking for a lost
# post (a Page posting a thousand videos in the minutes since is left to a person).
FIND_PAGE_SIZE = 50
FIND_PAGES = 10
# Facebook's clock and ours may differ: a video created this long before the moment we
# stored is still looked at.
FIND_CLOCK_SKEW = timedelta(minutes=10)
COMMENT_FIELDS = "id,message,from{id,name},created_time,permalink_url,is_hidden,parent{id}"


def require_media(draft: Draft, network: str) -> Media:
    if draft.media is None:
        raise RejectedError(f"{network} posts a video; this post has none")
    return draft.media


def file_chunks(path: Path, offset: int) -> Iterator[bytes]:
    """The file from ``offset`` on, in chunks: a rendition can be a gigabyte."""
    with path.open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def mapping(value: object) -> Mapping[str, Any]:
    """A JSON object of an answer, or an empty one where the answer has none."""
    return value if isinstance(value, dict) else {}


def _moment(value: object) -> datetime | None:
    """A stored ISO time or a Graph ``created_time``; None when absent or unreadable."""
    if not value:
        return None
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def web_url(permalink: object, fallback: str) -> str:
    # The Graph API answers a video's permalink_url as a path on www.facebook.com.
    if isinstance(permalink, str) and permalink.startswith("/"):
        return WEB_URL + permalink
    if isinstance(permalink, str) and permalink.startswith("https://"):
        return permalink
    return fallback


class FacebookPage(GraphChannel):
    """What both kinds of Page post share: the Page token, edits, deletion, connecting."""

    edits_in_place: ClassVar[bool] = True
    can_delete: ClassVar[bool] = True
    lists_replies: ClassVar[bool] = True
    can_hide_replies: ClassVar[bool] = True
    can_delete_replies: ClassVar[bool] = True
    can_answer_replies: ClassVar[bool] = True
    moderated_with: ClassVar[str] = "page_access_token"
    hide_field: ClassVar[str] = "is_hidden"
    scopes: ClassVar[tuple[str, ...]] = (
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_posts",
        "pages_manage_engagement",
        "pages_read_user_content",
    )

    @property
    def page_id(self) -> str:
        page_id = str(self.settings.get("page_id") or "")
        if not page_id:
            raise CredentialError(f"{self.network}: no Page is set for this channel")
        return page_id

    def page_auth(self) -> dict[str, str]:
        return self.auth("page_access_token")

    def video_status(self, video_id: str) -> dict[str, Any]:
        body = self.http.json(
            self.http.call(
                "GET",
                self.graph_path(video_id),
                params={"fields": "status,permalink_url"},
                headers=self.page_auth(),
            )
        )
        status = body.get("status")
        return {**(status if isinstance(status, dict) else {}), "_body": body}

    def states(self, key: str, default: tuple[str, ...]) -> frozenset[str]:
        value = self.settings.get(key)
        return frozenset(str(v).lower() for v in value) if value else frozenset(default)

    def test_connection(self) -> str:
        body = self.http.json(
            self.http.call(
                "GET",
                self.graph_path(self.page_id),
                params={"fields": "name"},
                headers=self.page_auth(),
            )
        )
        return str(body.get("name") or self.page_id)

    def update(self, published: Published, text: str) -> Published:
        # "Create or update fields on a published Video": the description, in place.
        body = self.http.json(
            self.http.call(
                "POST",
                self.graph_path(published.remote_id),
                data={"description": text},
                headers=self.page_auth(),
            )
        )
        if body.get("success") is False:
            raise RejectedError(f"{self.network} did not accept the new description")
        return published

    def delete(self, published: Published) -> None:
        try:
            self.http.call("DELETE", self.graph_path(published.remote_id), headers=self.page_auth())
        except MissingObject:
            return  # already gone

    # -- comments under the Page's video -------------------------------------------------

    def list_replies(self, published: Published, cursor: Any) -> ReplyPage:
        walk, full = self.replies_walk(cursor)
        params = {
            "filter": "stream",
            "order": "reverse_chronological",
            "fields": COMMENT_FIELDS,
            "limit": self.replies_page_size,
        }
        body = self.comments_page(
            f"{published.remote_id}/comments", params, self.page_auth(), walk.after
        )
        data = body.get("data")
        if not isinstance(data, list):
            raise TransientError(f"{self.network} answered the comments with no data list")
        if data and not any(isinstance(item, dict) and item.get("id") for item in data):
            # The reference: comment ids are given only to a token whose person can do
            # the MODERATE task on the Page. Without them nothing can be filed or acted on.
            raise RejectedError(
                f"{self.network} lists the comments without their ids: the account that "
                "connected the Page needs the MODERATE task on it; reconnect with one that has"
            )
        comments = [item for item in data if isinstance(item, dict) and item.get("id")]
        listed = [self.comment_reply(item) for item in comments if not self.own(item)]
        oldest = min((graph_time(c.get("created_time")) for c in comments), default=None)
        paging = mapping(body.get("paging"))
        after = str(mapping(paging.get("cursors")).get("after") or "")
        return walk.step(listed, oldest, after if paging.get("next") else "", full=full)

    def own(self, comment: Mapping[str, Any]) -> bool:
        """A comment by the Page itself (its answers, its updates): not a tip."""
        author = comment.get("from")
        return isinstance(author, dict) and str(author.get("id") or "") == self.page_id

    def comment_reply(self, comment: Mapping[str, Any]) -> Reply:
        author = comment.get("from")
        return Reply(
            remote_id=str(comment["id"]),
            # Graph sends a comment's message as plain text.
            text=str(comment.get("message") or ""),
            # No "from": someone the Page may not see (not allowed by them): no handle.
            author=str(author.get("name") or "") if isinstance(author, dict) else "",
            created_at=graph_time(comment.get("created_time")),
            url=web_url(comment.get("permalink_url"), ""),
            hidden=comment.get("is_hidden") is True,
        )

    def look_up_replies(self, published: Published, remote_ids: list[str]) -> dict[str, Reply]:
        found = self.batch_get(remote_ids, COMMENT_FIELDS, self.page_auth())
        # Keyed by the id asked for: an answer without its id (a token that lost the
        # MODERATE task) still says the comment is there, not that it was deleted.
        return {
            remote_id: self.comment_reply({**comment, "id": remote_id})
            for remote_id, comment in found.items()
        }

    def answer_reply(self, published: Published, remote_id: str, text: str) -> Published:
        body = self.http.json(
            self.http.call(
                "POST",
                self.graph_path(f"{remote_id}/comments"),
                data={"message": text},
                headers=self.page_auth(),
                creates=True,
            ),
            creates=True,
        )
        answer = str(body.get("id") or "")
        if not answer:
            raise OutcomeUnknown(f"{self.network} accepted the answer but gave no id")
        return Published(answer, published.url, {"answer_to": remote_id})

    @classmethod
    def exchange_code(
        cls, app: OAuthApp, *, code: str, code_verifier: str | None = None
    ) -> Connection:
        if not app.account_id:
            raise RejectedError("Name the Facebook Page (its id) to connect.")
        user_token = cls.user_token(app, code)
        page = page_lookup(app, cls.network, user_token, "name,access_token")
        page_token = page.get("access_token")
        if not isinstance(page_token, str) or not page_token:
            raise CredentialError(
                "The Facebook account that signed in cannot post to that Page "
                "(it needs the CREATE_CONTENT task there)."
            )
        return Connection(
            credentials={"user_access_token": user_token, "page_access_token": page_token},
            settings={"page_id": app.account_id, "app_id": app.client_id},
            name=str(page.get("name") or app.account_id),
        )


@register
class FacebookVideo(FacebookPage):
    """A regular video post on the Page (any aspect ratio from 9:16 to 16:9)."""

    network: ClassVar[str] = "facebook"

    def publish(self, draft: Draft, steps: Steps) -> Published:
        media = require_media(draft, self.network)
        state = dict(steps.state)
        video_id = state.get("video_id")
        if not video_id:
            handle = state.get("file_handle") or self.upload(media, draft, steps, state)
            if not state.get("posting_since"):
                # Stored before the call: a video this post made cannot be older, which
                # is what find() looks back to. The first call's moment is kept.
                posting_since = datetime.now(UTC).isoformat()
                steps.save("posting", posting_since=posting_since)
                state["posting_since"] = posting_since
            body = self.http.json(
                self.http.call(
                    "POST",
                    self.graph_path(f"{self.page_id}/videos"),
                    data={"description": draft.text, "fbuploader_video_file_chunk": handle},
                    headers=self.page_auth(),
                    creates=True,
                ),
                creates=True,
            )
            video_id = str(body.get("id") or "")
            if not video_id:
                raise OutcomeUnknown(f"{self.network} accepted the video but gave no id")
            steps.save("posted", video_id=video_id)
        return self.wait_until_ready(video_id)

    def upload(self, media: Media, draft: Draft, steps: Steps, state: dict[str, Any]) -> str:
        """Open (or reopen) the upload session and send what it does not have yet."""
        session = state.get("upload_session")
        user = self.auth("user_access_token")
        app_id = str(self.settings.get("app_id") or self.settings.get("client_id") or "")
        if not app_id:
            raise CredentialError(f"{self.network}: no app id is set for this channel")
        if session:
            # Resuming: the session says how many bytes it already holds.
            body = self.http.json(self.http.call("GET", self.graph_path(session), headers=user))
            offset = int(body.get("file_offset") or 0)
        else:
            body = self.http.json(
                self.http.call(
                    "POST",
                    self.graph_path(f"{app_id}/uploads"),
                    params={
                        "file_name": f"tattletale-{re.sub(r'[^A-Za-z0-9_-]', '', draft.key)}.mp4",
                        "file_length": media.size,
                        "file_type": media.content_type,
                    },
                    headers=user,
                )
            )
            session = str(body.get("id") or "")
            if not session.startswith("upload:"):
                raise RejectedError(f"{self.network} opened no upload session")
            steps.save("upload_session", upload_session=session)
            offset = 0
        body = self.http.json(
            self.http.call(
                "POST",
                self.graph_path(session),
                content=file_chunks(media.path, offset),
                headers={
                    **user,
                    "file_offset": str(offset),
                    "Content-Length": str(media.size - offset),
                },
            )
        )
        handle = str(body.get("h") or "")
        if not handle:
            raise RejectedError(f"{self.network} returned no file handle for the upload")
        steps.save("uploaded", file_handle=handle)
        return handle

    def wait_until_ready(self, video_id: str) -> Published:
        ready = self.states("ready_states", DEFAULT_READY_STATES)
        failed = self.states("error_states", DEFAULT_ERROR_STATES)
        seen: dict[str, Any] = {}

        def check() -> bool:
            seen.update(self.video_status(video_id))
            value = str(seen.get("video_status") or "").lower()
            if value in failed:
                raise RejectedError(f"{self.network} could not process the video ({value})")
            return value in ready

        self.poll(check, "processing the video")
        fallback = f"{WEB_URL}/{self.page_id}/videos/{video_id}"
        return Published(video_id, web_url(seen["_body"].get("permalink_url"), fallback))

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        video_id = steps.state.get("video_id")
        if video_id:
            return self.wait_until_ready(str(video_id))
        if not steps.state.get("file_handle"):
            return None  # the bytes never reached Facebook: nothing can have been posted
        since = _moment(steps.state.get("posting_since"))
        matches, complete = self.videos_since(since, draft.text)
        if len(matches) > 1:
            ids = ", ".join(str(v.get("id")) for v in matches)
            raise OutcomeUnknown(
                f"{self.network}: {len(matches)} videos with this caption were posted since "
                f"({ids}); check which is this post"
            )
        if matches:
            (video,) = matches
            found = str(video.get("id") or "")
            steps.save("posted", video_id=found)
            fallback = f"{WEB_URL}/{self.page_id}/videos/{found}"
            return Published(found, web_url(video.get("permalink_url"), fallback))
        if not complete:
            raise OutcomeUnknown(
                f"{self.network}: the video is not among the Page's latest "
                f"{self.find_page_size * self.find_pages} videos; check the Page"
            )
        # Not listed (yet?): a video still processing may not be; posting again could
        # double it, so a person decides.
        raise OutcomeUnknown(f"{self.network}: the video is not on the Page (yet); check it")

    @property
    def find_page_size(self) -> int:
        return int(self.settings.get("find_page_size") or FIND_PAGE_SIZE)

    @property
    def find_pages(self) -> int:
        return int(self.settings.get("find_pages") or FIND_PAGES)

    def videos_since(
        self, since: datetime | None, text: str
    ) -> tuple[list[Mapping[str, Any]], bool]:
        """The Page's videos with the caption ``text`` created since ``since`` (any
        age when it is not known), and whether the listing was read back that far (or
        to its end) within the bounded pages."""
        oldest = since - FIND_CLOCK_SKEW if since is not None else None
        matches: list[Mapping[str, Any]] = []
        after = ""
        for _ in range(max(self.find_pages, 1)):
            params: dict[str, Any] = {
                "fields": "id,description,permalink_url,created_time",
                "limit": self.find_page_size,
            }
            if after:
                params["after"] = after
            body = self.http.json(
                self.http.call(
                    "GET",
                    self.graph_path(f"{self.page_id}/videos"),
                    params=params,
                    headers=self.page_auth(),
                )
            )
            reached = False
            for video in body.get("data") or []:
                if not isinstance(video, dict):
                    continue
                created = _moment(video.get("created_time"))
                if oldest is not None and created is not None and created < oldest:
                    reached = True  # newest first: what follows is older still
                    continue
                if video.get("description") == text and video.get("id"):
                    matches.append(video)
            paging = mapping(body.get("paging"))
            after = str(mapping(paging.get("cursors")).get("after") or "")
            if reached or not paging.get("next") or not after:
                return matches, True
        return matches, False


@register
class FacebookReel(FacebookPage):
    """A Reel on the Page (9:16, 3 to 90 s; 30 a Page per rolling 24 hours)."""

    network: ClassVar[str] = "facebook_reel"

    def reels_path(self) -> str:
        return self.graph_path(f"{self.page_id}/video_reels")

    def publish(self, draft: Draft, steps: Steps) -> Published:
        media = require_media(draft, self.network)
        state = dict(steps.state)
        video_id = str(state.get("video_id") or "")
        if state.get("finished"):
            return self.reel(video_id)
        if not video_id:
            body = self.http.json(
                self.http.call(
                    "POST",
                    self.reels_path(),
                    json={"upload_phase": "start"},
                    headers=self.page_auth(),
                )
            )
            video_id = str(body.get("video_id") or "")
            upload_url = self.check_rupload(str(body.get("upload_url") or ""))
            if not video_id:
                raise RejectedError(f"{self.network} started no upload")
            steps.save("started", video_id=video_id, upload_url=upload_url)
            state.update(video_id=video_id, upload_url=upload_url)
            fresh = True
        else:
            fresh = False
        if not state.get("uploaded"):
            self.upload(media, video_id, str(state["upload_url"]), fresh=fresh)
            steps.save("uploaded", uploaded=True)
        self.poll(lambda: self.uploaded(video_id), "receiving the video")
        body = self.http.json(
            self.http.call(
                "POST",
                self.reels_path(),
                params={
                    "upload_phase": "finish",
                    "video_id": video_id,
                    "video_state": "PUBLISHED",
                    "description": draft.text,
                },
                headers=self.page_auth(),
                creates=True,
            ),
            creates=True,
        )
        if body.get("success") is not True:
            raise RejectedError(f"{self.network} did not publish the Reel")
        steps.save("finished", finished=True)
        return self.reel(video_id)

    def upload(self, media: Media, video_id: str, upload_url: str, *, fresh: bool) -> None:
        offset = 0
        if not fresh:
            # Resuming an upload that was cut: start where the network says it stopped.
            phase = self.phase(self.video_status(video_id), "uploading_phase")
            if phase.get("status") == "complete":
                return
            offset = int(phase.get("bytes_transferred") or 0)
        body = self.http.json(
            self.http.call(
                "POST",
                self.check_rupload(upload_url),
                content=file_chunks(media.path, offset),
                headers={
                    **self.page_auth(),
                    "offset": str(offset),
                    "file_size": str(media.size),
                    "Content-Length": str(media.size - offset),
                },
            )
        )
        if body.get("success") is not True:
            raise RejectedError(f"{self.network} did not take the upload: {body.get('debug_info')}")

    @staticmethod
    def phase(status: Mapping[str, Any], name: str) -> dict[str, Any]:
        phase = status.get(name)
        return phase if isinstance(phase, dict) else {}

    def failed_phase(self, status: Mapping[str, Any]) -> None:
        for name in ("uploading_phase", "processing_phase", "publishing_phase"):
            phase = self.phase(status, name)
            if str(phase.get("status") or "").lower() == "error":
                errors = phase.get("errors") or [{}]
                message = errors[0].get("message") if isinstance(errors[0], dict) else ""
                raise RejectedError(
                    f"{self.network} failed the Reel in {name.replace('_', ' ')}: {message}"
                )
        if str(status.get("video_status") or "").lower() in self.states(
            "error_states", DEFAULT_ERROR_STATES
        ):
            raise RejectedError(f"{self.network} could not process the Reel")

    def uploaded(self, video_id: str) -> bool:
        status = self.video_status(video_id)
        self.failed_phase(status)
        return self.phase(status, "uploading_phase").get("status") == "complete"

    def reel(self, video_id: str) -> Published:
        return Published(video_id, f"{WEB_URL}/reel/{video_id}")

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        video_id = str(steps.state.get("video_id") or "")
        if not video_id:
            return None  # no video was started, so nothing can have been published
        status = self.video_status(video_id)
        publishing = str(self.phase(status, "publishing_phase").get("status") or "")
        if publishing in ("complete", "in_progress"):
            steps.save("finished", finished=True)
            return self.reel(video_id)
        if publishing == "not_started":
            # Finishing this same video again cannot make a second Reel.
            return None
        self.failed_phase(status)
        raise OutcomeUnknown(f"{self.network}: the Reel's publishing state is {publishing!r}")
