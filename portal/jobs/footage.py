"""Jobs that turn uploaded footage into stored evidence and renditions.

Each takes an id, re-reads the row, and does nothing if the work is already done, so
a redelivered message or a second worker is harmless. Outputs go to fixed keys
derived from public ids; a re-run overwrites the same keys with the same content.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import replace

from flask import current_app
from sqlalchemy import delete

from media_pipeline import (
    EditPlan,
    InvalidPlan,
    Limits,
    MediaInfo,
    MediaPipelineError,
    Rejected,
    make_proxy,
    probe,
    process,
    store_outputs,
)
from portal.extensions import db
from portal.jobs.execution import PermanentJobError
from portal.jobs.periodic import periodic
from portal.jobs.registry import JobContext, enqueue, job
from portal.models import Clip, ClipStatus, ClipVersion, Job, Rendition, VersionStatus
from portal.models.base import utcnow
from portal.services.agencies import WATERMARK_PREFIX
from portal.services.audit import record_event
from portal.services.clips import media_info_of
from portal.services.storage import (
    LocalCopy,
    get_store,
    original_key,
    proxy_key,
    version_prefix,
    work_dir,
)
from portal.services.uploads import UploadDamaged, expire_uploads, make_staged_file_durable

log = logging.getLogger(__name__)


def pipeline_limits() -> Limits:
    settings = current_app.config["TATTLETALE"]
    return Limits(
        max_file_bytes=settings.max_upload_bytes,
        nice=settings.transcode_nice,
        threads=settings.transcode_threads,
        stall_timeout_s=settings.transcode_stall_after_s,
    )


@periodic("uploads.expire", every_s=3600)
def expire_stale_uploads() -> None:
    """Unfinished or never-attached uploads older than their expiry are removed."""
    expire_uploads()


def _probe(path: str) -> tuple[MediaInfo | None, str]:
    """The probe result, or None and the reason the pipeline refuses the file."""
    try:
        return probe(path, pipeline_limits()), ""
    except Rejected as exc:
        return None, exc.reason


@job("clips.ingest")
def ingest_clip(ctx: JobContext, clip_id: int) -> None:
    """Probe the finished upload, move it into storage, start the proxy and version 1."""
    clip = db.session.get(Clip, clip_id)
    if clip is None:
        raise PermanentJobError(f"clip {clip_id} does not exist")
    if clip.status != ClipStatus.INGESTING.value:
        return
    store = get_store()
    key = original_key(clip.case.public_id, clip.public_id)
    ctx.report(0.1, "probing")
    staged = clip.staging_path
    if staged and os.path.exists(staged):
        if clip.upload is not None:
            try:
                make_staged_file_durable(clip.upload)
            except UploadDamaged as exc:
                clip.status = ClipStatus.FAILED.value
                clip.rejection_reason = exc.message
                db.session.commit()
                raise PermanentJobError(exc.message) from None
        info, reason = _probe(staged)
        ctx.report(0.5, "storing original")
        adopt = getattr(store, "adopt_file", None)
        if adopt is not None:
            adopt(key, staged, clip.original_sha256, clip.original_size)
        else:
            stored = store.put_file(key, staged, "application/octet-stream")
            if stored.sha256 != clip.original_sha256:
                raise PermanentJobError("the stored original does not match the upload's hash")
            os.unlink(staged)
    elif store.exists(key):
        # A previous attempt stored the original and died before recording it.
        with LocalCopy(store, key) as path:
            info, reason = _probe(path)
    else:
        raise PermanentJobError("the uploaded file is gone before it was stored")

    clip.original_key = key
    clip.staging_path = ""
    if info is None:
        # Kept as evidence of what was uploaded, but never processed.
        clip.status = ClipStatus.REJECTED.value
        clip.rejection_reason = reason
        record_event(
            "evidence.reject",
            object_type="clip",
            object_id=clip.public_id,
            details={"reason": reason},
        )
        db.session.commit()
        return
    probe_data = info.to_dict()
    probe_data["path"] = ""
    clip.probe = probe_data
    clip.duration_s = info.duration_s
    clip.width = info.video.display_width
    clip.height = info.video.display_height
    clip.frame_rate = info.video.frame_rate
    clip.status = ClipStatus.READY.value
    # The proxy first: the officer can start editing while the renditions are made.
    clip.proxy_job = enqueue("clips.proxy", clip_id=clip.id)
    version = ClipVersion(
        clip=clip,
        number=1,
        # The whole clip, unedited: an explicit plan, so the record says so.
        plan=EditPlan().to_dict(),
        created_by_id=clip.uploaded_by_id,
        status=VersionStatus.QUEUED.value,
        source_sha256=clip.original_sha256,
    )
    db.session.add(version)
    db.session.flush()
    version.job = enqueue("clips.render", version_id=version.id)
    db.session.commit()


@job("clips.proxy")
def make_clip_proxy(ctx: JobContext, clip_id: int) -> None:
    """The editing proxy: the whole source, unedited, 480p, a keyframe every 0.5 s."""
    clip = db.session.get(Clip, clip_id)
    if clip is None:
        raise PermanentJobError(f"clip {clip_id} does not exist")
    if clip.proxy_key or clip.status != ClipStatus.READY.value:
        return
    store = get_store()
    key = proxy_key(clip.case.public_id, clip.public_id)
    info = media_info_of(clip)
    tmp = tempfile.mkdtemp(prefix="proxy-", dir=work_dir())
    try:
        with LocalCopy(store, clip.original_key) as source:
            info = replace(info, path=source)
            output = make_proxy(
                source,
                os.path.join(tmp, "proxy.mp4"),
                pipeline_limits(),
                # The heartbeat, not ffmpeg's own report, keeps the claim alive: it
                # comes every few seconds while ffmpeg works, carrying the progress.
                heartbeat=lambda fraction: ctx.report(fraction * 0.95, "making editing proxy"),
                info=info,
            )
        stored = store.put_file(key, os.path.join(tmp, "proxy.mp4"), output.content_type)
    except Rejected as exc:
        raise PermanentJobError(exc.reason) from None
    except MediaPipelineError as exc:
        raise RuntimeError(str(exc)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    clip.proxy_key = key
    clip.proxy_sha256 = stored.sha256
    db.session.commit()


@job("clips.render")
def render_version(ctx: JobContext, version_id: int) -> None:
    """Every rendition of a version's plan, in one ffmpeg pass, into storage."""
    version = db.session.get(ClipVersion, version_id)
    if version is None:
        raise PermanentJobError(f"version {version_id} does not exist")
    if version.status == VersionStatus.READY.value:
        return
    clip = version.clip
    version.status = VersionStatus.PROCESSING.value
    version.error = ""
    db.session.commit()
    store = get_store()
    prefix = version_prefix(clip.case.public_id, clip.public_id, version.number)
    tmp = tempfile.mkdtemp(prefix="render-", dir=work_dir())
    try:
        plan = EditPlan.from_dict(version.plan)
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(LocalCopy(store, clip.original_key))
            if plan.watermark is not None and plan.watermark.path.startswith(WATERMARK_PREFIX):
                logo_key = plan.watermark.path.removeprefix(WATERMARK_PREFIX)
                logo = stack.enter_context(LocalCopy(store, logo_key))
                plan = replace(plan, watermark=replace(plan.watermark, path=logo))
            manifest = process(
                source,
                tmp,
                plan,
                limits=pipeline_limits(),
                # Called from this thread every few seconds while ffmpeg works (ffmpeg
                # itself reports nothing until every output has started).
                heartbeat=lambda fraction: ctx.report(fraction * 0.95, "rendering"),
                source_sha256=clip.original_sha256,
                info=replace(media_info_of(clip), path=source),
            )
        ctx.report(0.96, "storing renditions")
        stored = store_outputs(manifest, tmp, store, prefix)
    except (Rejected, InvalidPlan) as exc:
        _record_version_error(version_id, str(exc), final=True)
        raise PermanentJobError(str(exc)) from None
    except MediaPipelineError as exc:
        # ffmpeg failed or timed out: worth another attempt, if any are left.
        job_row = db.session.get(Job, ctx.job_id)
        final = job_row is None or job_row.attempts >= job_row.max_attempts
        _record_version_error(version_id, str(exc), final=final)
        raise RuntimeError(str(exc)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    version = db.session.get(ClipVersion, version_id)
    assert version is not None
    db.session.execute(delete(Rendition).where(Rendition.version_id == version.id))
    for output in manifest.outputs:
        db.session.add(
            Rendition(
                version_id=version.id,
                name=output.name,
                role=output.role,
                storage_key=stored[output.name].key,
                content_type=output.content_type,
                size=output.size,
                sha256=output.sha256,
                width=output.width,
                height=output.height,
                duration_s=output.duration_s,
            )
        )
    version.manifest_key = stored["manifest"].key
    version.manifest_sha256 = stored["manifest"].sha256
    version.ffmpeg_command = list(manifest.command)
    version.ffmpeg_version = manifest.ffmpeg_version[:200]
    version.status = VersionStatus.READY.value
    version.rendered_at = utcnow()
    record_event(
        "evidence.render",
        object_type="clip_version",
        object_id=version.public_id,
        details={"outputs": {o.name: o.sha256 for o in manifest.outputs}},
    )
    db.session.commit()


def _record_version_error(version_id: int, message: str, *, final: bool) -> None:
    db.session.rollback()
    version = db.session.get(ClipVersion, version_id)
    if version is not None:
        version.status = VersionStatus.FAILED.value if final else VersionStatus.QUEUED.value
        version.error = message[:2000]
        db.session.commit()
