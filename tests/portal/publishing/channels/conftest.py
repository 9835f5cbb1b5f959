"""What the channel adapters' tests share: a one-second MP4 and a vertical reel file,
a delivery's stored steps kept in memory, a controlled clock, and the Graph API fake."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from portal.publishing.channels.base import Draft, Media
from tests.portal.publishing.fakes import Clock
from tests.portal.publishing.fakes.graph_fake import GraphFake, running_fake

#: The client's timeout in the tests: longer than any fake's normal answer, shorter
#: than its held-back one (FakeServer.hold_s).
TIMEOUT_S = 1.5


class MemorySteps:
    """The adapter's view of a delivery's progress: ``save`` merges the values into
    ``state`` (a flat mapping, as the delivery row stores it) and records the step."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self._state: dict[str, Any] = dict(state or {})
        self.saved: list[str] = []

    @property
    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def save(self, step: str, **values: Any) -> None:
        self.saved.append(step)
        self._state.update(values)


@pytest.fixture(scope="session")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """A real one-second H.264 MP4, 320x180 (16:9)."""
    path = tmp_path_factory.mktemp("media") / "appeal.mp4"
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        subprocess.run(
            [
                ffmpeg,
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x180:rate=25",
                "-t",
                "1",
                "-pix_fmt",
                "yuv420p",
                "-c:v",
                "libx264",
                "-y",
                str(path),
            ],
            check=True,
            timeout=60,
        )
    else:  # no ffmpeg: the fakes only look at the bytes
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 200)
    data = path.read_bytes()
    return Media(
        path=path,
        content_type="video/mp4",
        size=len(data),
        duration_s=1.0,
        width=320,
        height=180,
        fps=25.0,
        sha256=hashlib.sha256(data).hexdigest(),
    )


@pytest.fixture
def draft(mp4: Media) -> Draft:
    return Draft(
        text="#TattletaleTuesday Case 2026-0042: who saw this car? Tips: https://tips.example/a/42?via=social",
        media=mp4,
        link="https://tips.example/a/42?via=social",
        alt="A grey car drives past a shop at night",
        key="delivery-7-0b6f9c",
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


# Over two of the Graph adapters' 1 MiB chunks, so an upload is really sent in pieces.
REEL_BYTES = 2 * 1024 * 1024 + 12345


@pytest.fixture
def graph() -> Iterator[GraphFake]:
    yield from running_fake()


@pytest.fixture(scope="session")
def reel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("renditions") / "reel.mp4"
    path.write_bytes(bytes(range(256)) * (REEL_BYTES // 256) + b"x" * (REEL_BYTES % 256))
    return path


@pytest.fixture
def reel_draft(reel_file: Path) -> Draft:
    """A 9:16 cut of 30 s (the Graph fakes look at its bytes, not its frames)."""
    data = reel_file.read_bytes()
    media = Media(
        path=reel_file,
        content_type="video/mp4",
        size=len(data),
        duration_s=30.0,
        width=1080,
        height=1920,
        fps=30.0,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return Draft(
        text="#TattletaleTuesday Do you know him? Case 24-0001 https://example.test/a/1?via=facebook",
        media=media,
        link="https://example.test/a/1?via=facebook",
        alt="A man in a red cap at the counter",
        key="delivery-7f3a",
    )
