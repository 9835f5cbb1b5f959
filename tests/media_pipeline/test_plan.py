"""EditPlan: JSON round trip, strict parsing, and validation against a probed source."""

from __future__ import annotations

import json

import pytest

from media_pipeline import BlurRegion, Caption, EditPlan, InvalidPlan, Watermark
from media_pipeline.probe import MediaInfo, VideoStream


def _info(duration: float = 10.0, width: int = 640, height: int = 360) -> MediaInfo:
    video = VideoStream(0, "h264", "High", width, height, width, height, 0, "1:1", "yuv420p",
                        30.0, False, "progressive", False)  # fmt: skip
    return MediaInfo("/x.mp4", "mov", "mov,mp4", duration, 1000, None, 1, video, None, 0)


FULL = EditPlan(
    trim_start=1.5,
    trim_end=8.0,
    regions=(
        BlurRegion(10, 20, 100, 50, 2.0, 3.5).as_track(),
        BlurRegion(whole_frame=True, start=7.0).as_track(),
    ),
    audio="mute",
    caption=Caption.for_appeal("24-0113", "https://tips.example.org/c/abc"),
    watermark=Watermark("/srv/agency/logo.png", "bottom-left", 0.2),
    poster_time=2.0,
)


def test_plan_round_trips_through_json() -> None:
    assert EditPlan.from_json(FULL.to_json()) == FULL
    assert EditPlan.from_json(EditPlan().to_json()) == EditPlan()


def test_plan_caption_for_appeal_has_case_prompt_and_url() -> None:
    assert FULL.caption is not None
    assert FULL.caption.lines == (
        "Case 24-0113",
        "Do you recognize this person?",
        "https://tips.example.org/c/abc",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"surprise": 1}, "surprise"),
        ({"trim_start": "1"}, "trim_start"),
        ({"trim_start": True}, "trim_start"),
        ({"audio": "loud"}, "audio"),
        ({"blur": {"x": 1}}, "blur"),
        ({"blur": [{"x": 1.5, "y": 0, "width": 10, "height": 10}]}, "blur[0].x"),
        ({"blur": [{"x": 0, "y": 0, "width": 10, "height": 10, "evil": 1}]}, "blur[0].evil"),
        ({"caption": {"lines": "one"}}, "caption.lines"),
        ({"caption": {"lines": ["a\nb"]}}, "caption.lines[0]"),
        ({"caption": {"lines": ["\u202eevil"]}}, "caption.lines[0]"),
        ({"caption": {"lines": ["x" * 81]}}, "caption.lines[0]"),
        ({"watermark": {"path": "/l.png", "corner": "middle"}}, "watermark.corner"),
        ({"version": 3}, "version"),
        ({"trim_start": -1}, "trim_start"),
        ({"trim_start": 2, "trim_end": 2.5}, "trim_end"),
    ],
)
def test_plan_from_json_names_the_bad_field(change: dict[str, object], field: str) -> None:
    data = EditPlan().to_dict() | change
    with pytest.raises(InvalidPlan) as caught:
        EditPlan.from_json(json.dumps(data))
    assert caught.value.field == field


def test_plan_from_json_rejects_non_json() -> None:
    with pytest.raises(InvalidPlan, match="not valid JSON"):
        EditPlan.from_json("{")


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        (EditPlan(trim_start=10.5), "trim_start"),
        (EditPlan(trim_end=12.0), "trim_end"),
        (EditPlan(trim_start=9.5), "trim_end"),
        (EditPlan(regions=(BlurRegion(600, 0, 50, 10).as_track(),)), "regions[0].keyframes[0].w"),
        (EditPlan(regions=(BlurRegion(0, 350, 10, 20).as_track(),)), "regions[0].keyframes[0].h"),
        (
            EditPlan(regions=(BlurRegion(0, 0, 10, 10, start=9.0).as_track(),), trim_end=8.0),
            "regions[0].start",
        ),
        (
            EditPlan(regions=(BlurRegion(0, 0, 10, 10, end=1.0).as_track(),), trim_start=2.0),
            "regions[0].end",
        ),
        (EditPlan(trim_start=2.0, trim_end=4.0, poster_time=2.0), "poster_time"),
        (EditPlan(watermark=Watermark("/nonexistent/logo.png")), "watermark.path"),
    ],
)
def test_plan_validate_against_names_the_field_that_does_not_fit(
    plan: EditPlan, field: str
) -> None:
    with pytest.raises(InvalidPlan) as caught:
        plan.validate_against(_info())
    assert caught.value.field == field


def test_plan_validate_against_allows_out_point_one_frame_past_the_end() -> None:
    EditPlan(trim_end=10.02).validate_against(_info())


def test_plan_clip_range_and_default_poster_is_middle_of_clip() -> None:
    plan = EditPlan(trim_start=2.0, trim_end=6.0)
    assert plan.clip_range(_info()) == (2.0, 6.0)
    assert plan.poster_offset(_info()) == 2.0
    assert EditPlan().poster_offset(_info(duration=10.0)) == 5.0


@pytest.mark.parametrize(
    ("char", "message"),
    [
        ("\ud800", "must not contain an unpaired surrogate (U+D800)"),
        ("\udfff", "must not contain an unpaired surrogate (U+DFFF)"),
        ("\ue000", "must not contain a private-use character (U+E000)"),
        ("\U000f0000", "must not contain a private-use character (U+F0000)"),
        ("\u0378", "must not contain an unassigned character (U+0378)"),
        ("\x00", "must not contain control characters"),
        ("\u200b", "must not contain control characters"),
        ("\u2029", "must not contain control characters"),
    ],
)
def test_plan_caption_refuses_surrogates_private_use_and_unassigned(
    char: str, message: str
) -> None:
    plan = EditPlan(caption=Caption(("Case 24-0113", f"Call us{char}")))
    with pytest.raises(InvalidPlan) as caught:
        plan.validate()
    assert caught.value.field == "caption.lines[1]"
    assert message in str(caught.value)


def test_plan_caption_from_json_refuses_an_escaped_lone_surrogate() -> None:
    text = '{"caption": {"lines": ["Case \\ud800"]}}'
    with pytest.raises(InvalidPlan) as caught:
        EditPlan.from_json(text)
    assert caught.value.field == "caption.lines[0]"


def test_plan_caption_accepts_multilingual_text() -> None:
    lines = ("Caso 24-0113 — ¿lo reconoce?", "你认识这个人吗？ 👀", "هل تعرف هذا الشخص؟")
    EditPlan(caption=Caption(lines)).validate()
