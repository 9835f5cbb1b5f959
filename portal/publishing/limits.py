"""What each network accepts, as data: every value with where it comes from and when
that source was read.

Networks change their limits without notice, so nothing here is a branch in code:
preflight (portal/publishing/preflight.py) reads these tables, and a changed limit is
one edited value with its new source. Values that no primary source confirmed are
marked ``verified=False`` and say why; the network's own runtime answer (Mastodon's
``/api/v2/instance``, Instagram's ``content_publishing_limit``, Bluesky's
``getUploadLimits``) is authoritative over them where the adapter asks for it.

Sources are the ones collected in the project's networks notes (shared/networks.md,
read 2026-12-02); ``[3p]`` marks a third-party page rather than the network's own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

#: When the sources below were read (the networks notes' compilation).
READ_ON = date(2026, 12, 2)

#: How a network counts a caption's length (see portal/publishing/captions.py).
Counting = Literal["codepoints", "mastodon", "x", "graphemes"]
#: Whether a delivery to the network carries a video: the portal's own page and feed
#: show the appeal's web renditions themselves; a webhook may take one.
MediaNeed = Literal["none", "optional", "required"]


@dataclass(frozen=True)
class Limit(Generic[T]):
    value: T
    source: str
    read_on: date = READ_ON
    verified: bool = True
    note: str = ""


@dataclass(frozen=True)
class NetworkLimits:
    network: str
    label: str
    counting: Counting
    media: MediaNeed
    #: The ``?via=`` channel of the tip link in its captions (portal/services/appeals.py
    #: CHANNELS), so that tips are counted per network.
    via: str
    #: Our choice, not the network's: the renditions to try, best first. Preflight
    #: takes the first one that fits every limit below.
    prefer: tuple[str, ...] = ()
    caption_max: Limit[int] | None = None
    #: A second ceiling in UTF-8 bytes (Bluesky).
    caption_max_bytes: Limit[int] | None = None
    #: What a link counts as, whatever its length (Mastodon, X's t.co).
    url_length: Limit[int] | None = None
    hashtags_max: Limit[int] | None = None
    content_types: Limit[tuple[str, ...]] | None = None
    duration_min_s: Limit[float] | None = None
    duration_max_s: Limit[float] | None = None
    size_max: Limit[int] | None = None
    #: Width divided by height.
    aspect_min: Limit[float] | None = None
    aspect_max: Limit[float] | None = None
    fps_min: Limit[float] | None = None
    fps_max: Limit[float] | None = None
    width_min: Limit[int] | None = None
    height_min: Limit[int] | None = None
    width_max: Limit[int] | None = None
    height_max: Limit[int] | None = None
    #: Width times height (Mastodon's video_matrix_limit).
    pixels_max: Limit[int] | None = None
    #: Posts (or videos) per rolling 24 hours for one account.
    daily_cap: Limit[int] | None = None

    def sourced(self) -> list[tuple[str, Limit[object]]]:
        """Every limit set, by field name, for the pages that show them with their
        sources."""
        out: list[tuple[str, Limit[object]]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Limit):
                out.append((f.name, value))
        return out


MB = 1024 * 1024
_WEB = ("web_1080", "web_720", "web_480")

_FB_CAPTION = Limit(
    63206,
    "not in the retrieved Graph API pages; the commonly cited Page post length [3p]",
    verified=False,
    note="description and title lengths are unverified (networks notes §1a)",
)

LIMITS: dict[str, NetworkLimits] = {
    "portal": NetworkLimits(
        network="portal",
        via="web",
        label="This portal (appeal page and Atom feed)",
        counting="codepoints",
        media="none",
    ),
    "webhook": NetworkLimits(
        network="webhook",
        via="webhook",
        label="Signed webhook",
        counting="codepoints",
        media="optional",
        prefer=_WEB,
    ),
    "facebook": NetworkLimits(
        network="facebook",
        via="facebook",
        label="Facebook Page video",
        counting="codepoints",
        media="required",
        prefer=(*_WEB, "square", "vertical"),
        caption_max=_FB_CAPTION,
        content_types=Limit(
            ("video/mp4", "video/quicktime"),
            "developers.facebook.com/docs/graph-api/video-uploads (formats list; mp4, mov)",
        ),
        duration_max_s=Limit(
            4 * 3600.0,
            "developers.facebook.com/docs/graph-api/video-uploads (older versions: resumable "
            "upload up to 4 h)",
            verified=False,
            note="read from an older version of the page",
        ),
        size_max=Limit(
            10 * 1024 * MB,
            "developers.facebook.com/docs/graph-api/video-uploads (older versions: resumable "
            "upload up to 10 GB)",
            verified=False,
            note="read from an older version of the page",
        ),
        aspect_min=Limit(9 / 16, "developers.facebook.com/docs/video-api/guides/publishing"),
        aspect_max=Limit(16 / 9, "developers.facebook.com/docs/video-api/guides/publishing"),
    ),
    "facebook_reel": NetworkLimits(
        network="facebook_reel",
        via="facebook",
        label="Facebook Page Reel",
        counting="codepoints",
        media="required",
        prefer=("vertical",),
        caption_max=_FB_CAPTION,
        content_types=Limit(
            ("video/mp4",), "developers.facebook.com/docs/video-api/guides/reels-publishing"
        ),
        duration_min_s=Limit(3.0, "developers.facebook.com/docs/video-api/guides/reels-publishing"),
        duration_max_s=Limit(
            90.0, "developers.facebook.com/docs/video-api/guides/reels-publishing"
        ),
        size_max=Limit(
            1024 * MB,
            "ayrshare.com/docs/media-guidelines/facebook_pages [3p]",
            verified=False,
            note="sources differ: 1 GB or 2 GB; the lower is used",
        ),
        # "9:16": a rendition a pixel off the exact ratio (an odd source size rounded
        # to even dimensions) is still 9:16.
        aspect_min=Limit(0.56, "developers.facebook.com/docs/video-api/guides/reels-publishing"),
        aspect_max=Limit(0.5652, "developers.facebook.com/docs/video-api/guides/reels-publishing"),
        fps_min=Limit(24.0, "developers.facebook.com/docs/video-api/guides/reels-publishing"),
        fps_max=Limit(60.0, "developers.facebook.com/docs/video-api/guides/reels-publishing"),
        width_min=Limit(540, "developers.facebook.com/docs/video-api/guides/reels-publishing"),
        height_min=Limit(960, "developers.facebook.com/docs/video-api/guides/reels-publishing"),
        # Only the portal's own count of what it sent stands behind this cap (preflight's
        # daily_cap_problem when a post is scheduled, services/deliveries.py cap_reached
        # at send time). Facebook documents no way to read a Page's current Reels usage:
        # the reels-publishing guide's "Rate Limit" section gives the 30 per 24-hour
        # moving period, says it "is enforced on the POST /{page_id}/video_reels
        # endpoint", and "recommends that your app also enforces the publishing rate
        # limit"; neither the guide nor the networks notes (read 2026-12-02) name a Page
        # counterpart of Instagram's content_publishing_limit, which is an IG user's
        # edge only. Reels the Page published by other means are therefore not counted;
        # Facebook's own refusal on video_reels is the backstop (channels/graph.py
        # classify_error: its error code is not documented, so it reaches the post as a
        # refusal with Facebook's message).
        daily_cap=Limit(
            30,
            "developers.facebook.com/docs/video-api/guides/reels-publishing (per Page, 24-hour "
            "moving window)",
            note="counted by the portal: Facebook documents no endpoint that reads a "
            "Page's Reels usage",
        ),
    ),
    "instagram": NetworkLimits(
        network="instagram",
        via="instagram",
        label="Instagram Reel",
        counting="codepoints",
        media="required",
        prefer=("vertical", "square"),
        caption_max=Limit(2200, "help.swat.io [3p]"),
        hashtags_max=Limit(30, "help.swat.io [3p]"),
        content_types=Limit(
            ("video/mp4", "video/quicktime"),
            "developers.facebook.com/docs/instagram-api/reference/ig-user/media (Reels specs)",
        ),
        duration_min_s=Limit(
            3.0, "developers.facebook.com/docs/instagram-api/reference/ig-user/media"
        ),
        duration_max_s=Limit(
            15 * 60.0, "developers.facebook.com/docs/instagram-api/reference/ig-user/media"
        ),
        size_max=Limit(
            300 * MB,
            "ayrshare [3p] (300 MB) vs circleboom [3p] (1 GB)",
            verified=False,
            note="sources differ; the lower is used",
        ),
        aspect_min=Limit(
            0.01, "developers.facebook.com/docs/instagram-api/reference/ig-user/media"
        ),
        aspect_max=Limit(
            10.0, "developers.facebook.com/docs/instagram-api/reference/ig-user/media"
        ),
        fps_min=Limit(23.0, "developers.facebook.com/docs/instagram-api/reference/ig-user/media"),
        fps_max=Limit(60.0, "developers.facebook.com/docs/instagram-api/reference/ig-user/media"),
        width_max=Limit(1920, "developers.facebook.com/docs/instagram-api/reference/ig-user/media"),
        daily_cap=Limit(
            50,
            "developers.facebook.com/docs/instagram-api/reference/ig-user/content_publishing_limit",
            verified=False,
            note="older versions say 25, a guide is quoted as 100; the account's "
            "content_publishing_limit answer is authoritative",
        ),
    ),
    "mastodon": NetworkLimits(
        network="mastodon",
        via="mastodon",
        label="Mastodon",
        counting="mastodon",
        media="required",
        prefer=(*_WEB, "square"),
        caption_max=Limit(
            500,
            "docs.joinmastodon.org user/posting.md (default; per instance in "
            "/api/v2/instance configuration.statuses.max_characters)",
        ),
        url_length=Limit(23, "docs.joinmastodon.org user/posting.md (links count as 23)"),
        content_types=Limit(
            ("video/mp4", "video/quicktime", "video/webm"),
            "docs.joinmastodon.org user/posting.md (MP4, M4V, MOV, WebM)",
        ),
        size_max=Limit(
            99 * MB,
            "docs.joinmastodon.org user/posting.md (99 MB; entities/Instance.md example "
            "video_size_limit 103809024)",
        ),
        fps_max=Limit(120.0, "docs.joinmastodon.org entities/Instance.md video_frame_rate_limit"),
        pixels_max=Limit(8294400, "docs.joinmastodon.org entities/Instance.md video_matrix_limit"),
    ),
    "x": NetworkLimits(
        network="x",
        via="x",
        label="X",
        counting="x",
        media="required",
        prefer=("web_720", "square", "web_480"),
        caption_max=Limit(280, "docs.x.com posts lookup introduction (280 weighted characters)"),
        url_length=Limit(23, "twitter-text configuration v3 transformedURLLength (t.co)"),
        content_types=Limit(
            ("video/mp4", "video/quicktime"), "X media best practices via ayrshare [3p]"
        ),
        duration_min_s=Limit(0.5, "X media best practices via ayrshare [3p]"),
        duration_max_s=Limit(140.0, "X media best practices via ayrshare [3p]"),
        size_max=Limit(512 * MB, "X media best practices via ayrshare [3p]"),
        aspect_min=Limit(1 / 3, "X media best practices via ayrshare [3p]"),
        aspect_max=Limit(3.0, "X media best practices via ayrshare [3p]"),
        fps_max=Limit(60.0, "X media best practices via ayrshare [3p]"),
        width_max=Limit(1280, "X media best practices via ayrshare [3p]"),
        height_max=Limit(1024, "X media best practices via ayrshare [3p]"),
        daily_cap=Limit(
            100,
            "tweepy discussion #2129 [3p] (Basic tier, per user)",
            verified=False,
            note="depends on the API tier; POST /2/tweets is also 200 per 15 min per user",
        ),
    ),
    "bluesky": NetworkLimits(
        network="bluesky",
        via="bluesky",
        label="Bluesky",
        counting="graphemes",
        media="required",
        prefer=(*_WEB, "square"),
        caption_max=Limit(
            300, "bluesky-social/atproto lexicons/app/bsky/feed/post.json (graphemes)"
        ),
        caption_max_bytes=Limit(
            3000, "bluesky-social/atproto lexicons/app/bsky/feed/post.json (maxLength bytes)"
        ),
        content_types=Limit(
            ("video/mp4",), "bluesky-social/atproto lexicons/app/bsky/embed/video.json"
        ),
        duration_max_s=Limit(
            180.0,
            "press and [3p] (schedulethreads.com)",
            verified=False,
            note="app.bsky.video.getUploadLimits is authoritative",
        ),
        size_max=Limit(
            50 * MB,
            "bluesky-social/bsky-docs advanced-guides/rate-limits.md (PDS blob limit)",
            verified=False,
            note="the embed allows 300 MB; the PDS blob limit is the lower, so it is used",
        ),
        daily_cap=Limit(
            25,
            "press and [3p] (digitalmarketreports.com)",
            verified=False,
            note="videos per day; app.bsky.video.getUploadLimits is authoritative",
        ),
    ),
}


def limits_for(network: str) -> NetworkLimits:
    """The network's limits; ``KeyError`` for a network this portal does not post to."""
    return LIMITS[network]
