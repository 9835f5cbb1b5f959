"""Limits: the documented defaults, and the time limit that follows the clip's length."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from media_pipeline import DEFAULT_LIMITS, Limits

DOC = Path(__file__).resolve().parents[2] / "docs" / "media-pipeline.md"

#: The defaults as docs/media-pipeline.md states them.
DOCUMENTED = {
    "timeout_base_s": 600,
    "timeout_per_media_s": 20,
    "stall_timeout_s": 60,
    "heartbeat_interval_s": 5,
    "nice": 10,
    "threads": 0,
    "encoder_threads": 4,
    "probe_timeout_s": 60,
    "memory_bytes": 6 * 1024**3,
}


def _doc_table() -> dict[str, str]:
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", DOC.read_text(), re.MULTILINE)
    return {name: value.strip() for name, value in rows}


def test_limits_defaults_are_the_documented_values() -> None:
    assert {name: getattr(DEFAULT_LIMITS, name) for name in DOCUMENTED} == DOCUMENTED
    table = _doc_table()
    assert table.pop("memory_bytes") == "6 GiB"
    assert {name: float(value) for name, value in table.items()} == {
        name: float(value) for name, value in DOCUMENTED.items() if name != "memory_bytes"
    }


def test_limits_run_timeout_grows_with_the_clip() -> None:
    # A 2-minute clip: 600 s + 20 s per second of clip.
    assert DEFAULT_LIMITS.run_timeout_s(120) == 3000
    assert DEFAULT_LIMITS.run_timeout_s(4 * 3600) == 600 + 20 * 4 * 3600
    assert Limits(timeout_base_s=30, timeout_per_media_s=0).run_timeout_s(7200) == 30


def test_limits_x264_threads_are_always_explicit() -> None:
    assert DEFAULT_LIMITS.x264_threads == 4
    assert Limits(threads=1).x264_threads == 1
    assert Limits(encoder_threads=2).x264_threads == 2


@pytest.mark.parametrize(
    "bad", [{"nice": 20}, {"nice": -1}, {"stall_timeout_s": 0}, {"encoder_threads": 0},
            {"timeout_per_media_s": -1}, {"heartbeat_interval_s": 0}],
)  # fmt: skip
def test_limits_refuse_out_of_range_settings(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Limits(**bad)  # type: ignore[arg-type]
