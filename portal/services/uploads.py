"""Resumable uploads (the tus 1.0 protocol's server side, without the HTTP).

The bytes go straight from the request stream to a partial file, hashed on the way,
in fixed-size chunks: memory stays flat whatever the size, and the SHA-256 of the
original exists the moment the last byte arrives. The database row holds the offset
that is safely on disk; the file is fsynced before the row moves forward.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import logging
import os
import shutil
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from flask import current_app
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models import Case, Upload, UploadStatus, User
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.errors import (
    ChecksumMismatch,
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
from portal.services.storage import upload_dir

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
# Errors of a write that mean "no room": answered 507, the upload kept resumable.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# fsync a receiving upload at least this often (a checkpoint the client can resume
# from after a machine crash). Not after every request, and not at the end: that ties
# the upload's speed to the disk's write-back rate. The finished file is fsynced by the
# ingest job before it becomes evidence (see ``make_staged_file_durable``).
DURABLE_EVERY_BYTES = 1024 * 1024 * 1024
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
UPLOAD_LIFETIME = timedelta(hours=24)
# Part of the staging filesystem that uploads never promise away: the database, logs
# and ingest's work files may share it.
STAGING_RESERVE_FRACTION = 0.01
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


@dataclass(frozen=True)
class UploadQuota:
    """What one user's unfinished uploads may hold at once."""

    max_open: int
    max_open_bytes: int

    @classmethod
    def from_settings(cls, settings: Any) -> UploadQuota:
        return cls(settings.max_open_uploads_per_user, settings.max_open_upload_bytes_per_user)


class Checksum(NamedTuple):
    """The digest a client says one request's body has (tus checksum extension)."""

    algorithm: str
    digest: bytes


@dataclass
class _HashState:
    offset: int
    hasher: Any


class _HashCache:
    """Running SHA-256 states of uploads in progress, kept between PATCH requests.

    A resumed upload whose state is not here (the process restarted, or the request
    reached another web process) is re-hashed from its partial file once.
    """

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[int, _HashState] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def take(self, upload_id: int) -> _HashState | None:
        with self._lock:
            return self._items.pop(upload_id, None)

    def put(self, upload_id: int, state: _HashState) -> None:
        with self._lock:
            self._items[upload_id] = state
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_hash_cache = _HashCache()


def _fill(stream: BinaryIO, buffer: bytearray, limit: int) -> tuple[int, bool]:
    """Read into ``buffer`` until it holds ``limit`` bytes or the stream ends.

    Returns the bytes read and whether the client went away (reading raised
    ``OSError``, which the HTTP layer makes of a closed connection); what arrived
    before that is in the buffer and counted.
    """
    readinto = getattr(stream, "readinto", None)
    filled = 0
    with memoryview(buffer) as view:
        try:
            while filled < limit:
                if readinto is not None:
                    count = readinto(view[filled:limit])
                else:
                    block = stream.read(limit - filled)
                    count = len(block)
                    view[filled : filled + count] = block
                if not count:
                    break
                filled += count
        except OSError:
            return filled, True
    return filled, False


def _write_all(partial: io.FileIO, view: memoryview) -> None:
    """An unbuffered write: a short write is continued, an error raised as it comes,
    so what reached the file is known exactly (a buffered writer would keep bytes
    back and raise again when closed)."""
    while view:
        count = partial.write(view)
        if count is None:  # only for non-blocking files, which this is not
            raise BlockingIOError(errno.EAGAIN, "write would block")
        view = view[count:]


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


def _recover_after_reboot(upload: Upload) -> None:
    """Bytes past ``durable_offset`` written before the machine restarted may not be
    on disk. Roll back to what is, so the client re-sends the rest; never hash zeros
    a crash left in place of video."""
    if upload.status != UploadStatus.RECEIVING.value or upload.offset == upload.durable_offset:
        return
    if upload.boot_id and upload.boot_id == current_boot_id():
        return
    _hash_cache.take(upload.id)
    with open(partial_path(upload), "r+b") as partial:
        partial.truncate(upload.durable_offset)
    record_event(
        "upload.rollback",
        agency_id=upload.created_by.agency_id,
        object_type="upload",
        object_id=upload.public_id,
        details={"from": upload.offset, "to": upload.durable_offset},
    )
    upload.offset = upload.durable_offset
    # Committed here, not by the request: it must outlive what follows (see
    # portal/http/transactions.py).
    db.session.commit()


def partial_path(upload: Upload) -> Path:
    return upload_dir() / f"{upload.public_id}.part"


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
    # O_EXCL: the name comes from a fresh random id; never open someone else's file.
    fd = os.open(partial_path(upload), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
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
    usage = shutil.disk_usage(upload_dir())
    promised = db.session.scalar(
        select(func.coalesce(func.sum(Upload.length - Upload.offset), 0)).where(
            Upload.status == UploadStatus.RECEIVING.value,
            Upload.expires_at > utcnow(),
        )
    )
    available = usage.free - int(promised or 0) - int(usage.total * STAGING_RESERVE_FRACTION)
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


def _hash_state(upload: Upload, path: Path) -> _HashState:
    state = _hash_cache.take(upload.id)
    if state is not None and state.offset == upload.offset:
        return state
    hasher = hashlib.sha256()
    with open(path, "rb") as partial:
        remaining = upload.offset
        while remaining:
            block = partial.read(min(CHUNK_BYTES, remaining))
            if not block:
                raise Conflict("The partial upload is shorter than recorded.")
            hasher.update(block)
            remaining -= len(block)
    return _HashState(upload.offset, hasher)


def append_to_upload(
    upload: Upload, *, offset: int, stream: BinaryIO, checksum: Checksum | None = None
) -> Upload:
    """Write what ``stream`` yields at ``offset``. Returns the upload with its new offset.

    A dropped connection keeps every byte that arrived, so the client resumes from
    there; a checksum mismatch keeps none of this request's bytes. A write that fails
    (a full disk) is not a dropped connection: the bytes written before it are made
    durable and recorded, and the request is answered 507 (no room) or 500, so the
    client resumes from the recorded offset once there is room again.
    """
    if upload.status != UploadStatus.RECEIVING.value:
        raise Conflict("This upload is already complete.")
    if upload.expires_at <= utcnow():
        raise UploadGone("This upload has expired.")
    if offset != upload.offset:
        raise Conflict(f"Upload-Offset is {offset}, but the upload is at {upload.offset}.")
    path = partial_path(upload)
    with open(path, "r+b", buffering=0) as partial:
        try:
            # One writer per upload, across threads and processes sharing the disk.
            fcntl.flock(partial, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("Another request is writing to this upload.") from None
        state = _hash_state(upload, path)
        partial.truncate(upload.offset)  # drop bytes a crashed request left unrecorded
        partial.seek(upload.offset)
        body_hasher = CHECKSUM_ALGORITHMS[checksum.algorithm]() if checksum else None
        hashers = [h for h in (state.hasher, body_hasher) if h is not None]
        remaining = upload.length - upload.offset
        written = 0
        too_long = False
        disconnected = False
        write_error: OSError | None = None
        # Hashed in this thread, in the loop that writes, from one reused buffer: the
        # same work as a bare copy that hashes, without a new buffer per read. A
        # second hashing thread was tried and measured slower (0.6-0.9 of the bare
        # hashed copy in bench/upload_bench.py on two cores): the receiving thread and
        # the client already keep them busy, so it only added hand-offs.
        buffer = bytearray(CHUNK_BYTES)
        with memoryview(buffer) as view:
            while not disconnected:
                # One byte past what is still expected: enough to tell a too-long body.
                count, disconnected = _fill(
                    stream, buffer, min(CHUNK_BYTES, remaining - written + 1)
                )
                if not count:
                    break
                if count > remaining - written:
                    too_long = True
                    count = remaining - written
                try:
                    _write_all(partial, view[:count])
                except OSError as exc:
                    write_error = exc  # the hashers never see this block
                    break
                for hasher in hashers:
                    hasher.update(view[:count])
                written += count
                if too_long:
                    break
        # On refusal this request's bytes are dropped, and so is the running hash (it
        # has seen them): the next request re-hashes the partial file once.
        if too_long:
            partial.truncate(upload.offset)
            raise UploadTooLarge("More bytes were sent than the declared Upload-Length.")
        if write_error is not None:
            # A body cut short by the failure cannot be checked against its checksum.
            kept = upload.offset if checksum else upload.offset + written
            hashed = _HashState(upload.offset + written, state.hasher)
            _keep_after_write_error(upload, partial, kept, hashed, write_error)
        if checksum and body_hasher is not None and body_hasher.digest() != checksum.digest:
            partial.truncate(upload.offset)
            raise ChecksumMismatch("The chunk does not match its Upload-Checksum.")
        new_offset = upload.offset + written
        complete = new_offset == upload.length
        durable = upload.durable_offset
        if not complete and new_offset - durable >= DURABLE_EVERY_BYTES:
            os.fsync(partial.fileno())
            durable = new_offset
    _record_offset(upload, new_offset, durable, state.hasher.hexdigest() if complete else None)
    if not complete:
        _hash_cache.put(upload.id, _HashState(new_offset, state.hasher))
    return upload


def _keep_after_write_error(
    upload: Upload, partial: io.FileIO, kept: int, state: _HashState, error: OSError
) -> None:
    """After a failed write: keep the first ``kept`` bytes, durably, record them, and
    raise the error the client is answered with. Never returns.

    ``state`` hashed the file up to where the last whole block was written.
    """
    hashed_to = state.offset
    try:
        partial.truncate(kept)  # a block the failure cut in two is not kept
        os.fsync(partial.fileno())
    except OSError:
        # Not even what was written before is known to be on disk: fall back to the
        # last offset that was fsynced.
        kept = upload.durable_offset
        with contextlib.suppress(OSError):
            partial.truncate(kept)
    public_id = upload.public_id
    if kept != upload.offset:
        _record_offset(upload, kept, kept, None)
    if kept == hashed_to:
        _hash_cache.put(upload.id, _HashState(kept, state.hasher))
    log.warning(
        "upload write failed", extra={"upload": public_id, "errno": error.errno, "kept": kept}
    )
    if error.errno in _NO_ROOM:
        raise InsufficientStorage(
            "The server ran out of room while saving this upload. What arrived before "
            f"is kept ({kept:,} bytes): continue the upload once there is room again."
        )
    raise StorageFailed(
        "The server could not save this upload (a storage error). What arrived before "
        f"is kept ({kept:,} bytes): try again to continue it."
    )


def _record_offset(upload: Upload, new_offset: int, durable: int, sha256: str | None) -> None:
    """Move the row to ``new_offset``, only if no other request moved it meanwhile;
    with ``sha256`` the upload is complete."""
    values: dict[str, Any] = {
        "offset": new_offset,
        "durable_offset": durable,
        "boot_id": current_boot_id(),
        "updated_at": utcnow(),
    }
    if sha256 is not None:
        values["status"] = UploadStatus.COMPLETE.value
        values["sha256"] = sha256
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.offset == upload.offset)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise Conflict("The upload moved on in another request.")
    if sha256 is not None:
        record_event(
            "upload.complete",
            agency_id=upload.created_by.agency_id,
            actor=upload.created_by,
            object_type="upload",
            object_id=upload.public_id,
            details={"sha256": sha256, "length": upload.length},
        )
    # Committed here, not by the request: it must outlive what follows (see
    # portal/http/transactions.py).
    db.session.commit()
    db.session.refresh(upload)


def upload_from_stream(user: User, stream: BinaryIO, *, filename: str, case: Case | None) -> Upload:
    """A small file sent in one request (API multipart): the same path as tus, in one
    go, so it is hashed and staged exactly like a resumable upload."""
    stream.seek(0, os.SEEK_END)
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
    """Before a finished upload becomes evidence: fsync it, and if the machine restarted
    since its last bytes arrived (they may have been lost with the page cache), check
    the file still has the hash computed while it was received."""
    path = partial_path(upload)
    with open(path, "rb") as staged:
        os.fsync(staged.fileno())
        if upload.durable_offset >= upload.length or upload.boot_id == current_boot_id():
            return
        hasher = hashlib.sha256()
        while block := staged.read(CHUNK_BYTES):
            hasher.update(block)
    if hasher.hexdigest() != upload.sha256:
        raise UploadDamaged(
            "The upload was damaged by a server restart before it was saved. "
            "Please upload the file again."
        )


def terminate_upload(upload: Upload, user: User) -> None:
    """tus termination: the client cancels; the bytes are removed at once."""
    _hash_cache.take(upload.id)
    upload.status = UploadStatus.CANCELLED.value
    partial_path(upload).unlink(missing_ok=True)
    record_event(
        "upload.cancel",
        agency_id=user.agency_id,
        actor=user,
        object_type="upload",
        object_id=upload.public_id,
    )
    db.session.flush()


def expire_uploads() -> int:
    """Remove uploads that were never finished or never attached to a case in time."""
    now = utcnow()
    stale = db.session.scalars(
        select(Upload).where(
            Upload.expires_at <= now,
            Upload.status.in_([UploadStatus.RECEIVING.value, UploadStatus.COMPLETE.value]),
        )
    ).all()
    for upload in stale:
        _hash_cache.take(upload.id)
        partial_path(upload).unlink(missing_ok=True)
        upload.status = UploadStatus.EXPIRED.value
        record_event(
            "upload.expire",
            agency_id=upload.created_by.agency_id,
            object_type="upload",
            object_id=upload.public_id,
        )
    db.session.flush()
    return len(stale)
