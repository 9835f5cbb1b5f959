"""probe -> plan -> one ffmpeg run -> outputs and manifest."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from .errors import PipelineError
from .faces import detectors_of
from .graph import DEFAULT_FONT, Command, OutputSpec, build_proxy, build_renditions
from .hashing import hash_file
from .limits import DEFAULT_LIMITS, Limits
from .manifest import Manifest, OutputFile, SourceRecord, ffmpeg_version
from .plan import EditPlan
from .probe import MediaInfo, probe, probe_image, probe_output
from .profiles import DEFAULT_PROFILES, PROXY, Profile, VideoProfile
from .runner import ProgressCallback, RunResult, Watch, run_tool
from .storage import Store, StoredObject

MANIFEST_NAME = "manifest.json"


class _SourceHasher(threading.Thread):
    """Hashes the source while ffmpeg transcodes it, so the hash costs no wall time.

    hashlib releases the GIL on large updates and both readers share the page cache.
    """

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True, name="source-sha256")
        self._path = path
        self.digest: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.digest, _ = hash_file(self._path)
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            self.error = exc

    def result(self) -> str:
        self.join()
        if self.error is not None:
            raise PipelineError(f"cannot hash the source: {self.error}") from self.error
        assert self.digest is not None
        return self.digest


def _check_run(result: RunResult, command: Command) -> None:
    if result.returncode != 0:
        last = next((line for line in reversed(result.log.splitlines()) if line.strip()), "")
        raise PipelineError(
            f"ffmpeg failed (exit status {result.returncode}): {last or 'no message'}",
            command=command.argv,
            log=result.log,
        )


def _describe(spec: OutputSpec, path: str, limits: Limits) -> OutputFile:
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise PipelineError(f"ffmpeg wrote no {spec.filename}")
    sha256, size = hash_file(path)
    duration: float | None = None
    width: int | None = spec.width or None
    height: int | None = spec.height or None
    if spec.role != "sprite_index":
        data = probe_output(path, limits)
        streams: list[dict[str, Any]] = data.get("streams") or []
        video = next((s for s in streams if s.get("codec_type") == "video"), {})
        width, height = int(video.get("width") or 0) or None, int(video.get("height") or 0) or None
        if spec.role == "video":
            raw = (data.get("format") or {}).get("duration")
            duration = round(float(raw), 3) if raw is not None else None
    return OutputFile(
        name=spec.name,
        file=spec.filename,
        role=spec.role,
        content_type=spec.content_type,
        size=size,
        sha256=sha256,
        duration_s=duration,
        width=width,
        height=height,
    )


def _run(
    command: Command,
    info: MediaInfo,
    clip_range: tuple[float, float],
    work_dir: str,
    limits: Limits,
    progress: ProgressCallback | None,
    heartbeat: ProgressCallback | None,
    cancel: threading.Event | None,
) -> RunResult:
    """Run ``command`` under the limits, watching the source's read offset for progress.

    The bytes of the clip's range are estimated from its share of the source's
    duration: exact enough for a progress bar, and the offset is only a progress
    figure, never a decision.
    """
    start, end = clip_range
    duration = max(info.duration_s, 1e-3)
    watch = Watch(
        input_path=info.path,
        input_start=int(info.size_bytes * min(1.0, start / duration)),
        input_end=int(info.size_bytes * min(1.0, end / duration)),
        output_dir=work_dir,
    )
    result = run_tool(
        command.argv,
        timeout_s=limits.run_timeout_s(command.duration_s),
        memory_bytes=limits.memory_bytes,
        expected_duration_s=command.duration_s,
        progress=progress,
        cancel=cancel,
        heartbeat=heartbeat,
        heartbeat_interval_s=limits.heartbeat_interval_s,
        stall_timeout_s=limits.stall_timeout_s,
        nice=limits.nice,
        watch=watch,
    )
    _check_run(result, command)
    return result


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def process(
    source_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    plan: EditPlan | None = None,
    profiles: Sequence[Profile] = DEFAULT_PROFILES,
    limits: Limits = DEFAULT_LIMITS,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    heartbeat: ProgressCallback | None = None,
    source_sha256: str | None = None,
    info: MediaInfo | None = None,
    font_path: str = DEFAULT_FONT,
) -> Manifest:
    """Make every rendition of ``plan`` from ``source_path`` into ``out_dir``.

    Raises :class:`Rejected` (source refused), :class:`InvalidPlan`,
    :class:`PipelineError` and its :class:`TimedOut`/:class:`Cancelled`. On any
    failure nothing new is left in ``out_dir``; on success it holds the outputs and
    ``manifest.json``, each written by an atomic rename. ``source_sha256``, when the
    caller already hashed the upload while receiving it, saves reading it again.

    ``progress`` is called whenever the fraction done grows, ``heartbeat`` every
    ``limits.heartbeat_interval_s`` with the fraction done while ffmpeg is busy (see
    :func:`media_pipeline.runner.run_tool`); both from the calling thread. A stopped
    or hung ffmpeg is killed after ``limits.stall_timeout_s`` (:class:`Stalled`).
    """
    started = time.monotonic()
    plan = plan or EditPlan()
    info = info or probe(source_path, limits)
    plan.validate_against(info)
    watermark = probe_image(plan.watermark.path, limits) if plan.watermark else None
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix=".work-", dir=out_dir)
    try:
        command = build_renditions(
            info, plan, profiles, work_dir, limits, watermark=watermark, font_path=font_path
        )
        hasher = None if source_sha256 else _SourceHasher(info.path)
        if hasher is not None:
            hasher.start()
        _run(command, info, plan.clip_range(info), work_dir, limits, progress, heartbeat, cancel)
        if command.sprite is not None:
            sprite_spec = next(s for s in command.outputs if s.role == "sprite")
            index_spec = next(s for s in command.outputs if s.role == "sprite_index")
            with open(os.path.join(work_dir, index_spec.filename), "w", encoding="utf-8") as f:
                f.write(command.sprite.to_vtt(sprite_spec.filename))
        outputs = tuple(
            _describe(spec, os.path.join(work_dir, spec.filename), limits)
            for spec in command.outputs
        )
        sha256 = source_sha256 or (hasher.result() if hasher else "")
        manifest = Manifest(
            source=SourceRecord(
                file=os.path.basename(info.path),
                size=info.size_bytes,
                sha256=sha256,
                duration_s=info.duration_s,
                container=info.container,
            ),
            plan=plan.to_dict(),
            outputs=outputs,
            command=tuple(command.argv),
            detectors=tuple(detectors_of(plan.regions)),
            ffmpeg_version=ffmpeg_version(),
            created_at=_now(),
            elapsed_s=round(time.monotonic() - started, 3),
        )
        for output in outputs:
            os.replace(os.path.join(work_dir, output.file), os.path.join(out_dir, output.file))
        manifest.write(os.path.join(out_dir, MANIFEST_NAME))
        return manifest
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def make_proxy(
    source_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    limits: Limits = DEFAULT_LIMITS,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    heartbeat: ProgressCallback | None = None,
    profile: VideoProfile = PROXY,
    info: MediaInfo | None = None,
) -> OutputFile:
    """The staff editor's proxy of the whole, unedited source (written atomically)."""
    info = info or probe(source_path, limits)
    output_path = os.path.abspath(os.fspath(output_path))
    directory = os.path.dirname(output_path)
    os.makedirs(directory, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix=".work-", dir=directory)
    try:
        tmp_path = os.path.join(work_dir, os.path.basename(output_path))
        command = build_proxy(info, tmp_path, limits, profile)
        _run(command, info, (0.0, info.duration_s), work_dir, limits, progress, heartbeat, cancel)
        described = _describe(command.outputs[0], tmp_path, limits)
        os.replace(tmp_path, output_path)
        return described
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def store_outputs(
    manifest: Manifest, out_dir: str | os.PathLike[str], store: Store, prefix: str
) -> dict[str, StoredObject]:
    """Upload every output and the manifest under ``prefix``; verify each hash.

    The hash is computed again *while uploading* (the only read of the file) and must
    equal the manifest's, so a file changed on disk between the two is caught.
    """
    stored: dict[str, StoredObject] = {}
    base = prefix.rstrip("/")
    for output in manifest.outputs:
        obj = store.put_file(
            f"{base}/{output.file}",
            os.path.join(os.fspath(out_dir), output.file),
            output.content_type,
        )
        if obj.sha256 != output.sha256:
            raise PipelineError(f"{output.file} changed after it was made (hash mismatch)")
        stored[output.name] = obj
    stored["manifest"] = store.put_file(
        f"{base}/{MANIFEST_NAME}",
        os.path.join(os.fspath(out_dir), MANIFEST_NAME),
        "application/json",
    )
    return stored
