"""python -m media_pipeline: exit codes 0/1/2 and the one-line ``rejected:`` format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from media_pipeline.__main__ import main

from .conftest import Corpus, ffprobe_json


def _stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_probe_prints_media_info_json(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", str(corpus("rotated_phone"))]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["video"]["display_width"] == 240 and data["container"] == "mov"


def test_cli_probe_rejects_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    playlist = tmp_path / "clip.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n")
    assert main(["probe", str(playlist)]) == 2
    assert (
        _stderr_line(capsys)
        == "rejected: playlists (HLS/M3U) are not accepted; upload the video file itself"
    )


def test_cli_module_entry_point_runs_as_a_process(tmp_path: Path) -> None:
    empty = tmp_path / "e.mp4"
    empty.touch()
    done = subprocess.run(
        [sys.executable, "-m", "media_pipeline", "probe", str(empty)],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout, done.stderr) == (2, "", "rejected: the file is empty\n")


def test_cli_process_writes_outputs_and_manifest(
    corpus: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main([
        "process", str(corpus("h264_mp4")), "--out", str(out), "--trim", "0.5-2",
        "--blur", "10,10,50,40@0.5-1.5", "--blur", "all@1.8-2", "--strip-audio",
        "--caption", "Case 24-7", "--profiles", "web_480,poster,sprite", "--quiet",
    ])  # fmt: skip
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [o["file"] for o in manifest["outputs"]] == [
        "web_480.mp4",
        "poster.jpg",
        "sprite.jpg",
        "sprite.vtt",
    ]
    assert manifest["plan"]["audio"] == "strip" and len(manifest["plan"]["regions"]) == 2
    assert [s["codec_type"] for s in ffprobe_json(out / "web_480.mp4")["streams"]] == ["video"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("\t")[0] == "web_480.mp4"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--trim", "5"], "rejected: --trim must be START-END in seconds, e.g. 1.5-12"),
        (["--trim", "0-9"], "rejected: trim_end: 9 s is after the end of the video (3 s)"),
        (
            ["--blur", "1,2,3"],
            "rejected: --blur must be X,Y,W,H or X,Y,W,H@START-END (or all[@START-END])",
        ),
        (
            ["--blur", "300,0,50,50"],
            "rejected: regions[0].keyframes[0].w: the box goes past the right edge (320 px)",
        ),
        (
            ["--profiles", "web_4k"],
            "rejected: unknown profile 'web_4k' "
            "(known: web_1080, web_720, web_480, square, vertical, poster, sprite)",
        ),
        (
            ["--caption", "a\x07b"],
            "rejected: caption.lines[0]: must not contain control characters",
        ),
        (
            ["--strip-audio", "--mute"],
            "rejected: argument --mute: not allowed with argument --strip-audio",
        ),
    ],
)
def test_cli_process_rejects_bad_input_with_exit_2(
    corpus: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    assert (
        main(["process", str(corpus("h264_mp4")), "--out", str(tmp_path / "o"), "--quiet", *args])
        == 2
    )
    assert _stderr_line(capsys) == reason


def test_cli_process_rejects_hostile_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "x.mp4"
    script.write_text("ffconcat version 1.0\nfile '/etc/passwd'\n")
    assert main(["process", str(script), "--out", str(tmp_path / "o")]) == 2
    assert (
        _stderr_line(capsys)
        == "rejected: ffmpeg concat scripts are not accepted; upload the video file itself"
    )
    assert not (tmp_path / "o").exists()


def test_cli_process_failure_exits_1(
    corpus: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "process",
            str(corpus("long_10s")),
            "--out",
            str(tmp_path / "o"),
            "--timeout",
            "0.2",
            "--quiet",
        ]
    )
    assert code == 1
    assert _stderr_line(capsys) == "error: processing took longer than the 0.2 s limit"
