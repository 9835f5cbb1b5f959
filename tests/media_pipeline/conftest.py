"""Fixtures for the media pipeline: a corpus of real-world and hostile files made with
ffmpeg, and small helpers to inspect outputs (the S3 server is in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from media_pipeline.profiles import DEFAULT_PROFILES, Profile, VideoProfile

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"

#: The default profiles at the fastest preset that still writes High profile.
FAST_PROFILES: tuple[Profile, ...] = tuple(
    dataclasses.replace(p, preset="superfast") if isinstance(p, VideoProfile) else p
    for p in DEFAULT_PROFILES
)


def run_ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-v", "error", "-y", *args], check=True)


def ffprobe_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-of", "json", "-show_format", "-show_streams", os.fspath(path)],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


def video_stream(path: str | os.PathLike[str]) -> dict[str, Any]:
    return next(s for s in ffprobe_json(path)["streams"] if s["codec_type"] == "video")


def top_level_atoms(path: str | os.PathLike[str]) -> list[str]:
    """The MP4 top-level box types in file order (to check moov before mdat)."""
    atoms = []
    with open(path, "rb") as f:
        while header := f.read(8):
            size, kind = struct.unpack(">I4s", header)
            atoms.append(kind.decode("latin-1"))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
                f.seek(size - 16, 1)
            elif size == 0:
                break
            else:
                f.seek(size - 8, 1)
    return atoms


_TESTSRC = "testsrc2=s={size}:r={rate}:d={duration}"
_SINE = "sine=frequency=440:sample_rate=44100:d={duration}"


def _av(
    size: str = "320x240", rate: int = 30, duration: float = 2, audio: bool = True
) -> list[str]:
    args = ["-f", "lavfi", "-i", _TESTSRC.format(size=size, rate=rate, duration=duration)]
    if audio:
        args += ["-f", "lavfi", "-i", _SINE.format(duration=duration)]
    return args


_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

#: name -> (file name, recipe). Each recipe gets the output path and writes the file.
_RECIPES: dict[str, tuple[str, Callable[[Path, Path], None]]] = {}


def recipe(name: str, filename: str) -> Callable[[Callable[[Path, Path], None]], None]:
    def register(fn: Callable[[Path, Path], None]) -> None:
        _RECIPES[name] = (filename, fn)

    return register


@recipe("h264_mp4", "phone.mp4")
def _h264_mp4(out: Path, _: Path) -> None:
    # Tags a phone writes; the pipeline must not carry any of them over.
    run_ffmpeg(
        *_av(duration=3), *_X264, "-c:a", "aac", "-movflags", "+faststart",
        "-metadata", "location=+40.7128-074.0060/",
        "-metadata", "creation_time=2024-01-02T03:04:05Z",
        "-metadata", "make=Apple", "-metadata", "model=iPhone 15", "-metadata", "title=Suspect",
        str(out),
    )  # fmt: skip


@recipe("hd_mp4", "hd.mp4")
def _hd_mp4(out: Path, _: Path) -> None:
    # Noise gives every region texture, so a blur is measurable anywhere in the frame.
    run_ffmpeg(
        *_av("1280x720", duration=2), "-vf", "noise=alls=40:allf=t", *_X264, "-c:a", "aac", str(out)
    )


@recipe("moov_at_end", "dvr_export.mp4")
def _moov_at_end(out: Path, _: Path) -> None:
    run_ffmpeg(*_av(duration=2), *_X264, "-c:a", "aac", str(out))


@recipe("hevc_mov", "iphone.mov")
def _hevc_mov(out: Path, _: Path) -> None:
    run_ffmpeg(
        *_av(duration=1), "-c:v", "libx265", "-preset", "ultrafast",
        "-x265-params", "log-level=error",
        "-tag:v", "hvc1", "-c:a", "aac", str(out),
    )  # fmt: skip


@recipe("matroska", "export.mkv")
def _matroska(out: Path, _: Path) -> None:
    run_ffmpeg(*_av(duration=1), *_X264, "-c:a", "libvorbis", str(out))


@recipe("mjpeg_avi_mulaw", "DVR_CH01.avi")
def _mjpeg_avi(out: Path, _: Path) -> None:
    # An old DVR: Motion-JPEG video, G.711 mu-law mono at 8 kHz.
    run_ffmpeg(
        *_av("352x288", rate=15, duration=1), "-c:v", "mjpeg", "-q:v", "5",
        "-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1", str(out),
    )  # fmt: skip


@recipe("mpeg2_ts_interlaced", "camera.ts")
def _mpeg2_ts(out: Path, _: Path) -> None:
    # Interlaced, top field first, with a 16:9 display aspect on 320x240 storage
    # (non-square pixels, as SD DVRs write).
    run_ffmpeg(
        *_av(rate=25, duration=2), "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1",
        "-aspect", "16:9", "-c:a", "mp2", str(out),
    )  # fmt: skip


@recipe("vp9_webm_silent", "doorbell.webm")
def _vp9_webm(out: Path, _: Path) -> None:
    run_ffmpeg(
        *_av(duration=1, audio=False), "-c:v", "libvpx-vp9", "-deadline", "realtime",
        "-cpu-used", "8", "-b:v", "300k", str(out),
    )  # fmt: skip


@recipe("rotated_phone", "portrait.mp4")
def _rotated(out: Path, work: Path) -> None:
    # ffmpeg 5.1 has no -display_rotation; a "rotate" tag on a stream copy is written
    # by the mov muxer as a display matrix, which is what phones write.
    plain = work / "rotated_plain.mp4"
    run_ffmpeg(*_av(duration=1), *_X264, "-c:a", "aac", str(plain))
    run_ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out))


@recipe("odd_size", "odd.mp4")
def _odd_size(out: Path, _: Path) -> None:
    run_ffmpeg(
        *_av(duration=1, audio=False), "-vf", "scale=321:241", "-c:v", "libx264",
        "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(out),
    )  # fmt: skip


@recipe("vfr", "screen.mp4")
def _vfr(out: Path, _: Path) -> None:
    # 30 frames at 30 fps, then 10 fps: avg_frame_rate differs from r_frame_rate.
    run_ffmpeg(
        *_av(duration=2, audio=False), "-vf", "setpts='if(lt(N,30),N/30,1+(N-30)/10)/TB'",
        "-fps_mode", "vfr", *_X264, str(out),
    )  # fmt: skip


@recipe("mp4_named_avi", "renamed.avi")
def _mp4_named_avi(out: Path, _: Path) -> None:
    run_ffmpeg(*_av(duration=1), *_X264, "-c:a", "aac", "-f", "mp4", str(out))


@recipe("long_10s", "long.mp4")
def _long(out: Path, _: Path) -> None:
    run_ffmpeg(*_av("640x480", duration=10), *_X264, "-c:a", "aac", str(out))


@recipe("png_image", "photo.mp4")
def _png(out: Path, _: Path) -> None:
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1", "-f", "image2",
               "-c:v", "png", "-update", "1", str(out))  # fmt: skip


@recipe("watermark_png", "agency_logo.png")
def _watermark(out: Path, _: Path) -> None:
    run_ffmpeg("-f", "lavfi", "-i", "color=c=white@0.5:s=100x40,format=rgba", "-frames:v", "1",
               "-c:v", "png", "-update", "1", str(out))  # fmt: skip


@recipe("many_streams", "many.mkv")
def _many_streams(out: Path, _: Path) -> None:
    args = [*_av(duration=1), "-map", "0:v"]
    for _ in range(16):
        args += ["-map", "1:a"]
    run_ffmpeg(*args, *_X264, "-c:a", "aac", str(out))


@recipe("ffv1_mkv", "lossless.mkv")
def _ffv1(out: Path, _: Path) -> None:
    run_ffmpeg(*_av(duration=1, audio=False), "-c:v", "ffv1", str(out))


@recipe("audio_only", "voicemail.m4a")
def _audio_only(out: Path, _: Path) -> None:
    run_ffmpeg("-f", "lavfi", "-i", _SINE.format(duration=1), "-c:a", "aac", str(out))


@recipe("truncated", "cut_short.mp4")
def _truncated(out: Path, work: Path) -> None:
    # moov at the end, cut in half: what an interrupted DVR export or upload leaves.
    whole = work / "whole_for_truncation.mp4"
    run_ffmpeg(*_av(duration=2), *_X264, "-c:a", "aac", str(whole))
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) // 2])


class Corpus:
    """Generates each clip on first use, once per test session (and xdist worker)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Path:
        filename, make = _RECIPES[name]
        path = self.root / filename
        with self._lock:
            if not path.exists():
                tmp = self.root / f"tmp-{filename}"
                make(tmp, self.root)
                tmp.rename(path)
        return path

    def copy(self, name: str, dest: Path) -> Path:
        shutil.copyfile(self(name), dest)
        return dest


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("corpus"))


class CountingHandler(BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"\x47" * 188 * 10)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def http_trap() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records every request made to it."""
    requests: list[str] = []
    handler = type("Handler", (CountingHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
