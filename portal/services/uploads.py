"""Resumable uploads (the tus 1.0 protocol's server side, without the HTTP).

The bytes go straight from the request stream to a partial file, hashed on the way,
in fixed-size chunks: memory stays flat whatever the size, and the SHA-256 of the
original exists the moment the last byte arrives. The database row holds the offset
that is safely on disk; the file is fsynced before the row moves forward.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import os
import queue
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Case, Upload, UploadStatus, User
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.errors import (
    ChecksumMismatch,
    Conflict,
    NotFound,
    UploadDamaged,
    UploadGone,
    UploadTooLarge,
    ValidationFailed,
)
from portal.services.storage import upload_dir

CHUNK_BYTES = 4 * 1024 * 1024
# fsync a receiving upload at least this often (a checkpoint the client can resume
# from after a machine crash). Not after every request, and not at the end: that ties
# the upload's speed to the disk's write-back rate. The finished file is fsynced by the
# ingest job before it becomes evidence (see ``make_staged_file_durable``).
DURABLE_EVERY_BYTES = 1024 * 1024 * 1024
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
UPLOAD_LIFETIME = timedelta(hours=24)
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


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


class _PipelinedHasher:
    """Hashes blocks in a second thread while the request thread keeps receiving and
    writing. hashlib releases the GIL on large blocks, so hashing runs beside the
    socket and disk work instead of after it (in-line hashing made the endpoint about
    half as fast as a bare stream copy in this project's upload benchmark).

    The blocks are a fixed pool of reused buffers: memory is the pool, whatever the
    size of the upload, and no 4 MiB buffer is allocated (and page-faulted in) per read.
    """

    POOL = 3

    def __init__(self, *hashers: Any) -> None:
        self._hashers = [h for h in hashers if h is not None]
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(self.POOL):
            self._free.put(bytearray(CHUNK_BYTES))
        self._full: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="upload-hasher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buffer, length = item
            with memoryview(buffer) as view:
                for hasher in self._hashers:
                    hasher.update(view[:length])
            self._free.put(buffer)

    def buffer(self) -> bytearray:
        """A free buffer; waits while the hasher still holds all of them."""
        return self._free.get()

    def update(self, buffer: bytearray, length: int) -> None:
        self._full.put((buffer, length))

    def release(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def finish(self) -> None:
        self._full.put(None)
        self._thread.join()


def _fill(stream: BinaryIO, buffer: bytearray, limit: int) -> int:
    """Read into ``buffer`` until it holds ``limit`` bytes or the stream ends."""
    readinto = getattr(stream, "readinto", None)
    filled = 0
    with memoryview(buffer) as view:
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
    return filled


def clean_filename(name: str) -> str:
    """The client's file name for display only: no control characters, no path."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255]


def parse_metadata(header: str | None) -> dict[str, str]:
    """tus ``Upload-Metadata``: comma-separated ``key base64value`` pairs."""
    result: dict[str, str] = {}
    if not header:
        return result
    if len(header) > 4096:
        raise ValidationFailed("Upload-Metadata is too long.", field="Upload-Metadata")
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise ValidationFailed(
                f"Upload-Metadata value for {key!r} is not base64 UTF-8.", field="Upload-Metadata"
            ) from None
        result[key] = decoded
    return result


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
) -> Upload:
    if length <= 0:
        raise ValidationFailed("The file is empty.", field="Upload-Length")
    if length > max_bytes:
        raise UploadTooLarge(
            f"The file is {length / 1024**3:.1f} GiB; the largest accepted is "
            f"{max_bytes / 1024**3:.1f} GiB."
        )
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
    db.session.commit()
    return upload


def get_upload_for(user: User, public_id: str) -> Upload:
    """Only the person who started an upload may see, continue or cancel it."""
    upload = db.session.scalar(select(Upload).where(Upload.public_id == public_id))
    if upload is None or upload.created_by_id != user.id:
        raise NotFound("No such upload.")
    if upload.status in (UploadStatus.CANCELLED.value, UploadStatus.EXPIRED.value):
        raise UploadGone("This upload was cancelled or has expired.")
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


def _parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ValidationFailed(
            f"Checksum algorithm {algorithm!r} is not supported.", field="Upload-Checksum"
        )
    try:
        return algorithm, base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValidationFailed("Upload-Checksum is not base64.", field="Upload-Checksum") from None


def append_to_upload(
    upload: Upload, *, offset: int, stream: BinaryIO, checksum_header: str | None = None
) -> Upload:
    """Write what ``stream`` yields at ``offset``. Returns the upload with its new offset.

    A dropped connection keeps every byte that arrived, so the client resumes from
    there; a checksum mismatch keeps none of this request's bytes.
    """
    if upload.status != UploadStatus.RECEIVING.value:
        raise Conflict("This upload is already complete.")
    if upload.expires_at <= utcnow():
        raise UploadGone("This upload has expired.")
    if offset != upload.offset:
        raise Conflict(f"Upload-Offset is {offset}, but the upload is at {upload.offset}.")
    checksum = _parse_checksum(checksum_header)
    path = partial_path(upload)
    with open(path, "r+b") as partial:
        try:
            # One writer per upload, across threads and processes sharing the disk.
            fcntl.flock(partial, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("Another request is writing to this upload.") from None
        state = _hash_state(upload, path)
        partial.truncate(upload.offset)  # drop bytes a crashed request left unrecorded
        partial.seek(upload.offset)
        body_hasher = CHECKSUM_ALGORITHMS[checksum[0]]() if checksum else None
        remaining = upload.length - upload.offset
        written = 0
        too_long = False
        hashing = _PipelinedHasher(state.hasher, body_hasher)
        try:
            while True:
                buffer = hashing.buffer()
                # One byte past what is still expected: enough to tell a too-long body.
                count = _fill(stream, buffer, min(CHUNK_BYTES, remaining - written + 1))
                if not count:
                    hashing.release(buffer)
                    break
                if count > remaining - written:
                    too_long = True
                    count = remaining - written
                with memoryview(buffer) as view:
                    partial.write(view[:count])
                hashing.update(buffer, count)
                written += count
                if too_long:
                    break
        except OSError:
            # The client went away mid-body (the HTTP layer turns that into an
            # OSError): keep what arrived, so the client resumes from there.
            pass
        finally:
            hashing.finish()
        # On refusal this request's bytes are dropped, and so is the running hash (it
        # has seen them): the next request re-hashes the partial file once.
        if too_long:
            partial.truncate(upload.offset)
            raise UploadTooLarge("More bytes were sent than the declared Upload-Length.")
        if checksum and body_hasher is not None and body_hasher.digest() != checksum[1]:
            partial.truncate(upload.offset)
            raise ChecksumMismatch("The chunk does not match its Upload-Checksum.")
        new_offset = upload.offset + written
        complete = new_offset == upload.length
        partial.flush()
        durable = upload.durable_offset
        if not complete and new_offset - durable >= DURABLE_EVERY_BYTES:
            os.fsync(partial.fileno())
            durable = new_offset
    values: dict[str, Any] = {
        "offset": new_offset,
        "durable_offset": durable,
        "boot_id": current_boot_id(),
        "updated_at": utcnow(),
    }
    if complete:
        values["status"] = UploadStatus.COMPLETE.value
        values["sha256"] = state.hasher.hexdigest()
    result = db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.offset == upload.offset)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise Conflict("The upload moved on in another request.")
    if complete:
        record_event(
            "upload.complete",
            agency_id=upload.created_by.agency_id,
            actor=upload.created_by,
            object_type="upload",
            object_id=upload.public_id,
            details={"sha256": values["sha256"], "length": upload.length},
        )
    db.session.commit()
    db.session.refresh(upload)
    if not complete:
        _hash_cache.put(upload.id, _HashState(new_offset, state.hasher))
    return upload


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
    db.session.commit()


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
    db.session.commit()
    return len(stale)
