"""Receiving one request's bytes of a resumable upload into the store's staging, for
any table whose rows are such uploads: a staff member's clip upload
(:mod:`portal.services.uploads`) and a tipster's file (:mod:`portal.services.attachments`).

The bytes go straight from the request stream to the staging of the evidence store
(:mod:`media_pipeline.staging`: a partial file inside the local store, or an S3
multipart upload), hashed on the way, in fixed-size chunks: memory stays flat whatever
the size, and the SHA-256 of the file exists the moment the last byte arrives.

Nothing about an upload lives in a process between requests: the row holds the
offset, the staging's state and the SHA-256 state at that offset, so any web machine
can take any request of any upload (consecutive PATCHes of one upload may reach
different machines), and any worker can process it. One request writes at a time: it
takes a lease on the row (a conditional UPDATE), renews it while it receives, and
records its new offset only while it still holds it; another request meanwhile is
refused (:class:`WriterBusy`, answered 409, which tus clients retry).

The errors raised here are worded for staff; the tip files' service words its own
for the tipster (translated) by catching them.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO, NamedTuple

from sqlalchemy import or_, update

from media_pipeline import StorageError
from media_pipeline.hashing import ResumableSha256
from media_pipeline.staging import Checkpoint, StagedBytesMissing, StagedWriter, Staging
from portal.extensions import db
from portal.models.base import utcnow
from portal.services.errors import (
    ChecksumMismatch,
    Conflict,
    InsufficientStorage,
    StorageFailed,
    UploadTooLarge,
)
from portal.services.storage import get_staging

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
# Errors of a write that mean "no room": answered 507, the upload kept resumable.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# The writing request's lease on its upload: renewed every RENEW_AFTER_S while bytes
# arrive, so that it stays WRITER_LEASE ahead of anything the request stores (an S3
# part is sent within seconds). A request whose process died frees the upload when
# its lease lapses; until then a resume is answered 409, which tus clients retry.
WRITER_LEASE = timedelta(seconds=60)
RENEW_AFTER_S = 10.0
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


@dataclass(frozen=True)
class StagedTable:
    """A table whose rows are resumable uploads. ``model`` has the columns ``id``,
    ``status``, ``offset``, ``staging`` (JSON), ``sha256_state``, ``sha256``,
    ``writer_token`` and ``writer_until``; ``receiving`` is the status of a row whose
    bytes still arrive, and ``length`` names the column of its declared length."""

    model: Any
    receiving: str
    length: str


class Checksum(NamedTuple):
    """The digest a client says one request's body has (tus checksum extension)."""

    algorithm: str
    digest: bytes


class WriterBusy(Conflict):
    """Another request holds the upload's lease (or moved it on meanwhile)."""


class WriterDisplaced(Conflict):
    """This request lost the upload's lease while it received."""


class BodyTooLong(UploadTooLarge):
    """More bytes were sent than the upload declared; none of this request's kept."""


class StagedBytesLost(StorageFailed):
    """The staged bytes the row records are not in the staging any more."""


class StagingUnreachable(StorageFailed):
    """The staging could not be opened (the store is down)."""


class WriteFailed(StorageFailed):
    """Storing the body failed; what arrived before is kept (``kept`` bytes)."""

    def __init__(self, message: str, *, kept: int) -> None:
        super().__init__(message)
        self.kept = kept


class NoRoomWhileWriting(InsufficientStorage):
    """Storing the body failed for want of room; ``kept`` bytes are kept."""

    def __init__(self, message: str, *, kept: int) -> None:
        super().__init__(message)
        self.kept = kept


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


class Lease:
    """This request's right to write to one upload: taken with a conditional UPDATE
    (only if no live lease is held and the offset is what the client says), renewed
    while bytes arrive, released when the request records its offset or gives up."""

    def __init__(self, table: StagedTable, row_id: int, token: str) -> None:
        self.table = table
        self.row_id = row_id
        self.token = token
        self._renewed = time.monotonic()
        self._lost = False

    @classmethod
    def take(cls, table: StagedTable, row: Any, offset: int) -> Lease:
        model = table.model
        token = secrets.token_hex(16)
        now = utcnow()
        result = db.session.execute(
            update(model)
            .where(
                model.id == row.id,
                model.offset == offset,
                model.status == table.receiving,
                or_(model.writer_token == "", model.writer_until < now),
            )
            .values(writer_token=token, writer_until=now + WRITER_LEASE)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            raise WriterBusy("Another request is writing to this upload.")
        # Committed at once: the other machines must see the lease while this one
        # receives (see portal/http/transactions.py).
        db.session.commit()
        return cls(table, row.id, token)

    def hold(self) -> None:
        """Renew the lease when it is due; raise :class:`WriterDisplaced` if it was lost."""
        if time.monotonic() - self._renewed < RENEW_AFTER_S:
            return
        model = self.table.model
        result = db.session.execute(
            update(model)
            .where(model.id == self.row_id, model.writer_token == self.token)
            .values(writer_until=utcnow() + WRITER_LEASE)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self._lost = True
            raise WriterDisplaced("This upload was taken over by another request.")
        self._renewed = time.monotonic()

    def check(self) -> None:
        """From any thread, without the database: raise :class:`WriterDisplaced`
        unless the lease is held with at least half its length to run (the receiving
        thread renews it every RENEW_AFTER_S). Called before anything is persisted."""
        if self._lost or time.monotonic() - self._renewed > WRITER_LEASE.total_seconds() / 2:
            raise WriterDisplaced("This upload was taken over by another request.")

    def release(self) -> None:
        model = self.table.model
        db.session.rollback()
        db.session.execute(
            update(model)
            .where(model.id == self.row_id, model.writer_token == self.token)
            .values(writer_token="", writer_until=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


@dataclass
class _Received:
    """What one request's body loop ended with."""

    written: int = 0
    too_long: bool = False
    disconnected: bool = False
    write_error: OSError | StorageError | None = None


def _receive(
    stream: BinaryIO,
    writer: StagedWriter,
    remaining: int,
    body_hasher: Any,
    lease: Lease,
) -> _Received:
    """Copy the body into the writer until it ends, the client goes away, it passes
    the declared length, or a write fails.

    Two buffers, and one thread that stores and hashes (``writer.write``) the block
    this one has just read while this one reads the next: receiving from the socket
    and storing overlap. Measured on 1 GiB (bench/upload_bench.py, two busy cores):
    one thread doing read, write and hash in turn reached 0.63-0.75 of the bare hashed
    copy, the write (page-cache copy, dirty-page throttling) being the largest part.
    Memory: two CHUNK_BYTES buffers per request, whatever the size of the upload.
    """
    received = _Received()
    buffers = (bytearray(CHUNK_BYTES), bytearray(CHUNK_BYTES))
    taken = 0  # handed to the writer, stored or not yet
    pending: Future[None] | None = None
    pending_count = 0
    with ThreadPoolExecutor(1, thread_name_prefix="upload-store") as pool:
        try:
            turn = 0
            while True:
                buffer = buffers[turn]
                turn ^= 1
                count = 0
                if not received.disconnected:
                    # One byte past what is still expected: enough to tell a too-long body.
                    count, received.disconnected = _fill(
                        stream, buffer, min(CHUNK_BYTES, remaining - taken + 1)
                    )
                if pending is not None:
                    error = pending.exception()
                    pending = None
                    if error is not None:
                        if not isinstance(error, OSError | StorageError):
                            raise error
                        received.write_error = error  # the hashes never saw that block
                        break
                    received.written += pending_count
                if not count:
                    break
                if count > remaining - taken:
                    received.too_long = True
                    break
                lease.hold()
                view = memoryview(buffer)[:count]
                if body_hasher is not None:
                    body_hasher.update(view)
                pending, pending_count = pool.submit(writer.write, view), count
                taken += count
        finally:
            if pending is not None:
                pending.exception()  # never leave the writer running past the request
    return received


#: What a table adds to the recorded row: given the checkpoint about to be recorded
#: and whether it completes the upload, the extra column values (called under the
#: lease, with the row as the last writer left it).
ExtraValues = Callable[[Checkpoint, bool], dict[str, Any]]


def receive(
    table: StagedTable,
    row: Any,
    *,
    name: str,
    offset: int,
    stream: BinaryIO,
    checksum: Checksum | None = None,
    durable: Callable[[int, bool], bool],
    extra_values: ExtraValues,
    on_recorded: Callable[[dict[str, Any], bool], None] | None = None,
) -> None:
    """Write what ``stream`` yields at ``offset`` of the upload ``row`` (staged as
    ``name``), and record the new offset in the row (refreshed).

    ``durable(new_offset, complete)`` says whether this request's end must be on
    stable storage (local staging fsyncs then). ``on_recorded(values, complete)`` runs
    after the row is moved on to ``values``, in the same transaction (an audit event).

    A dropped connection keeps every byte that arrived, so the client resumes from
    there; a checksum mismatch keeps none of this request's bytes. A write that fails
    (a full disk, the store unreachable) is not a dropped connection: what was stored
    before it is recorded, and :class:`NoRoomWhileWriting` or :class:`WriteFailed` is
    raised, so the client resumes from the recorded offset once the store is back.
    """
    lease = Lease.take(table, row, offset)
    try:
        # Read again under the lease: the state the last writer recorded.
        db.session.refresh(row)
        staging = get_staging()
        writer = _open_writer(staging, name, row, lease)
        length = int(getattr(row, table.length))
        remaining = length - offset
        # No transaction (nor pooled connection) is held while the body arrives, which
        # may take minutes: the lease is what keeps other writers out.
        db.session.commit()
        record = _Recorder(table, row, staging, lease, extra_values, on_recorded)
        try:
            body_hasher = CHECKSUM_ALGORITHMS[checksum.algorithm]() if checksum else None
            received = _receive(stream, writer, remaining, body_hasher, lease)
            # On refusal this request's bytes are dropped: nothing it stored is
            # referenced by the recorded state, which stays as it was.
            if received.too_long:
                raise BodyTooLong("More bytes were sent than the declared Upload-Length.")
            if received.write_error is not None:
                # A body cut short by the failure cannot be checked against its checksum.
                kept = writer.salvage() if checksum is None else None
                _keep_after_write_error(name, offset, record, kept, received.write_error)
            if checksum and body_hasher is not None and body_hasher.digest() != checksum.digest:
                raise ChecksumMismatch("The chunk does not match its Upload-Checksum.")
            new_offset = offset + received.written
            complete = new_offset == length
            try:
                lease.hold()
                point = writer.checkpoint(final=complete, durable=durable(new_offset, complete))
            except (OSError, StorageError) as exc:
                _keep_after_write_error(name, offset, record, writer.salvage(), exc)
        finally:
            writer.close()
        record(point, complete=complete)
    except BaseException:
        lease.release()
        raise


def _open_writer(staging: Staging, name: str, row: Any, lease: Lease) -> StagedWriter:
    try:
        return staging.open_writer(
            name,
            row.staging,
            offset=row.offset,
            durable_offset=getattr(row, "durable_offset", row.offset),
            hash_state=row.sha256_state,
            guard=lease.check,
        )
    except StagedBytesMissing as exc:
        log.error("staged upload missing", extra={"upload": name, "error": str(exc)})
        raise StagedBytesLost(
            "The bytes received so far for this upload cannot be found on the server. "
            "Cancel it and upload the file again."
        ) from None
    except StorageError as exc:
        log.warning("staged upload unreachable", extra={"upload": name, "error": str(exc)})
        raise StagingUnreachable(
            "The server could not reach this upload's storage. Try again to continue it."
        ) from None


def _keep_after_write_error(
    name: str,
    offset: int,
    record: _Recorder,
    kept: Checkpoint | None,
    error: OSError | StorageError,
) -> None:
    """After a failed write: record what the writer could keep (``kept``; None keeps
    nothing of this request), and raise the error the client is answered with.
    Never returns."""
    at = offset
    if kept is not None and kept.offset != offset:
        record(kept, complete=False)
        at = kept.offset
    errno_ = error.errno if isinstance(error, OSError) else None
    log.warning("upload write failed", extra={"upload": name, "errno": errno_, "kept": at})
    if errno_ in _NO_ROOM:
        raise NoRoomWhileWriting(
            "The server ran out of room while saving this upload. What arrived before "
            f"is kept ({at:,} bytes): continue the upload once there is room again.",
            kept=at,
        )
    raise WriteFailed(
        "The server could not save this upload (a storage error). What arrived before "
        f"is kept ({at:,} bytes): try again to continue it.",
        kept=at,
    )


class _Recorder:
    """Moves the row to a checkpoint, only while this request holds the lease; with
    ``complete`` the upload's last byte is in and its SHA-256 is final. The lease is
    released by the same UPDATE."""

    def __init__(
        self,
        table: StagedTable,
        row: Any,
        staging: Staging,
        lease: Lease,
        extra_values: ExtraValues,
        on_recorded: Callable[[dict[str, Any], bool], None] | None,
    ) -> None:
        self.table = table
        self.row = row
        self.staging = staging
        self.lease = lease
        self.extra_values = extra_values
        self.on_recorded = on_recorded

    def __call__(self, point: Checkpoint, *, complete: bool) -> None:
        model, row = self.table.model, self.row
        values: dict[str, Any] = {
            "offset": point.offset,
            "staging": point.state if point.state else row.staging,
            "sha256_state": point.hash_state,
            "writer_token": "",
            "writer_until": None,
        }
        if complete:
            values.update(sha256=ResumableSha256(point.hash_state).hexdigest(), sha256_state=b"")
        values.update(self.extra_values(point, complete))
        result = db.session.execute(
            update(model)
            .where(
                model.id == row.id,
                model.offset == row.offset,
                model.writer_token == self.lease.token,
                model.status == self.table.receiving,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            db.session.rollback()
            raise WriterBusy("The upload moved on in another request.")
        if self.on_recorded is not None:
            self.on_recorded(values, complete)
        # Committed here, not by the request: it must outlive what follows (see
        # portal/http/transactions.py).
        db.session.commit()
        db.session.refresh(row)
        self.staging.remove_objects(point.obsolete)
