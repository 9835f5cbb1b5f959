"""The manifest: what was made, from what, how, so a derivative can be verified later."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from .limits import DEFAULT_LIMITS
from .runner import find_tool, run_tool

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class OutputFile:
    name: str
    file: str
    role: str
    content_type: str
    size: int
    sha256: str
    duration_s: float | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class SourceRecord:
    file: str
    size: int
    sha256: str
    duration_s: float
    container: str


@dataclass(frozen=True)
class Manifest:
    source: SourceRecord
    plan: dict[str, Any]
    outputs: tuple[OutputFile, ...]
    command: tuple[str, ...]
    ffmpeg_version: str
    created_at: str
    elapsed_s: float
    version: int = field(default=MANIFEST_VERSION)
    #: What proposed the plan's regions that a person accepted (a face detector, a
    #: tracker): name, version, model digest, threshold, sampling. Empty when every
    #: region was drawn by hand.
    detectors: tuple[dict[str, Any], ...] = ()

    def output(self, name: str) -> OutputFile:
        for output in self.outputs:
            if output.name == name:
                return output
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outputs"] = [asdict(o) for o in self.outputs]
        data["command"] = list(self.command)
        data["detectors"] = [dict(d) for d in self.detectors]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            source=SourceRecord(**data["source"]),
            plan=dict(data["plan"]),
            outputs=tuple(OutputFile(**o) for o in data["outputs"]),
            command=tuple(data["command"]),
            ffmpeg_version=data["ffmpeg_version"],
            created_at=data["created_at"],
            elapsed_s=data["elapsed_s"],
            version=data.get("version", MANIFEST_VERSION),
            detectors=tuple(dict(d) for d in data.get("detectors", [])),
        )

    def write(self, path: str) -> None:
        """Write atomically: a reader sees the old manifest or the new one, never half."""
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


@lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """First line of ``ffmpeg -version``, e.g. ``ffmpeg version 5.1.6-0+deb12u1 ...``."""
    result = run_tool(
        [find_tool("ffmpeg"), "-hide_banner", "-version"],
        timeout_s=30,
        memory_bytes=DEFAULT_LIMITS.memory_bytes,
        capture_stdout_limit=64 * 1024,
    )
    first = result.stdout.decode("utf-8", "replace").splitlines()
    return first[0].strip() if first else "unknown"
