"""The networks' limits as data: every network the portal posts to, every value with
its source and date, and the values the networks notes (shared/networks.md) state."""

from __future__ import annotations

from datetime import date

from portal.publishing.limits import LIMITS, limits_for

MB = 1024 * 1024


def test_limits_cover_every_network() -> None:
    assert set(LIMITS) == {
        "portal",
        "webhook",
        "facebook",
        "facebook_reel",
        "instagram",
        "mastodon",
        "x",
        "bluesky",
    }


def test_limits_every_value_has_a_source_and_date() -> None:
    for network in LIMITS.values():
        for name, limit in network.sourced():
            assert limit.source.strip(), f"{network.network}.{name} has no source"
            assert isinstance(limit.read_on, date)
            if not limit.verified:
                assert limit.note.strip(), f"{network.network}.{name}: unverified, say why"


def test_limits_values_from_the_networks_notes() -> None:
    mastodon = limits_for("mastodon")
    assert (mastodon.caption_max and mastodon.caption_max.value) == 500
    assert (mastodon.url_length and mastodon.url_length.value) == 23
    assert (mastodon.size_max and mastodon.size_max.value) == 103809024
    x = limits_for("x")
    assert (x.caption_max and x.caption_max.value) == 280
    assert (x.duration_max_s and x.duration_max_s.value) == 140
    assert (x.width_max and x.width_max.value, x.height_max and x.height_max.value) == (
        1280,
        1024,
    )
    reel = limits_for("facebook_reel")
    assert (reel.duration_min_s and reel.duration_min_s.value) == 3
    assert (reel.duration_max_s and reel.duration_max_s.value) == 90
    assert (reel.daily_cap and reel.daily_cap.value) == 30
    assert reel.prefer == ("vertical",)
    bluesky = limits_for("bluesky")
    assert (bluesky.caption_max and bluesky.caption_max.value) == 300
    assert (bluesky.caption_max_bytes and bluesky.caption_max_bytes.value) == 3000
    assert bluesky.counting == "graphemes"
    instagram = limits_for("instagram")
    assert (instagram.caption_max and instagram.caption_max.value) == 2200
    assert (instagram.size_max and instagram.size_max.verified) is False


def test_limits_tip_links_name_a_known_channel() -> None:
    from portal.services.appeals import CHANNELS

    for network in LIMITS.values():
        assert network.via == "web" or network.via in CHANNELS, network.network
