"""Captions: counted as each network counts them, cut without breaking a character.

Expected counts are worked out by hand from each network's rule (see
portal/publishing/counting.py for the sources), not by calling the counter twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.caption_models import CaptionTemplate
from portal.publishing.captions import (
    DEFAULT_HASHTAGS,
    AppealFields,
    Template,
    caption_for,
    fields_for,
    fit_caption,
    render_caption,
    shorten,
    template_for,
    template_problems,
)
from portal.publishing.counting import count_bytes, count_length, graphemes
from portal.publishing.limits import limits_for
from tests.portal.publishing.plan_helpers import social_appeal

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points
FLAG = "\U0001f1eb\U0001f1f7"  # regional indicators F, R
THUMB = "\U0001f44d\U0001f3fd"  # thumbs up, medium skin tone
E_ACUTE = "e\u0301"  # e + combining acute (NFC composes it to U+00E9)
Q_ACUTE = "q\u0301"  # no precomposed form
SHORT_URL = "https://tattletale.example/appeals/k3J9x?via=bluesky"
LONG_URL = "https://tattletale.example/appeals/" + "a" * 150 + "?via=mastodon"  # 198 chars


@pytest.mark.parametrize(
    ("text", "mastodon", "x", "bluesky", "codepoints"),
    [
        ("hello", 5, 5, 5, 5),
        (FAMILY, 1, 2, 1, 7),
        (FLAG, 1, 2, 1, 2),
        (THUMB, 1, 2, 1, 2),
        (E_ACUTE, 1, 1, 1, 2),
        (Q_ACUTE, 1, 2, 1, 2),
        ("日本語", 3, 6, 3, 3),
        (LONG_URL, 23, 23, 198, 198),
        # "Visit " 6 + link 23 + "." 1: the full stop is not part of the link.
        ("Visit " + LONG_URL + ".", 30, 30, 205, 205),
        # Mastodon counts a remote mention by its user name only: "@alice hi".
        ("@alice@example.social hi", 9, 24, 24, 24),
        # A bare domain: X links it (23); Mastodon does not.
        ("see example.org", 15, 27, 15, 15),
    ],
)
def test_count_length_per_network(
    text: str, mastodon: int, x: int, bluesky: int, codepoints: int
) -> None:
    assert count_length(text, "mastodon") == mastodon
    assert count_length(text, "x") == x
    assert count_length(text, "graphemes") == bluesky
    assert count_length(text, "codepoints") == codepoints


def test_count_bytes_of_a_zwj_sequence() -> None:
    # Four 4-byte emoji and three 3-byte joiners.
    assert count_bytes(FAMILY) == 25


def test_shorten_never_splits_a_grapheme() -> None:
    value = E_ACUTE * 20
    cut = shorten(value, 10)
    assert cut == E_ACUTE * 9 + "…"
    family = shorten(FAMILY * 5, 3)
    assert family == FAMILY * 2 + "…"


def test_shorten_prefers_a_word_boundary_near_the_end() -> None:
    assert shorten("the quick brown fox jumps", 18) == "the quick brown…"
    assert shorten("short", 10) == "short"
    assert shorten("anything", 1) == ""


def _item(summary: str, title: str = "Robbery", url: str = LONG_URL) -> AppealFields:
    return AppealFields(
        case_number="26-1", title=title, summary=summary, when="", where="", tip_url=url
    )


def test_fit_caption_bluesky_cuts_accents_at_graphemes_and_keeps_the_link() -> None:
    caption = fit_caption(Template(), [_item(E_ACUTE * 400, url=SHORT_URL)], limits_for("bluesky"))
    assert caption.cut and caption.fits
    assert caption.length <= 300
    # Every kept "e" still carries its accent: the cut fell between graphemes.
    summary_line = next(line for line in caption.text.splitlines() if line.startswith("e"))
    assert summary_line.endswith("…")
    assert summary_line[:-1] == E_ACUTE * (len(summary_line[:-1]) // 2)
    assert SHORT_URL in caption.text
    assert DEFAULT_HASHTAGS in caption.text


def test_fit_caption_bluesky_byte_ceiling_with_emoji() -> None:
    # With a bare template 300 graphemes would hold ~245 families, 6,000 bytes and
    # more: the 3,000-byte ceiling decides, ~117 families (25 bytes each) in.
    template = Template(item="{summary} {tip_url}", closing="", hashtags="")
    caption = fit_caption(template, [_item(FAMILY * 300, url=SHORT_URL)], limits_for("bluesky"))
    assert caption.fits and caption.cut
    assert 2950 <= caption.byte_length <= 3000
    assert caption.length < 200
    # No family lost a member: three joiners for every boy that ends a family.
    assert caption.text.count("\u200d") == 3 * caption.text.count("\U0001f466")
    assert caption.text.endswith(SHORT_URL)


def test_fit_caption_mastodon_counts_the_long_link_as_23() -> None:
    caption = fit_caption(Template(), [_item("word " * 200)], limits_for("mastodon"))
    assert caption.fits and caption.cut
    assert 470 <= caption.length <= 500
    assert LONG_URL in caption.text
    # Counted by characters the link alone would be 198: without the 23 rule far
    # less summary would fit.
    assert len(caption.text) > 500


def test_fit_caption_x_too_long_template_reports_overflow() -> None:
    template = Template(item="{title} {tip_url} " + "b" * 300, closing="", hashtags="")
    caption = fit_caption(template, [_item("text")], limits_for("x"))
    assert not caption.fits
    # Summary and title gone: link 23 + " " 1 + 300 = 324.
    assert caption.length == 324
    assert caption.over_by == 44


def test_render_caption_leaves_out_empty_lines_and_unknown_fields() -> None:
    template = Template(
        item="{title}\nWhere: {where}\n{title.__class__} {tip_url}",
        closing="Say no names. {hashtags}",
        hashtags="#A",
    )
    text = render_caption(template, [_item("", url="https://t.example/x")])
    assert text == "Robbery\n{title.__class__} https://t.example/x\n\nSay no names. #A"


def test_template_problems_names_unknown_and_missing_fields() -> None:
    assert template_problems("{title} {colour}", ("title", "tip_url"), ("tip_url",)) == [
        "{colour} is not a field here (fields: {title}, {tip_url})",
        "the template must contain {tip_url}",
    ]
    assert template_problems("{title} {tip_url}", ("title", "tip_url"), ("tip_url",)) == []


def test_default_caption_asks_for_no_names_and_carries_the_tag(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    agency.timezone = "America/New_York"
    appeal = social_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number="26-40",
        occurred_at=datetime(2026, 3, 10, 2, 30, tzinfo=UTC),
    )
    caption = caption_for([appeal], "mastodon", agency)
    assert "Please don't name anyone in the comments: use the tip link" in caption.text
    assert caption.text.endswith("#TattletaleTuesday")
    assert f"/appeals/{appeal.public_id}?via=mastodon" in caption.text
    # 02:30 UTC on 10 March is 22:30 EDT on Monday 9 March (DST began on 8 March).
    assert "When: Mon 9 Mar 2026, 22:30" in caption.text
    assert "Where: 742 Evergreen Terrace" in caption.text
    assert "Case 26-40: Robbery at the corner shop" in caption.text
    reel = fields_for(appeal, "facebook_reel", agency)
    assert reel.tip_url.endswith("?via=facebook")


def test_template_for_prefers_network_then_agency_then_default(
    app: Flask, agency: Agency, other_agency: Agency
) -> None:
    assert template_for(agency, "x") == Template()
    db.session.add_all(
        [
            CaptionTemplate(
                agency_id=agency.id, network="", item="A {tip_url}", closing="", hashtags="#a"
            ),
            CaptionTemplate(
                agency_id=agency.id, network="x", item="X {tip_url}", closing="", hashtags="#x"
            ),
        ]
    )
    db.session.commit()
    assert template_for(agency, "x").item == "X {tip_url}"
    assert template_for(agency, "mastodon").item == "A {tip_url}"
    assert template_for(other_agency, "x") == Template()


def test_graphemes_of_mixed_text() -> None:
    assert graphemes("a" + FAMILY + E_ACUTE) == ["a", FAMILY, E_ACUTE]
