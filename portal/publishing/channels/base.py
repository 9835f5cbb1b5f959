"""The one interface every channel adapter implements, and what it raises.

A delivery (one post to one channel) goes through several network calls: upload the
video, wait for the network to process it, create the post. Between those calls the
adapter stores what the network returned (an upload session, a media id, a container)
through :meth:`Steps.save`, which commits it before the next call is made. A retry is
given the stored state back and resumes from the last stored step instead of starting
again: nothing is uploaded twice, and above all nothing is posted twice.

Errors say what should happen next, not what went wrong inside the adapter:

* :class:`TransientError` — try again later (timeouts before the request was sent,
  5xx, 429 with the network's reset time in ``retry_after``);
* :class:`OutcomeUnknown` — the request that creates the post was sent and no answer
  came back: it may have been posted. The engine never repeats such a call blindly; the
  next attempt calls :meth:`Channel.find` (or relies on the network's own lever, such
  as Mastodon's Idempotency-Key or a Bluesky record key chosen before the call) and,
  where the adapter cannot tell, the delivery is flagged for a person;
* :class:`CredentialError` — the network refused the credentials (expired, revoked):
  the coordinator is asked to reconnect and nothing is retried in a loop;
* :class:`RejectedError` — the network refused this post for good (over a limit,
  a processing failure): the reason is shown on the post;
* :class:`CapReached` — the account has used its daily posts (or videos) on the
  network, counted by the network itself (manual posts included): nothing was posted,
  and the same post goes once the cap frees.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol


class ChannelError(Exception):
    """Base of what an adapter raises; ``reason`` is shown to people as it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(ChannelError):
    """Nothing was done that a retry could repeat; try again, not before ``retry_after``
    seconds when the network said when (its rate-limit reset header)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class OutcomeUnknown(ChannelError):
    """The call that publishes was sent and its answer was lost (timeout, reset)."""


class CredentialError(ChannelError):
    """The network refused the channel's credentials: a person must reconnect it."""


class RejectedError(ChannelError):
    """The network refused this post for good; retrying the same post cannot help."""


class CapReached(ChannelError):
    """The account reached the network's daily cap before the call that posts: nothing
    was posted. The post waits until the cap frees, not before ``retry_after`` seconds
    where the network says when (otherwise the engine decides when to look again)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Media:
    """The rendition a delivery sends: a local file (fetched from the store first)."""

    path: Path
    content_type: str
    size: int
    duration_s: float
    width: int
    height: int
    fps: float
    sha256: str


@dataclass(frozen=True)
class Draft:
    """What one delivery posts: the caption as the preview showed it, the media, and
    a key unique to the delivery (the same on every attempt of it)."""

    text: str
    media: Media | None
    link: str
    alt: str
    key: str


@dataclass(frozen=True)
class Published:
    """Where a post landed: the network's id of it, its public URL, and what an update
    or deletion needs later (a Bluesky record's cid, say)."""

    remote_id: str
    url: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """One comment or reply under a post, as the network shows it now.

    ``remote_id`` is the network's id of it (unique on the channel: what a reply is
    deduplicated by); ``author`` the author's public handle ("@name@instance",
    "name.bsky.social", a Page-scoped name); ``url`` a link to it on the network where
    there is one. ``edited`` is true when the network says it was changed after it was
    written; ``hidden`` when the account hid it.
    """

    remote_id: str
    text: str
    author: str
    created_at: datetime
    url: str = ""
    edited: bool = False
    hidden: bool = False


@dataclass(frozen=True)
class ReplyPage:
    """What one listing call returned: the replies, and where the next call starts.

    ``cursor`` is stored after the page is filed and handed back to the next call (a
    since-id, a paging cursor, a time): opaque to the engine, JSON-serialisable.
    ``more`` is true when the network has another page ready now (the engine fetches
    it, up to a bound per run); false when the listing is caught up and the next call
    should wait for the next polling interval.
    """

    replies: list[Reply]
    cursor: Any
    more: bool = False


class Steps(Protocol):
    """A delivery's stored progress, handed to the adapter on every attempt."""

    @property
    def state(self) -> Mapping[str, Any]:
        """What earlier calls stored (empty on the first attempt)."""
        ...

    def save(self, step: str, **values: Any) -> None:
        """Store ``values`` under the named step (shown on the post page as "sending:
        <step>") and commit them before the adapter makes its next call."""
        ...


class Channel(abc.ABC):
    """One network account an agency connected.

    ``credentials`` are the decrypted secrets (tokens, app password); ``settings`` the
    non-secret rest (base URL, account or page id). Adapters get both as plain
    mappings and never see the database.
    """

    #: The network's name as stored on the channel row ("mastodon", "bluesky", ...).
    network: ClassVar[str]
    #: Whether :meth:`update` edits the post itself (else it replies under it).
    edits_in_place: ClassVar[bool] = False
    #: Whether :meth:`delete` can take a post down.
    can_delete: ClassVar[bool] = True
    #: Whether :meth:`list_replies` lists the comments and replies under a post.
    lists_replies: ClassVar[bool] = False
    #: What the account can do to someone else's reply under its post: hide it (it
    #: stays on the network, out of sight), delete it, answer it publicly.
    can_hide_replies: ClassVar[bool] = False
    can_delete_replies: ClassVar[bool] = False
    can_answer_replies: ClassVar[bool] = False

    def __init__(self, credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        self.credentials = credentials
        self.settings = settings
        #: Set by an adapter whose network replaced its credentials during a call (X
        #: rotates its single-use refresh token on every renewal): the channel's complete
        #: credentials, to be stored, encrypted, in place of the old ones after *any* call,
        #: a failed one included. Lost, the channel can no longer renew and must be
        #: reconnected. ``None`` when nothing changed.
        self.updated_credentials: dict[str, Any] | None = None

    def close(self) -> None:
        """Release the adapter's connections once its calls are done. Adapters keep
        their HTTP client (:class:`portal.publishing.channels.http.Http`) as ``http``,
        or as ``_http`` behind a property that makes it on first use: one never made is
        not made here just to be closed."""
        for name in ("http", "_http"):
            client = self.__dict__.get(name)
            if client is not None:
                client.close()

    @abc.abstractmethod
    def test_connection(self) -> str:
        """Check the credentials with a harmless call; return the account's name."""

    @abc.abstractmethod
    def publish(self, draft: Draft, steps: Steps) -> Published:
        """Post ``draft``, resuming from ``steps.state``; store each step's result
        through ``steps.save`` before the next call."""

    @abc.abstractmethod
    def find(self, draft: Draft, steps: Steps) -> Published | None:
        """After an :class:`OutcomeUnknown`: the post if the network has it, ``None`` if
        it certainly does not. Raise :class:`OutcomeUnknown` when it cannot tell."""

    @abc.abstractmethod
    def update(self, published: Published, text: str) -> Published:
        """Add ``text`` to a live post (edit it where the network allows, otherwise a
        reply or comment from the account); return where the update landed."""

    @abc.abstractmethod
    def delete(self, published: Published) -> None:
        """Take the post down; a post already gone is not an error."""

    # -- replies under the account's posts (issue: replies become tips) ---------------

    def list_replies(self, published: Published, cursor: Any) -> ReplyPage:
        """The replies under ``published`` newer than ``cursor`` (``None`` the first
        time), oldest first where the network can order them, one page per call. A
        reply whose text changed since it was listed may be listed again (same
        ``remote_id``). Raises what :meth:`publish` raises (a rate limit as a
        :class:`TransientError` with ``retry_after``)."""
        raise NotImplementedError(f"{self.network} does not list replies")

    def look_up_replies(self, published: Published, remote_ids: list[str]) -> dict[str, Reply]:
        """The replies among ``remote_ids`` that are still on the network, as they are
        now; an id missing from the answer was deleted (or is no longer visible to the
        account). At most 25 ids a call."""
        raise NotImplementedError(f"{self.network} does not look up replies")

    def hide_reply(self, published: Published, remote_id: str) -> None:
        """Hide the reply from the public; a reply already hidden or gone is not an
        error."""
        raise NotImplementedError(f"{self.network} cannot hide replies")

    def delete_reply(self, published: Published, remote_id: str) -> None:
        """Delete the reply; a reply already gone is not an error."""
        raise NotImplementedError(f"{self.network} cannot delete replies")

    def answer_reply(self, published: Published, remote_id: str, text: str) -> Published:
        """Reply publicly to the reply, from the account; return where it landed."""
        raise NotImplementedError(f"{self.network} cannot answer replies")
