"""Preflight: the rendition each network gets, the caption it gets, and what must
change when nothing fits. Expected picks follow from the cuts' sizes stated in
plan_helpers and the limits in shared/networks.md, worked out by hand below."""

from __future__ import annotations

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Agency, AppealStatus, Role, User
from portal.models.base import utcnow
from portal.publishing.caption_models import CaptionTemplate
from portal.publishing.preflight import PreflightFailed, Prepared, prepare_delivery
from tests.portal.publishing.plan_helpers import rendition_named, social_appeal

PORTRAIT_CUTS = (
    ("web_1080", 1080, 1920, 40.0),
    ("web_720", 720, 1280, 20.0),
    ("web_480", 480, 854, 8.0),
    ("square", 1080, 1080, 25.0),
    ("vertical", 1080, 1920, 30.0),
)


def _people(users: dict[Role, User]) -> tuple[User, User]:
    return users[Role.OFFICER], users[Role.SUPERVISOR]


def _short_template(agency: Agency, network: str = "") -> None:
    db.session.add(
        CaptionTemplate(
            agency_id=agency.id,
            network=network,
            item="{title} {tip_url}",
            closing="{hashtags}",
            hashtags="#TattletaleTuesday",
        )
    )
    db.session.commit()


def test_prepare_delivery_mastodon_counts_the_link_as_23(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    _short_template(agency)
    appeal = social_appeal(agency, *_people(users), number="26-1", title="Robbery")
    prepared = prepare_delivery("mastodon", [appeal], agency)
    assert isinstance(prepared, Prepared)
    link = f"/appeals/{appeal.public_id}?via=mastodon"
    assert link in prepared.text
    # "Robbery" 7 + space 1 + link 23 + "\n\n" 2 + "#TattletaleTuesday" 18.
    assert prepared.counted_length == 51
    assert prepared.limit == 500
    # The first preferred cut (web_1080, 40 MB) is under Mastodon's 99 MB.
    assert prepared.rendition_id == rendition_named(appeal, "web_1080").id


def test_prepare_delivery_reel_takes_the_vertical_cut(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(agency, *_people(users), number="26-2", durations=(30.0,))
    prepared = prepare_delivery("facebook_reel", [appeal], agency)
    assert prepared.rendition_id == rendition_named(appeal, "vertical").id
    prepared = prepare_delivery("instagram", [appeal], agency)
    assert prepared.rendition_id == rendition_named(appeal, "vertical").id


def test_prepare_delivery_x_takes_the_clip_within_140_seconds(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(agency, *_people(users), number="26-3", durations=(200.0, 100.0))
    prepared = prepare_delivery("x", [appeal], agency)
    # Clip 1 runs 200 s (X: at most 140 s); clip 2's web_720 (1280x720) fits.
    assert prepared.rendition_id == rendition_named(appeal, "web_720", clip=1).id
    assert prepared.limit == 280


def test_prepare_delivery_x_portrait_source_takes_the_cut_within_1280x1024(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(agency, *_people(users), number="26-4", cuts=PORTRAIT_CUTS)
    # web_720 is 720x1280 and square 1080x1080: both taller than 1024. web_480 fits.
    prepared = prepare_delivery("x", [appeal], agency)
    assert prepared.rendition_id == rendition_named(appeal, "web_480").id


def test_prepare_delivery_bluesky_skips_a_cut_over_50_mb(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    cuts = (("web_1080", 1920, 1080, 60.0), ("web_720", 1280, 720, 20.0))
    appeal = social_appeal(agency, *_people(users), number="26-5", cuts=cuts)
    prepared = prepare_delivery("bluesky", [appeal], agency)
    assert prepared.rendition_id == rendition_named(appeal, "web_720").id
    assert prepared.limit == 300


def test_prepare_delivery_reel_too_long_says_to_trim(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(agency, *_people(users), number="26-6", durations=(120.0,))
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("facebook_reel", [appeal], agency)
    (problem,) = failed.value.problems
    assert "no video fits Facebook Page Reel" in problem
    assert "it runs 120 s" in problem
    assert "trim the clip to 90 s or less" in problem


def test_prepare_delivery_reel_small_source_and_low_frame_rate(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(
        agency,
        *_people(users),
        number="26-7",
        cuts=(("vertical", 360, 640, 5.0),),
        frame_rate=20.0,
    )
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("facebook_reel", [appeal], agency)
    text = failed.value.problems[0]
    assert "it is 360x640; Facebook Page Reel needs at least 540x960" in text
    assert "it plays at 20 fps; Facebook Page Reel takes 24 to 60 fps" in text


def test_prepare_delivery_missing_cut_says_to_render_it(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(
        agency, *_people(users), number="26-8", cuts=(("web_720", 1280, 720, 5.0),)
    )
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("facebook_reel", [appeal], agency)
    assert (
        "case 26-8, clip 1 has no vertical cut: re-render the version with it"
        in (failed.value.problems[0])
    )


def test_prepare_delivery_refuses_a_revoked_approval(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(agency, *_people(users), number="26-9")
    approval = appeal.clips[0].version.active_approval
    assert approval is not None
    approval.revoked_at = utcnow()
    db.session.commit()
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("mastodon", [appeal], agency)
    assert failed.value.problems == [
        "the appeal of case 26-9: clip 1 (version 1) is no longer approved: have a "
        "supervisor approve it again, or remove it"
    ]


def test_prepare_delivery_refuses_unpublished_and_foreign_appeals(
    app: Flask, agency: Agency, other_agency: Agency, users: dict[Role, User]
) -> None:
    draft = social_appeal(agency, *_people(users), number="26-10", status=AppealStatus.DRAFT)
    foreign = social_appeal(other_agency, *_people(users), number="26-11")
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("mastodon", [draft, foreign], agency)
    assert failed.value.problems == [
        "the appeal of case 26-10 is not published on the portal: publish it first",
        "the appeal of case 26-11 belongs to another agency",
    ]
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("mastodon", [], agency)
    assert failed.value.problems == ["choose at least one appeal for the post"]


def test_prepare_delivery_caption_template_too_long_says_by_how_much(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    db.session.add(
        CaptionTemplate(
            agency_id=agency.id,
            network="x",
            item="{title} {tip_url} " + "a" * 260,
            closing="",
            hashtags="",
        )
    )
    db.session.commit()
    appeal = social_appeal(agency, *_people(users), number="26-12", title="Robbery")
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("x", [appeal], agency)
    # With the title cut away the line keeps its link: link 23 + " " 1 + 260 = 284.
    assert failed.value.problems == [
        "the caption is 284 long as X counts it, over its 280 by 4 even with the summary "
        "and title cut: shorten the X caption template by 4"
    ]


def test_prepare_delivery_portal_sends_no_video_and_has_no_limit(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(agency, *_people(users), number="26-13")
    prepared = prepare_delivery("portal", [appeal], agency)
    assert prepared.rendition_id is None
    assert prepared.limit == 0


def test_prepare_delivery_unknown_network(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = social_appeal(agency, *_people(users), number="26-14")
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("myspace", [appeal], agency)
    assert failed.value.problems == ["'myspace' is not a network this portal posts to"]


def test_prepare_delivery_instagram_hashtag_cap(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    db.session.add(
        CaptionTemplate(
            agency_id=agency.id,
            network="instagram",
            item="{title} {tip_url}",
            closing="{hashtags}",
            hashtags=" ".join(f"#tag{n}" for n in range(32)),
        )
    )
    db.session.commit()
    appeal = social_appeal(agency, *_people(users), number="26-15", durations=(30.0,))
    with pytest.raises(PreflightFailed) as failed:
        prepare_delivery("instagram", [appeal], agency)
    assert failed.value.problems == [
        "the caption has 32 hashtags; Instagram Reel takes at most 30: remove 2"
    ]


def test_daily_cap_problem_counts_the_moving_24_hours(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    import json
    from datetime import UTC, datetime, timedelta

    from portal.publishing.models import Channel, Delivery, DeliveryStatus, Post
    from portal.publishing.preflight import daily_cap_problem

    reel = Channel(
        agency_id=agency.id, network="facebook_reel", name="Reels", credentials=json.dumps({})
    )
    db.session.add(reel)
    db.session.commit()
    slot = datetime(2027, 1, 5, 15, tzinfo=UTC)
    coordinator = users[Role.COORDINATOR]

    def post_at(at: datetime, status: DeliveryStatus = DeliveryStatus.SENT) -> Post:
        post = Post(agency_id=agency.id, slot_at=at, created_by_id=coordinator.id)
        post.deliveries = [Delivery(channel=reel, status=status.value)]
        db.session.add(post)
        return post

    # 29 within the day before, and one failed and one 25 hours away that do not count.
    for minute in range(29):
        post_at(slot - timedelta(hours=23, minutes=minute))
    post_at(slot - timedelta(hours=1), DeliveryStatus.FAILED)
    post_at(slot + timedelta(hours=25))
    db.session.commit()
    assert daily_cap_problem(reel, slot) is None  # 29 of Facebook's 30 reels a day
    post_at(slot + timedelta(hours=23))
    db.session.commit()
    assert daily_cap_problem(reel, slot) == (
        "Reels already has 30 posts within 24 hours of this time and Facebook Page Reel "
        "takes 30 in 24 hours: choose a time a day away from them"
    )
    mastodon = Channel(
        agency_id=agency.id, network="mastodon", name="M", credentials=json.dumps({})
    )
    db.session.add(mastodon)
    db.session.commit()
    assert daily_cap_problem(mastodon, slot) is None  # no daily cap documented
