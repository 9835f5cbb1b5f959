"""``make bench`` (bench/run.py) fails when any benchmark misses a target, and says
which; every benchmark prints its targets in the one form run.py reads."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from media_pipeline import EditPlan
from media_pipeline.probe import MediaInfo, VideoStream

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    # A benchmark runs as a script: its own directory is first on the path (the
    # shared bench/targets.py and bench/stack.py are imported from there).
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _script(path: Path, *lines: str, status: int = 0) -> Path:
    body = "".join(f"print({line!r})\n" for line in lines)
    path.write_text(f"import sys\n{body}sys.exit({status})\n")
    return path


def test_run_fails_and_names_the_missed_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _load("run")
    good = _script(tmp_path / "good_bench.py", "a: 1.000", "target a >= 0.9: met")
    # A benchmark that prints a miss and still exits 0, as media_pipeline_bench did.
    quiet = _script(
        tmp_path / "quiet_bench.py",
        "b: 0.700",
        "target b >= 0.9: NOT MET",
        "target c <= 1.1: met",
    )
    assert run.main([], [good, quiet]) == 1
    out = capsys.readouterr().out
    assert "quiet_bench.py: target missed: b >= 0.9" in out
    assert "good_bench.py" not in out.split("# benchmarks FAILED:")[1]


def test_run_fails_when_a_benchmark_crashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _load("run")
    broken = _script(tmp_path / "broken_bench.py", "half a line", status=2)
    assert run.main([], [broken]) == 1
    assert "broken_bench.py: exited with status 2" in capsys.readouterr().out


def test_run_passes_when_every_target_is_met(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _load("run")
    good = _script(tmp_path / "good_bench.py", "a: 1.000", "target a >= 0.9: met")
    assert run.main([], [good]) == 0
    assert "every benchmark target met" in capsys.readouterr().out


def test_a_figure_not_measured_misses_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    targets = _load("targets")
    bounds = {"tips_lost": ("==", 0.0), "p95_ms": ("<", 50.0), "ratio": (">=", 0.7)}
    assert targets.report(bounds, {"tips_lost": 0.0, "p95_ms": float("nan")}) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("target ")]
    assert lines == [
        "target tips_lost == 0: met",
        "target p95_ms < 50: NOT MET",
        "target ratio >= 0.7: NOT MET",
    ]
    assert targets.report(bounds, {"tips_lost": 0.0, "p95_ms": 49.9, "ratio": 0.7}) == 0


def test_media_pipeline_bench_exits_1_on_a_missed_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("media_pipeline_bench")
    run = _load("run")
    # Every figure on its target but one: the measuring is replaced, the verdict is not.
    met = {
        "pipeline_vs_bare_ffmpeg": 1.0,
        "pipeline_vs_bare_ffmpeg_md5_equal": 1,
        "pipeline_vs_per_rendition": 0.5,
        "poster_sprite_overhead": 1.0,
        "pipeline_peak_rss_mb": 100.0,
    }
    monkeypatch.setattr(bench, "bench_sha256", lambda *a: {"sha256_vs_hashlib": 0.5})
    monkeypatch.setattr(bench, "bench_transcode", lambda *a: {})
    monkeypatch.setattr(bench, "bench_rss", lambda *a: met)
    monkeypatch.setattr(sys, "argv", ["media_pipeline_bench.py", "--keep", str(tmp_path)])
    assert bench.main() == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("target ")]
    assert len(lines) == len(bench.TARGETS)
    assert all(run.TARGET_LINE.match(line) for line in lines), lines
    assert "target sha256_vs_hashlib >= 0.95: NOT MET" in lines


def test_redaction_bench_exits_1_when_tracks_cost_more_than_the_target(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("redaction_bench")
    run = _load("run")
    figures = {"tracked_render_vs_still_render": 1.16}
    monkeypatch.setattr(bench, "make_source", lambda path, seconds: None)
    monkeypatch.setattr(bench, "measure", lambda *a: figures)
    monkeypatch.setattr(bench, "measure_faces", lambda *a: {"face_suggest_vs_duration": 0.5})
    assert bench.main(["--quick"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "target tracked_render_vs_still_render <= 1.15: NOT MET" in lines
    assert all(run.TARGET_LINE.match(line) for line in lines if line.startswith("target "))
    figures["tracked_render_vs_still_render"] = 1.15
    assert bench.main(["--quick"]) == 0


def test_redaction_bench_exits_1_when_face_suggestions_are_slower_than_the_clip(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("redaction_bench")
    figures = {"face_suggest_vs_duration": 1.01}
    monkeypatch.setattr(bench, "measure_faces", lambda *a: figures)
    assert bench.main(["--quick", "--only", "faces"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "target face_suggest_vs_duration <= 1: NOT MET" in lines
    # Only the measurement that ran is judged; a missing figure of it is a miss.
    assert not any("tracked_render" in line for line in lines)
    figures.clear()
    assert bench.main(["--quick", "--only", "faces"]) == 1
    figures["face_suggest_vs_duration"] = 1.0
    assert bench.main(["--quick", "--only", "faces"]) == 0


def test_redaction_bench_moving_tracks_stay_inside_the_picture() -> None:
    bench = _load("redaction_bench")
    video = VideoStream(0, "h264", "High", 1920, 1080, 1920, 1080, 0, "1:1", "yuv420p", 30.0,
                        False, "progressive", False)  # fmt: skip
    info = MediaInfo("/s.mp4", "mov", "mov,mp4", 60.0, 1000, None, 1, video, None, 0)
    moving = bench.moving_tracks(60)
    assert len(moving) == 5 and all(t.moving and len(t.keyframes) == 61 for t in moving)
    for plan in (EditPlan(regions=moving), EditPlan(regions=bench.still_tracks(moving))):
        plan.validate_against(info)


def test_report_writes_every_figure_and_target_with_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    run = _load("run")
    report = _load("report")
    monkeypatch.setattr(report, "run", run)
    good = _script(tmp_path / "good_bench.py", "a: 1.000", "target a >= 0.9: met")
    missed = _script(tmp_path / "missed_bench.py", "b: 0.400", "target b >= 0.5: NOT MET", status=1)
    monkeypatch.setattr(run, "BENCHMARKS", [str(good), str(missed)])
    target = tmp_path / "benchmarks.md"
    assert report.write_report(target, ["--quick"]) == 1
    text = target.read_text()
    assert "| `a >= 0.9` | met | 1.000 |" in text
    assert "| `b >= 0.5` | **missed** | 0.400 |" in text
    assert "missed_bench.py: target missed: b >= 0.5" in text
    assert "**quick**" in text and "`python bench/run.py --quick`" in text
    for fact in ("| CPU |", "| cores |", "| memory |", "| OS |", "| Python |", "| ffmpeg |"):
        assert fact in text
    assert "| PostgreSQL | PostgreSQL " in text or "| PostgreSQL | unavailable" in text


def test_run_times_each_benchmark_and_fails_when_the_whole_run_is_too_long(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _load("run")
    good = _script(tmp_path / "good_bench.py", "a: 1.000", "target a >= 0.9: met")
    outputs: dict[str, list[str]] = {}
    assert run.main(["--quick"], [good], outputs=outputs) == 0
    assert outputs["good_bench.py"][-1].startswith("bench_seconds: ")
    assert outputs["run.py"][1] == "target bench_run_minutes < 10: met"
    # The same run against a bound it cannot meet (the bound is the only thing changed).
    monkeypatch.setitem(run.RUN_MINUTES, "full", 0.0)
    assert run.main([], [good]) == 1
    assert "run.py: target missed: bench_run_minutes < 0" in capsys.readouterr().out
