from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from portal.publishing.channels.base import Draft, Media
from tests.portal.publishing.fakes.graph_fake import GraphFake, running_fake

# Over two of the adapters' 1 MiB chunks, so an upload is really sent in pieces.
VIDEO_BYTES = 2 * 1024 * 1024 + 12345


class MemorySteps:
    """The engine's stored progress, in memory: what each step saved, in order."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self._state: dict[str, Any] = dict(state or {})
        self.saved: list[str] = []

    @property
    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def save(self, step: str, **values: Any) -> None:
        self._state.update(values)
        self.saved.append(step)


@pytest.fixture
def graph() -> Iterator[GraphFake]:
    yield from running_fake()


@pytest.fixture(scope="session")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("renditions") / "reel.mp4"
    path.write_bytes(bytes(range(256)) * (VIDEO_BYTES // 256) + b"x" * (VIDEO_BYTES % 256))
    return path


@pytest.fixture
def draft(video_file: Path) -> Draft:
    data = video_file.read_bytes()
    media = Media(
        path=video_file,
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
