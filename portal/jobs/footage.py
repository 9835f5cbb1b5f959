"""Jobs that turn uploaded footage into stored evidence and renditions.

Each takes an id, re-reads the row, and does nothing if the work is already done, so
a redelivered message or a second worker is harmless. The original and the proxy go
to fixed keys derived from public ids; a render writes under a folder of its own run,
so a stale render never overwrites what a newer one stored.

Each job type says how its subject is failed when the job gives up (``on_failure``):
whatever the job raised, the clip or version ends failed with a reason and can be
retried.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import replace

from flask import current_app
from sqlalchemy import delete, exists, or_, update

from media_pipeline import (
    EditPlan,
    HashMismatch,
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
from media_pipeline.staging import StagedBytesMissing
from portal.extensions import db
from portal.jobs.errors import ClaimLost, PermanentJobError, TransientJobError
from portal.jobs.periodic import periodic
from portal.jobs.registry import JobContext, enqueue, job
from portal.models import (
    Clip,
    ClipStatus,
    ClipVersion,
    Job,
    JobStatus,
    Rendition,
    VersionStatus,
)
from portal.models.base import utcnow
from portal.services.agencies import WATERMARK_PREFIX
from portal.services.audit import record_event
from portal.services.clips import media_info_of
from portal.services.storage import (
    get_store,
    local_copy,
    original_key,
    proxy_key,
    version_prefix,
    work_dir,
)
from portal.services.uploads import UploadDamaged, adopt_upload, expire_uploads

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


def _fail_clip(row: Job, reason: str) -> None:
    clip = db.session.get(Clip, row.subject_id)
    if clip is not None and clip.status == ClipStatus.INGESTING.value:
        clip.status = ClipStatus.FAILED.value
        clip.rejection_reason = f"Storing the upload failed: {reason}"


def _fail_proxy(row: Job, reason: str) -> None:
    # The clip stays ready (versions render from the original); the proxy job's
    # failure and its retry are shown with the clip.
    log.warning("editing proxy failed", extra={"clip_id": row.subject_id, "reason": reason})


def _fail_version(row: Job, reason: str) -> None:
    version = db.session.get(ClipVersion, row.subject_id)
    if version is None or version.status == VersionStatus.READY.value:
        return
    # Only the render that holds the version (or none) may fail it.
    if version.render_token not in ("", row.claim_token):
        return
    version.status = VersionStatus.FAILED.value
    version.error = reason[:2000]
    version.render_token = ""


@job("clips.ingest", subject=("clip", "clip_id"), on_failure=_fail_clip)
def ingest_clip(ctx: JobContext, clip_id: int) -> None:
    """Probe the finished upload, move it into storage, start the proxy and version 1."""
    clip = db.session.get(Clip, clip_id)
    if clip is None:
        raise PermanentJobError(f"clip {clip_id} does not exist")
    if clip.status != ClipStatus.INGESTING.value:
        return
    store = get_store()
    key = original_key(clip.case.public_id, clip.public_id)
    ctx.report(0.1, "storing original")
    if clip.upload is not None:
        # The upload is staged on the store, not on the machine that received it: any
        # worker can do this. A rename (local store) or, on S3, completing the
        # multipart upload and a copy inside the bucket. Idempotent: an attempt that
        # died after storing the original finds it there.
        try:
            adopt_upload(clip.upload, key)
        except UploadDamaged as exc:
            clip.status = ClipStatus.FAILED.value
            clip.rejection_reason = exc.message
            db.session.commit()
            raise PermanentJobError(exc.message) from None
        except HashMismatch:
            raise PermanentJobError(
                "the stored original does not match the upload's hash"
            ) from None
        except StagedBytesMissing:
            raise PermanentJobError("the uploaded file is gone before it was stored") from None
    elif not store.exists(key):
        raise PermanentJobError("the uploaded file is gone before it was stored")
    ctx.report(0.5, "probing")
    with local_copy(key) as path:
        info, reason = _probe(path)

    clip.original_key = key
    clip.staging_path = ""
    if info is None:
        # Kept as evidence of what was uploaded, but never processed.
        clip.status = ClipStatus.REJECTED.value
        clip.rejection_reason = reason
        record_event(
            "evidence.reject",
            agency_id=clip.case.agency_id,
            object_type="clip",
            object_id=clip.public_id,
            details={"reason": reason},
        )
        db.session.flush()
        ctx.confirm()
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
    enqueue("clips.proxy", clip_id=clip.id)
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
    enqueue("clips.render", version_id=version.id)
    ctx.confirm()
    db.session.commit()


@job("clips.proxy", subject=("clip", "clip_id"), on_failure=_fail_proxy)
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
        with local_copy(clip.original_key) as source:
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    clip.proxy_key = key
    clip.proxy_sha256 = stored.sha256
    db.session.flush()
    ctx.confirm()
    db.session.commit()


def _claim_version(version_id: int, token: str) -> bool:
    """Take the version for this run: only if it is not rendered and no live run holds
    it (a run the reaper took back holds nothing any more)."""
    holder_alive = exists().where(
        Job.claim_token == ClipVersion.render_token,
        Job.status == JobStatus.RUNNING.value,
        Job.claim_token != "",
    )
    result = db.session.execute(
        update(ClipVersion)
        .where(
            ClipVersion.id == version_id,
            ClipVersion.status != VersionStatus.READY.value,
            or_(
                ClipVersion.render_token == "",
                ClipVersion.render_token == token,
                ~holder_alive,
            ),
        )
        .values(status=VersionStatus.PROCESSING.value, error="", render_token=token)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def _record_claim_holds(version_id: int, job_id: int, token: str) -> None:
    """Lock the version for recording, if this run still holds it and its job: the
    first write of the transaction that records the outputs."""
    job_is_ours = exists().where(
        Job.id == job_id, Job.claim_token == token, Job.status == JobStatus.RUNNING.value
    )
    result = db.session.execute(
        update(ClipVersion)
        .where(
            ClipVersion.id == version_id,
            ClipVersion.render_token == token,
            ClipVersion.status == VersionStatus.PROCESSING.value,
            job_is_ours,
        )
        .values(status=VersionStatus.PROCESSING.value)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise ClaimLost(f"version {version_id} is held by another render")


@job("clips.render", subject=("clip_version", "version_id"), on_failure=_fail_version)
def render_version(ctx: JobContext, version_id: int) -> None:
    """Every rendition of a version's plan, in one ffmpeg pass, into storage."""
    version = db.session.get(ClipVersion, version_id)
    if version is None:
        raise PermanentJobError(f"version {version_id} does not exist")
    if version.status == VersionStatus.READY.value:
        return
    if not _claim_version(version_id, ctx.token):
        db.session.refresh(version)
        if version.status == VersionStatus.READY.value:
            return
        raise TransientJobError("another render of this version is still running")
    db.session.refresh(version)
    clip = version.clip
    store = get_store()
    # A folder per run: a stale run that still uploads cannot touch the files a
    # newer run recorded.
    prefix = version_prefix(clip.case.public_id, clip.public_id, version.number)
    prefix = f"{prefix}/{ctx.token[:16]}"
    tmp = tempfile.mkdtemp(prefix="render-", dir=work_dir())
    try:
        plan = EditPlan.from_dict(version.plan)
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(local_copy(clip.original_key))
            if plan.watermark is not None and plan.watermark.path.startswith(WATERMARK_PREFIX):
                logo_key = plan.watermark.path.removeprefix(WATERMARK_PREFIX)
                logo = stack.enter_context(local_copy(logo_key))
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
        raise PermanentJobError(str(exc)) from None
    except MediaPipelineError as exc:
        # ffmpeg failed or timed out: worth another attempt, if any are left. The
        # version shows why until then; the job's failure hook fails it at the end.
        _note_version_error(version_id, ctx.token, str(exc))
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    _record_claim_holds(version_id, ctx.job_id, ctx.token)
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
    version.render_token = ""
    version.rendered_at = utcnow()
    record_event(
        "evidence.render",
        agency_id=version.clip.case.agency_id,
        object_type="clip_version",
        object_id=version.public_id,
        details={"outputs": {o.name: o.sha256 for o in manifest.outputs}},
    )
    db.session.flush()
    ctx.confirm()
    db.session.commit()


def _note_version_error(version_id: int, token: str, message: str) -> None:
    db.session.rollback()
    db.session.execute(
        update(ClipVersion)
        .where(ClipVersion.id == version_id, ClipVersion.render_token == token)
        .values(error=message[:2000])
    )
    db.session.commit()
