"""Resumable uploads of footage (the tus 1.0 protocol's server side, without the HTTP).

The bytes go straight from the request stream to the staging of the evidence store,
hashed on the way, and any web machine can take any request of any upload: see
:mod:`portal.services.receiving`, which writes them (and a tipster's files the same
way). This module holds what is particular to staff uploads: the per-user quota, the
room on a local staging disk, a machine restart's unsynced bytes, the audit trail,
and handing the finished upload to the ingest job.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import func, or_, select, update

from media_pipeline import HashMismatch, StorageError
from media_pipeline.staging import Checkpoint
from portal.extensions import db
from portal.models import Case, Upload, UploadStatus, User
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.errors import (
    Conflict,
    InsufficientStorage,
    NotFound,
    StorageFailed,
    UploadDamaged,
    UploadGone,
    UploadQuotaExceeded,
    UploadTooLarge,
    ValidationFailed,
)
from portal.services.receiving import Checksum, StagedTable, receive
from portal.services.storage import get_staging

log = logging.getLogger(__name__)

# fsync a receiving upload (local staging) at least this often: a checkpoint the
# client can resume from after a machine crash. Not after every request, and not at
# the end: that ties the upload's speed to the disk's write-back rate. The finished
# file is fsynced by the ingest job before it becomes evidence (see
# ``make_staged_file_durable``). S3 staging is durable at every request's end.
DURABLE_EVERY_BYTES = 1024 * 1024 * 1024
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
UPLOAD_LIFETIME = timedelta(hours=24)
# Part of the staging filesystem that uploads never promise away: the database, logs
# and ingest's work files may share it.
STAGING_RESERVE_FRACTION = 0.01


@dataclass(frozen=True)
class UploadQuota:
    """What one user's unfinished uploads may hold at once."""

    max_open: int
    max_open_bytes: int

    @classmethod
    def from_settings(cls, settings: Any) -> UploadQuota:
        return cls(settings.max_open_uploads_per_user, settings.max_open_upload_bytes_per_user)


def clean_filename(name: str) -> str:
    """The client's file name for display only: no control characters, no path."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255]


def current_boot_id() -> str:
    try:
        return _BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""  # not Linux: every offset is treated as durable only once fsynced


def current_machine_id() -> str:
    for path in _MACHINE_ID_FILES:
        try:
            if value := path.read_text().strip():
                return value[:64]
        except OSError:
            continue
    return ""


def _written_here_before_a_restart(upload: Upload) -> bool:
    """Whether bytes past ``durable_offset`` may be lost: they were written by this
    machine, before it restarted (another boot id). Bytes another machine wrote
    reached the shared filesystem's server when that machine closed the file (NFS
    close-to-open); on a machine that cannot tell who it is, only the boot id counts."""
    if upload.offset == upload.durable_offset:
        return False
    if upload.machine_id and upload.machine_id != current_machine_id():
        return False
    return not (upload.boot_id and upload.boot_id == current_boot_id())


def _recover_after_reboot(upload: Upload) -> None:
    """Bytes past ``durable_offset`` written before the machine restarted may not be
    on disk. Roll back to what is, so the client re-sends the rest; never hash zeros
    a crash left in place of video."""
    if upload.status != UploadStatus.RECEIVING.value or not _written_here_before_a_restart(upload):
        return
    now = utcnow()
    # Only while no request writes to it (one that does holds a lease).
    result = db.session.execute(
        update(Upload)
        .where(
            Upload.id == upload.id,
            Upload.offset == upload.offset,
            or_(Upload.writer_token == "", Upload.writer_until < now),
        )
        .values(offset=upload.durable_offset, sha256_state=b"", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return
    get_staging().rollback(upload.public_id, upload.staging, upload.durable_offset)
    record_event(
        "upload.rollback",
        agency_id=upload.created_by.agency_id,
        object_type="upload",
        object_id=upload.public_id,
        details={"from": upload.offset, "to": upload.durable_offset},
    )
    # Committed here, not by the request: it must outlive what follows (see
    # portal/http/transactions.py).
    db.session.commit()
    db.session.refresh(upload)


def staged_locator(upload: Upload) -> str:
    """Where the upload's bytes are staged (a path, or an s3:// URL), for the record."""
    return get_staging().locator(upload.public_id, upload.staging)


def create_upload(
    user: User,
    *,
    length: int,
    max_bytes: int,
    filename: str = "",
    content_type: str = "",
    case: Case | None = None,
    quota: UploadQuota | None = None,
) -> Upload:
    """A new upload of ``length`` declared bytes, refused when it is too large, when
    the user's unfinished uploads are at their quota (``quota``; the app's settings by
    default), or when the staging store has no room for it."""
    if length <= 0:
        raise ValidationFailed("The file is empty.", field="Upload-Length")
    if length > max_bytes:
        raise UploadTooLarge(
            f"The file is {length / 1024**3:.1f} GiB; the largest accepted is "
            f"{max_bytes / 1024**3:.1f} GiB."
        )
    _check_quota(user, length, quota or UploadQuota.from_settings(current_app.config["TATTLETALE"]))
    _check_staging_space(length)
    upload = Upload(
        created_by=user,
        case=case,
        length=length,
        offset=0,
        filename=clean_filename(filename),
        client_content_type=content_type[:100],
        status=UploadStatus.RECEIVING.value,
        expires_at=utcnow() + UPLOAD_LIFETIME,
    )
    db.session.add(upload)
    db.session.flush()
    try:
        upload.staging = get_staging().create(upload.public_id, length)
    except StorageError as exc:
        log.warning("staging an upload failed", extra={"error": str(exc)})
        raise StorageFailed(
            "The server could not start this upload (a storage error). Try again."
        ) from None
    record_event(
        "upload.create",
        agency_id=user.agency_id,
        actor=user,
        object_type="upload",
        object_id=upload.public_id,
        details={"length": length, "filename": upload.filename},
    )
    db.session.flush()
    return upload


def _gib(count: int) -> str:
    return f"{count / 1024**3:.1f} GiB"


def _check_quota(user: User, length: int, quota: UploadQuota) -> None:
    # The user's row is locked (PostgreSQL) so that concurrent creations by one user
    # are counted one after the other, not all against the same total. SQLite has one
    # writer at a time anyway.
    db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
    count, declared = db.session.execute(
        select(func.count(Upload.id), func.coalesce(func.sum(Upload.length), 0)).where(
            Upload.created_by_id == user.id,
            Upload.status == UploadStatus.RECEIVING.value,
            Upload.expires_at > utcnow(),
        )
    ).one()
    if count >= quota.max_open:
        raise UploadQuotaExceeded(
            f"You have {count} unfinished uploads; at most {quota.max_open} may be open "
            "at once. Finish or cancel one before starting another."
        )
    if declared + length > quota.max_open_bytes:
        raise UploadQuotaExceeded(
            f"Your unfinished uploads already hold {_gib(declared)}; with this file "
            f"({_gib(length)}) they would pass the limit of {_gib(quota.max_open_bytes)}. "
            "Finish or cancel one before starting another."
        )


def _check_staging_space(length: int) -> None:
    """Refuse a declared length the staging store cannot hold: its free space must
    cover what every unfinished upload still has to send, this one, and a reserve."""
    usage = get_staging().free_space()
    if usage is None:
        # Staged on S3: no local disk is used, only one part's buffer in memory per
        # request receiving (media_pipeline.staging.DEFAULT_PART_BYTES).
        return
    free, total = usage
    promised = db.session.scalar(
        select(func.coalesce(func.sum(Upload.length - Upload.offset), 0)).where(
            Upload.status == UploadStatus.RECEIVING.value,
            Upload.expires_at > utcnow(),
        )
    )
    available = free - int(promised or 0) - int(total * STAGING_RESERVE_FRACTION)
    if length > available:
        raise InsufficientStorage(
            f"The server has no room for this file ({length / 1e6:,.1f} MB) right now: "
            f"{max(0, available) / 1e6:,.1f} MB are free for uploads. "
            "Try again later, or ask an administrator to free space."
        )


def get_upload_for(user: User, public_id: str) -> Upload:
    """Only the person who started an upload may see, continue or cancel it."""
    upload = db.session.scalar(select(Upload).where(Upload.public_id == public_id))
    if upload is None or upload.created_by_id != user.id:
        raise NotFound("No such upload.")
    if upload.status in (UploadStatus.CANCELLED.value, UploadStatus.EXPIRED.value):
        raise UploadGone("This upload was cancelled or has expired.")
    # Past its expiry but not yet swept by expire_uploads: gone all the same, for HEAD
    # as for PATCH (a client must not be told it may resume what will be deleted).
    unattached = (UploadStatus.RECEIVING.value, UploadStatus.COMPLETE.value)
    if upload.status in unattached and upload.expires_at <= utcnow():
        raise UploadGone("This upload has expired.")
    _recover_after_reboot(upload)
    return upload


#: Clip uploads, as :mod:`portal.services.receiving` writes them.
UPLOADS = StagedTable(Upload, UploadStatus.RECEIVING.value, "length")


def append_to_upload(
    upload: Upload, *, offset: int, stream: BinaryIO, checksum: Checksum | None = None
) -> Upload:
    """Write what ``stream`` yields at ``offset``. Returns the upload with its new offset.

    A dropped connection keeps every byte that arrived, so the client resumes from
    there; a checksum mismatch keeps none of this request's bytes. A write that fails
    (a full disk, the store unreachable) is not a dropped connection: what was stored
    before it is recorded, and the request is answered 507 (no room) or 500, so the
    client resumes from the recorded offset once the store is back.
    """
    if upload.status != UploadStatus.RECEIVING.value:
        raise Conflict("This upload is already complete.")
    if upload.expires_at <= utcnow():
        raise UploadGone("This upload has expired.")
    if offset != upload.offset:
        raise Conflict(f"Upload-Offset is {offset}, but the upload is at {upload.offset}.")

    def wants_durable(new_offset: int, complete: bool) -> bool:
        # ``upload`` as the last writer left it: refreshed under the lease.
        return not complete and new_offset - upload.durable_offset >= DURABLE_EVERY_BYTES

    def extra_values(point: Checkpoint, complete: bool) -> dict[str, Any]:
        values: dict[str, Any] = {
            "durable_offset": point.offset if point.durable else upload.durable_offset,
            "boot_id": current_boot_id(),
            "machine_id": current_machine_id(),
            "updated_at": utcnow(),
        }
        if complete:
            values["status"] = UploadStatus.COMPLETE.value
        return values

    def on_recorded(values: dict[str, Any], complete: bool) -> None:
        if complete:
            record_event(
                "upload.complete",
                agency_id=upload.created_by.agency_id,
                actor=upload.created_by,
                object_type="upload",
                object_id=upload.public_id,
                details={"sha256": values["sha256"], "length": upload.length},
            )

    receive(
        UPLOADS,
        upload,
        name=upload.public_id,
        offset=offset,
        stream=stream,
        checksum=checksum,
        durable=wants_durable,
        extra_values=extra_values,
        on_recorded=on_recorded,
    )
    return upload


def upload_from_stream(user: User, stream: BinaryIO, *, filename: str, case: Case | None) -> Upload:
    """A small file sent in one request (API multipart): the same path as tus, in one
    go, so it is hashed and staged exactly like a resumable upload."""
    stream.seek(0, 2)
    length = stream.tell()
    stream.seek(0)
    upload = create_upload(
        user,
        length=length,
        max_bytes=current_app.config["TATTLETALE"].max_upload_bytes,
        filename=filename,
        case=case,
    )
    return append_to_upload(upload, offset=0, stream=stream)


def make_staged_file_durable(upload: Upload) -> None:
    """Before a finished upload becomes evidence: on stable storage, and if the machine
    that received its last bytes restarted since (they may have been lost with its
    page cache), checked to still have the hash computed while it was received."""
    suspect = upload.durable_offset < upload.length and _written_here_before_a_restart(upload)
    try:
        get_staging().make_durable(
            upload.public_id, upload.staging, verify_sha256=upload.sha256 if suspect else None
        )
    except HashMismatch:
        raise UploadDamaged(
            "The upload was damaged by a server restart before it was saved. "
            "Please upload the file again."
        ) from None


def adopt_upload(upload: Upload, key: str) -> None:
    """The finished upload becomes the store's object ``key`` (the ingest job). Raises
    :class:`UploadDamaged`, :class:`StagedBytesMissing` (gone for good) or
    :class:`StorageError` (the store failed: worth another attempt)."""
    make_staged_file_durable(upload)
    get_staging().adopt(upload.public_id, upload.staging, key, upload.sha256, upload.length)


def terminate_upload(upload: Upload, user: User) -> None:
    """tus termination: the client cancels; the bytes (and the S3 multipart upload)
    are removed at once."""
    try:
        get_staging().discard(upload.public_id, upload.staging)
    except StorageError as exc:
        log.warning("removing a cancelled upload failed", extra={"error": str(exc)})
        raise StorageFailed("The server could not remove this upload's bytes. Try again.") from None
    upload.status = UploadStatus.CANCELLED.value
    record_event(
        "upload.cancel",
        agency_id=user.agency_id,
        actor=user,
        object_type="upload",
        object_id=upload.public_id,
    )
    db.session.flush()


def expire_uploads() -> int:
    """Remove uploads that were never finished or never attached to a case in time
    (aborting their S3 multipart uploads). One the store cannot remove now is left
    for the next sweep."""
    now = utcnow()
    stale = db.session.scalars(
        select(Upload).where(
            Upload.expires_at <= now,
            Upload.status.in_([UploadStatus.RECEIVING.value, UploadStatus.COMPLETE.value]),
        )
    ).all()
    staging = get_staging()
    expired = 0
    for upload in stale:
        try:
            staging.discard(upload.public_id, upload.staging)
        except StorageError as exc:
            log.warning("removing an expired upload failed", extra={"error": str(exc)})
            continue
        upload.status = UploadStatus.EXPIRED.value
        record_event(
            "upload.expire",
            agency_id=upload.created_by.agency_id,
            object_type="upload",
            object_id=upload.public_id,
        )
        expired += 1
    db.session.flush()
    return expired
