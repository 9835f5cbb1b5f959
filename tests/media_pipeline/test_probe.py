"""probe(): real-world shapes accepted, hostile files refused before any decoding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from media_pipeline import Limits, Rejected, probe
from media_pipeline.probe import probe_image

from .conftest import Corpus, run_ffmpeg


@pytest.mark.parametrize(
    ("name", "container", "codec", "audio_codec"),
    [
        ("h264_mp4", "mov", "h264", "aac"),
        ("moov_at_end", "mov", "h264", "aac"),
        ("hevc_mov", "mov", "hevc", "aac"),
        ("matroska", "matroska", "h264", "vorbis"),
        ("mjpeg_avi_mulaw", "avi", "mjpeg", "pcm_mulaw"),
        ("mpeg2_ts_interlaced", "mpegts", "mpeg2video", "mp2"),
        ("vp9_webm_silent", "matroska", "vp9", None),
        ("rotated_phone", "mov", "h264", "aac"),
        ("odd_size", "mov", "h264", None),
        ("vfr", "mov", "h264", None),
        ("mp4_named_avi", "mov", "h264", "aac"),
    ],
)
def test_probe_accepts_real_world_shapes(
    corpus: Corpus, name: str, container: str, codec: str, audio_codec: str | None
) -> None:
    info = probe(corpus(name))
    assert info.container == container
    assert info.video.codec == codec
    assert (info.audio.codec if info.audio else None) == audio_codec
    assert info.duration_s > 0.5
    assert info.size_bytes == os.path.getsize(corpus(name))


def test_probe_reads_display_rotation_and_swaps_display_size(corpus: Corpus) -> None:
    info = probe(corpus("rotated_phone"))
    assert info.video.rotation in (90, 270)
    assert (info.video.width, info.video.height) == (320, 240)
    assert (info.video.display_width, info.video.display_height) == (240, 320)


def test_probe_reports_interlacing_and_non_square_pixels(corpus: Corpus) -> None:
    info = probe(corpus("mpeg2_ts_interlaced"))
    assert info.video.field_order == "tt"
    assert info.video.interlaced is True
    assert info.video.sample_aspect_ratio == "4:3"
    assert (info.video.display_width, info.video.display_height) == (427, 240)


def test_probe_reports_progressive_square_clip(corpus: Corpus) -> None:
    info = probe(corpus("h264_mp4"))
    assert info.video.interlaced is False
    assert info.video.rotation == 0
    assert info.video.frame_rate == 30.0
    assert info.video.variable_frame_rate is False
    assert info.audio is not None and info.audio.sample_rate == 44100


def test_probe_detects_variable_frame_rate(corpus: Corpus) -> None:
    assert probe(corpus("vfr")).video.variable_frame_rate is True


def test_probe_keeps_odd_frame_size(corpus: Corpus) -> None:
    info = probe(corpus("odd_size"))
    assert (info.video.display_width, info.video.display_height) == (321, 241)


def test_probe_result_serialises_to_json(corpus: Corpus) -> None:
    import json

    data = json.loads(probe(corpus("mjpeg_avi_mulaw")).to_json())
    assert data["video"]["codec"] == "mjpeg"
    assert data["audio"]["sample_rate"] == 8000


# -- hostile and broken input ------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_probe_rejects_hls_playlist_without_fetching_anything(
    tmp_path: Path, corpus: Corpus, http_trap: tuple[str, list[str]]
) -> None:
    base_url, requests = http_trap
    local = corpus("h264_mp4")
    playlist = _write(
        tmp_path / "clip.mp4",
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:2.0,\n{base_url}/segment0.ts\n#EXTINF:2.0,\n{local}\n"
        "#EXTINF:2.0,\n../../../../etc/passwd\n#EXT-X-ENDLIST\n",
    )
    with pytest.raises(Rejected, match="playlists"):
        probe(playlist)
    assert requests == []


def test_probe_rejects_master_playlist_pointing_at_a_url(
    tmp_path: Path, http_trap: tuple[str, list[str]]
) -> None:
    base_url, requests = http_trap
    playlist = _write(
        tmp_path / "video.mov",
        f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n{base_url}/variant.m3u8\n",
    )
    with pytest.raises(Rejected):
        probe(playlist)
    assert requests == []


def test_probe_rejects_ffconcat_script_referencing_other_files(
    tmp_path: Path, corpus: Corpus
) -> None:
    script = _write(
        tmp_path / "evidence.mp4",
        f"ffconcat version 1.0\nfile '/etc/passwd'\nfile '{corpus('h264_mp4')}'\n",
    )
    with pytest.raises(Rejected, match="concat scripts"):
        probe(script)


def test_probe_rejects_concat_script_without_header(tmp_path: Path) -> None:
    script = _write(tmp_path / "a.mkv", "file 'secret.mp4'\n")
    with pytest.raises(Rejected, match="concat"):
        probe(script)


def test_probe_rejects_text_file(tmp_path: Path) -> None:
    with pytest.raises(Rejected, match="text file"):
        probe(_write(tmp_path / "notes.mp4", "meet me at the usual place\n"))


def test_probe_rejects_image_by_content(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="PNG image"):
        probe(corpus("png_image"))


def test_probe_rejects_truncated_file(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="incomplete or damaged"):
        probe(corpus("truncated"))


def test_probe_rejects_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(Rejected, match="empty"):
        probe(empty)


def test_probe_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Rejected, match="does not exist"):
        probe(tmp_path / "nope.mp4")


def test_probe_rejects_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(Rejected, match="not a regular file"):
        probe(fifo)


def test_probe_rejects_directory(tmp_path: Path) -> None:
    with pytest.raises(Rejected, match="not a regular file"):
        probe(tmp_path)


def test_probe_rejects_too_many_streams(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="17 streams, over the limit of 16"):
        probe(corpus("many_streams"))


def test_probe_stream_limit_is_configurable(corpus: Corpus) -> None:
    assert probe(corpus("many_streams"), Limits(max_streams=20)).stream_count == 17


def test_probe_rejects_frame_size_over_limit(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match=r"frame size 320x240 is over the limit of 200x200"):
        probe(corpus("h264_mp4"), Limits(max_width=200, max_height=200))


def test_probe_rejects_duration_over_limit(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="over the limit of 2 s"):
        probe(corpus("h264_mp4"), Limits(max_duration_s=2))


def test_probe_rejects_file_size_over_limit(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="over the limit of 1.0 KB"):
        probe(corpus("h264_mp4"), Limits(max_file_bytes=1000))


def test_probe_rejects_codec_outside_allow_list(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="codec ffv1 is not accepted"):
        probe(corpus("ffv1_mkv"))


def test_probe_rejects_audio_only_file(corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="no video stream"):
        probe(corpus("audio_only"))


@pytest.mark.parametrize(
    "name", ["http:example.mp4", "concat:a.mp4|b.mp4", "-i.mp4", "subfile,,x.mp4"]
)
def test_probe_treats_protocol_and_option_like_names_as_plain_files(
    tmp_path: Path, corpus: Corpus, name: str
) -> None:
    path = corpus.copy("h264_mp4", tmp_path / name)
    assert probe(path).video.codec == "h264"


def test_probe_relative_path_is_resolved(
    tmp_path: Path, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus.copy("h264_mp4", tmp_path / "concat:clip.mp4")
    monkeypatch.chdir(tmp_path)
    info = probe("concat:clip.mp4")
    assert info.path == str(tmp_path / "concat:clip.mp4")


def test_probe_rejects_unknown_binary(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dat"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(Rejected, match="not a video format we accept"):
        probe(junk)


def test_probe_image_accepts_png_watermark(corpus: Corpus) -> None:
    info = probe_image(corpus("watermark_png"))
    assert (info.container, info.width, info.height) == ("png_pipe", 100, 40)


def test_probe_image_rejects_video_posing_as_watermark(tmp_path: Path, corpus: Corpus) -> None:
    with pytest.raises(Rejected, match="PNG or JPEG"):
        probe_image(corpus.copy("h264_mp4", tmp_path / "logo.png"))


def test_probe_image_rejects_oversized_image(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    run_ffmpeg("-f", "lavfi", "-i", "color=s=4100x16", "-frames:v", "1", "-update", "1", str(big))
    with pytest.raises(Rejected, match="over 4096 pixels"):
        probe_image(big)
