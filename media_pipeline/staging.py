"""Where resumable uploads are received: on the evidence store itself, so that any web
machine can take any request of an upload and any worker can ingest it.

The caller (the portal's tus service) keeps, per upload, an offset, a small JSON state
and the SHA-256 state; this module turns "bytes at this offset" into stored bytes and
hands back the state to record. Nothing here is kept in a process between requests.

- :class:`LocalStaging`: a partial file inside the local store's root (a rename into
  place at the end; on a filesystem shared by several machines, every one sees it).
- :class:`S3Staging`: one S3 multipart upload per upload, as tusd's s3store does.
  Parts are ``part_bytes`` long except the last; a request that ends between part
  boundaries stores what it has past the last part as an "incomplete part" object,
  which the next request, on whichever machine, reads back and continues.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import io
import logging
import math
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import HashMismatch, ObjectNotFound, StorageError
from .hashing import CHUNK_SIZE, ResumableSha256
from .storage import MIB, MIN_PART_BYTES, StoredObject

if TYPE_CHECKING:
    from .storage import LocalStore, S3Store

log = logging.getLogger(__name__)

#: S3 refuses a multipart upload of more than 10,000 parts.
MAX_PARTS = 10_000
#: The part size of a staged S3 upload unless the declared length needs larger parts
#: (length / 10,000, rounded up to a MiB). One part is held in memory per request
#: receiving bytes: 8 MiB per upload in flight, the same as the store's own writes.
DEFAULT_PART_BYTES = 8 * MIB


class StagedBytesMissing(StorageError):
    """The staged bytes of an upload are not where its record says (removed, or on a
    filesystem this machine does not see)."""


@dataclass
class Checkpoint:
    """What to record after a request: bytes kept, the staging's state at that offset,
    the SHA-256 state of those bytes (empty: unknown, re-hash them), whether they are
    on stable storage, and stored objects the new state no longer needs."""

    offset: int
    state: dict[str, Any]
    hash_state: bytes
    durable: bool
    obsolete: list[str] = field(default_factory=list)


class StagedWriter(abc.ABC):
    """Receives the bytes of one request, in order, from the recorded offset.

    ``write`` hashes what it stores; ``checkpoint`` makes everything written readable by
    every machine and says what to record. A writer that is dropped without a
    checkpoint leaves the recorded state valid: nothing it did is referenced.
    """

    offset: int

    @abc.abstractmethod
    def write(self, view: memoryview) -> None:
        """Store and hash ``view``. Raises ``OSError`` or :class:`StorageError` when
        the bytes cannot be stored; the hash then has not seen them."""

    @abc.abstractmethod
    def checkpoint(self, *, final: bool, durable: bool) -> Checkpoint:
        """Persist what was written. ``final``: the upload's last byte is in."""

    @abc.abstractmethod
    def salvage(self) -> Checkpoint:
        """After ``write`` failed: keep as much as can be kept, and say what that is."""

    def close(self) -> None:  # noqa: B027  (nothing to release by default)
        """Release what the writer holds (a file)."""


class Staging(abc.ABC):
    """Staged uploads of one store. ``name`` is the upload's public id."""

    #: Bytes of the local filesystem a staged upload occupies (False: none, only a
    #: bounded memory buffer while a request is received).
    uses_local_disk: bool = True

    @abc.abstractmethod
    def create(self, name: str, length: int) -> dict[str, Any]:
        """Begin staging an upload of ``length`` bytes; returns its initial state."""

    @abc.abstractmethod
    def open_writer(
        self,
        name: str,
        state: dict[str, Any],
        *,
        offset: int,
        durable_offset: int,
        hash_state: bytes,
        guard: Callable[[], None],
    ) -> StagedWriter:
        """A writer continuing at ``offset``. ``guard`` is called before anything is
        persisted and raises if this request may no longer write (its lease is lost)."""

    @abc.abstractmethod
    def read_start(self, name: str, state: dict[str, Any], size: int) -> bytes:
        """The first ``size`` bytes staged, while they are all within the first part
        (what a file is told by: its first bytes, which may have come in an earlier
        request than the ones that follow)."""

    @abc.abstractmethod
    def rollback(self, name: str, state: dict[str, Any], offset: int) -> None:
        """Drop staged bytes past ``offset`` (local files only: after a reboot)."""

    @abc.abstractmethod
    def make_durable(self, name: str, state: dict[str, Any], *, verify_sha256: str | None) -> None:
        """Before the upload becomes evidence: on stable storage, and when
        ``verify_sha256`` is given, checked to still have that hash."""

    @abc.abstractmethod
    def adopt(
        self, name: str, state: dict[str, Any], key: str, sha256: str, size: int
    ) -> StoredObject:
        """Make the finished upload the store's object ``key``. Idempotent: a repeat
        after the staged bytes became ``key`` returns the object."""

    @abc.abstractmethod
    def discard(self, name: str, state: dict[str, Any]) -> None:
        """Remove everything staged for the upload (cancel, expiry). Idempotent."""

    @abc.abstractmethod
    def remove_objects(self, keys: list[str]) -> None:
        """Best effort: remove objects a checkpoint said are obsolete."""

    @abc.abstractmethod
    def locator(self, name: str, state: dict[str, Any]) -> str:
        """Where the staged bytes are, for people (logs, the clip's record)."""

    def free_space(self) -> tuple[int, int] | None:
        """(free, total) bytes where uploads are staged; None when no local disk is used."""
        return None


# -- local ---------------------------------------------------------------------------


def _write_all(partial: io.FileIO, view: memoryview) -> None:
    """An unbuffered write: a short write is continued, an error raised as it comes,
    so what reached the file is known exactly (a buffered writer would keep bytes
    back and raise again when closed)."""
    while view:
        count = partial.write(view)
        if count is None:  # only for non-blocking files, which this is not
            raise BlockingIOError(errno.EAGAIN, "write would block")
        view = view[count:]


class _LocalWriter(StagedWriter):
    def __init__(
        self, path: str, offset: int, durable_offset: int, hasher: ResumableSha256
    ) -> None:
        self._file = open(path, "r+b", buffering=0)  # noqa: SIM115  (closed by close())
        self._path = path
        self.offset = offset
        self._durable_offset = durable_offset
        self._hasher = hasher
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size < offset:
                raise StagedBytesMissing(f"{path} holds {size} bytes; {offset} were recorded")
            self._file.truncate(offset)  # bytes a crashed request left unrecorded
            self._file.seek(offset)
        except BaseException:
            self._file.close()
            raise

    def write(self, view: memoryview) -> None:
        _write_all(self._file, view)
        self._hasher.update(view)
        self.offset += len(view)

    def checkpoint(self, *, final: bool, durable: bool) -> Checkpoint:
        if durable:
            os.fsync(self._file.fileno())
        return Checkpoint(self.offset, {}, self._hasher.state(), durable)

    def salvage(self) -> Checkpoint:
        try:
            self._file.truncate(self.offset)  # a block the failure cut in two is not kept
            os.fsync(self._file.fileno())
        except OSError:
            # Not even what was written before is known to be on disk: fall back to the
            # last offset that was fsynced, whose hash is not at hand (re-hashed then).
            with contextlib.suppress(OSError):
                self._file.truncate(self._durable_offset)
            return Checkpoint(self._durable_offset, {}, b"", True)
        return Checkpoint(self.offset, {}, self._hasher.state(), True)

    def close(self) -> None:
        self._file.close()


class LocalStaging(Staging):
    """Partial files in ``directory`` (inside the local store's root: adopting one is a
    rename, and machines sharing the store's filesystem share the staging too)."""

    def __init__(self, store: LocalStore, directory: str) -> None:
        self.store = store
        self.directory = directory

    def path(self, name: str) -> str:
        os.makedirs(self.directory, exist_ok=True)
        return os.path.join(self.directory, f"{name}.part")

    def create(self, name: str, length: int) -> dict[str, Any]:
        # O_EXCL: the name comes from a fresh random id; never open someone else's file.
        fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return {}

    def _missing(self, name: str) -> StagedBytesMissing:
        return StagedBytesMissing(
            f"{self.path(name)} is missing: the staged upload was removed, or this machine "
            "does not share the store's filesystem"
        )

    def open_writer(
        self,
        name: str,
        state: dict[str, Any],
        *,
        offset: int,
        durable_offset: int,
        hash_state: bytes,
        guard: Callable[[], None],
    ) -> StagedWriter:
        path = self.path(name)
        if not os.path.exists(path):
            raise self._missing(name)
        hasher = ResumableSha256(hash_state) if hash_state else self._rehash(path, offset)
        return _LocalWriter(path, offset, durable_offset, hasher)

    @staticmethod
    def _rehash(path: str, offset: int) -> ResumableSha256:
        """The hash of the first ``offset`` bytes, when no state was kept for them."""
        hasher = ResumableSha256()
        with open(path, "rb", buffering=0) as partial:
            remaining = offset
            while remaining:
                block = partial.read(min(CHUNK_SIZE, remaining))
                if not block:
                    raise StagedBytesMissing(f"{path} is shorter than the recorded {offset}")
                hasher.update(block)
                remaining -= len(block)
        return hasher

    def read_start(self, name: str, state: dict[str, Any], size: int) -> bytes:
        try:
            with open(self.path(name), "rb") as partial:
                start = partial.read(size)
        except FileNotFoundError:
            raise self._missing(name) from None
        if len(start) != size:
            raise StagedBytesMissing(f"{self.path(name)} is shorter than {size} bytes")
        return start

    def rollback(self, name: str, state: dict[str, Any], offset: int) -> None:
        with open(self.path(name), "r+b") as partial:
            partial.truncate(offset)

    def make_durable(self, name: str, state: dict[str, Any], *, verify_sha256: str | None) -> None:
        path = self.path(name)
        if not os.path.exists(path):
            raise self._missing(name)
        with open(path, "rb", buffering=0) as staged:
            os.fsync(staged.fileno())
        if verify_sha256 is not None:
            digest = self._rehash(path, os.path.getsize(path)).hexdigest()
            if digest != verify_sha256:
                raise HashMismatch(f"{path}: the staged bytes no longer have their hash")

    def adopt(
        self, name: str, state: dict[str, Any], key: str, sha256: str, size: int
    ) -> StoredObject:
        path = self.path(name)
        if not os.path.exists(path):
            if self.store.exists(key) and self.store.size(key) == size:
                return StoredObject(key, size, sha256)  # adopted by an earlier attempt
            raise self._missing(name)
        return self.store.adopt_file(key, path, sha256, size)

    def discard(self, name: str, state: dict[str, Any]) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(name))

    def remove_objects(self, keys: list[str]) -> None:
        return None

    def locator(self, name: str, state: dict[str, Any]) -> str:
        return self.path(name)

    def free_space(self) -> tuple[int, int] | None:
        usage = shutil.disk_usage(os.path.dirname(self.path("x")))
        return usage.free, usage.total


# -- S3 ------------------------------------------------------------------------------


def part_bytes_for(length: int, minimum: int = DEFAULT_PART_BYTES) -> int:
    """Parts large enough that ``length`` needs at most 10,000 of them, in whole MiB."""
    needed = math.ceil(length / MAX_PARTS)
    return max(minimum, MIN_PART_BYTES, math.ceil(needed / MIB) * MIB)


class _S3Writer(StagedWriter):
    """Fills one part buffer; a full buffer becomes the next part.

    The buffer starts with the incomplete part a previous request left (read back
    from the store), so each part but the last is exactly ``part_bytes`` long.
    """

    def __init__(
        self,
        staging: S3Staging,
        name: str,
        state: dict[str, Any],
        offset: int,
        hasher: ResumableSha256,
        guard: Callable[[], None],
    ) -> None:
        self._staging = staging
        self._name = name
        self._state = {**state, "parts": list(state.get("parts", ()))}
        self._hasher = hasher
        self._guard = guard
        self._part_bytes = int(state["part_bytes"])
        self._buffer = bytearray(self._part_bytes)
        self._filled = 0
        self.offset = offset
        tail = state.get("tail")
        parts_end = len(self._state["parts"]) * self._part_bytes
        tail_size = int(tail["size"]) if tail else 0
        if parts_end + tail_size != offset:
            raise StagedBytesMissing(
                f"upload {name}: the staged parts and tail hold {parts_end + tail_size} "
                f"bytes; {offset} were recorded"
            )
        if tail:
            self._filled = staging.read_tail(tail["key"], self._buffer, tail_size)
        # What is already persisted: the state this writer started from.
        self._persisted = Checkpoint(offset, dict(state), hasher.state(), True)

    def write(self, view: memoryview) -> None:
        while view:
            if self._filled == self._part_bytes:  # a full incomplete part left by salvage
                self._send_part(memoryview(self._buffer))
            count = min(self._part_bytes - self._filled, len(view))
            self._buffer[self._filled : self._filled + count] = view[:count]
            self._hasher.update(view[:count])
            self._filled += count
            self.offset += count
            view = view[count:]
            if self._filled == self._part_bytes:
                self._send_part(memoryview(self._buffer))

    def _send_part(self, body: memoryview) -> None:
        self._guard()
        number = len(self._state["parts"]) + 1
        part = self._staging.upload_part(self._name, self._state, number, body)
        self._state["parts"].append(part)
        self._filled = 0
        obsolete = [self._state["tail"]["key"]] if self._state.get("tail") else []
        self._state["tail"] = None
        self._persisted = Checkpoint(
            self.offset,
            {**self._state, "parts": list(self._state["parts"])},
            self._hasher.state(),
            True,
            self._persisted.obsolete + obsolete,
        )

    def checkpoint(self, *, final: bool, durable: bool) -> Checkpoint:
        if self._filled == self._part_bytes:
            self._send_part(memoryview(self._buffer))
        if self._filled:
            if final:
                self._send_part(memoryview(self._buffer)[: self._filled])
            else:
                self._guard()
                old = self._state.get("tail")
                key = self._staging.put_tail(self._name, memoryview(self._buffer)[: self._filled])
                self._state["tail"] = {"key": key, "size": self._filled}
                self._persisted = Checkpoint(
                    self.offset,
                    {**self._state, "parts": list(self._state["parts"])},
                    self._hasher.state(),
                    True,
                    self._persisted.obsolete + ([old["key"]] if old else []),
                )
        return self._persisted

    def salvage(self) -> Checkpoint:
        # The bytes in the buffer are only in memory: try once to store them as the
        # incomplete part; if the store refuses that too, what the last part holds is
        # what is kept. The running hash is past them, so the checkpoint's own is used.
        if self._persisted.offset != self.offset:
            with contextlib.suppress(Exception):
                return self.checkpoint(final=False, durable=True)
        return self._persisted

    def close(self) -> None:
        self._buffer = bytearray()


class S3Staging(Staging):
    """One multipart upload per staged upload, under ``uploads/<name>/`` in the store.

    Durable once stored: a part or the incomplete-part object is on S3 before the
    offset that counts it is recorded.
    """

    uses_local_disk = False

    def __init__(self, store: S3Store, part_bytes: int = DEFAULT_PART_BYTES) -> None:
        self.store = store
        self.part_bytes = part_bytes

    def _data_key(self, name: str) -> str:
        return self.store._key(f"uploads/{name}/data")

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.store.client, method)(Bucket=self.store.bucket, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload"):
                raise ObjectNotFound(f"{what}: {code}") from None
            raise StorageError(f"{what} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{what} failed: {exc}") from exc

    def create(self, name: str, length: int) -> dict[str, Any]:
        extra = self.store._extra_args("application/octet-stream", None)
        response = self._call(
            f"starting upload {name}",
            "create_multipart_upload",
            Key=self._data_key(name),
            ChecksumAlgorithm="CRC32",
            **extra,
        )
        return {
            "upload_id": response["UploadId"],
            "part_bytes": part_bytes_for(length, self.part_bytes),
            "parts": [],
            "tail": None,
        }

    def open_writer(
        self,
        name: str,
        state: dict[str, Any],
        *,
        offset: int,
        durable_offset: int,
        hash_state: bytes,
        guard: Callable[[], None],
    ) -> StagedWriter:
        if not hash_state and offset:
            raise StagedBytesMissing(f"upload {name}: no hash state for {offset} staged bytes")
        return _S3Writer(self, name, state, offset, ResumableSha256(hash_state), guard)

    def upload_part(
        self, name: str, state: dict[str, Any], number: int, body: memoryview
    ) -> dict[str, Any]:
        if number > MAX_PARTS:
            raise StorageError(f"upload {name} needs more than {MAX_PARTS} parts")
        response = self._call(
            f"part {number} of upload {name}",
            "upload_part",
            Key=self._data_key(name),
            UploadId=state["upload_id"],
            PartNumber=number,
            # A seekable reader over the reused buffer, read before the call returns:
            # no copy of the part.
            Body=_ViewReader(body),
            ChecksumAlgorithm="CRC32",
        )
        part = {"ETag": response["ETag"], "PartNumber": number}
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part

    def put_tail(self, name: str, body: memoryview) -> str:
        # A new key per write: the recorded tail is never overwritten, so a request
        # that dies (or loses its lease) after this leaves the record intact.
        key = self.store._key(f"uploads/{name}/tail-{secrets.token_hex(8)}")
        self._call(
            f"incomplete part of upload {name}",
            "put_object",
            Key=key,
            Body=_ViewReader(body),
            **self.store._extra_args("application/octet-stream", None),
        )
        return key

    def read_tail(self, key: str, buffer: bytearray, size: int) -> int:
        body = self._call(f"reading {key}", "get_object", Key=key)["Body"]
        filled = 0
        with memoryview(buffer) as view, contextlib.closing(body):
            while filled < size:
                chunk = body.read(min(CHUNK_SIZE, size - filled))
                if not chunk:
                    break
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
        if filled != size or body.read(1):
            raise StagedBytesMissing(f"{key} does not hold the {size} recorded bytes")
        return filled

    def read_start(self, name: str, state: dict[str, Any], size: int) -> bytes:
        tail = state.get("tail")
        if state.get("parts") or not tail or int(tail["size"]) < size:
            raise StagedBytesMissing(f"upload {name}: its first {size} bytes are not in its tail")
        buffer = bytearray(int(tail["size"]))
        self.read_tail(tail["key"], buffer, len(buffer))
        return bytes(buffer[:size])

    def rollback(self, name: str, state: dict[str, Any], offset: int) -> None:
        return None  # nothing is recorded before it is stored

    def make_durable(self, name: str, state: dict[str, Any], *, verify_sha256: str | None) -> None:
        return None

    def _complete(self, name: str, state: dict[str, Any]) -> None:
        self._call(
            f"completing upload {name}",
            "complete_multipart_upload",
            Key=self._data_key(name),
            UploadId=state["upload_id"],
            MultipartUpload={"Parts": state["parts"]},
        )

    def adopt(
        self, name: str, state: dict[str, Any], key: str, sha256: str, size: int
    ) -> StoredObject:
        """Complete the multipart upload, copy it to ``key`` inside the bucket (boto3's
        managed copy: multipart above its threshold, so objects over 5 GB copy too),
        check the size, then remove the staged object."""
        from boto3.s3.transfer import TransferConfig

        data_key = self._data_key(name)
        # NoSuchUpload: completed by an earlier attempt (or already copied and removed).
        with contextlib.suppress(ObjectNotFound):
            self._complete(name, state)
        try:
            staged_size = int(
                self._call(f"checking {name}", "head_object", Key=data_key)["ContentLength"]
            )
        except ObjectNotFound:
            if self.store.exists(key) and self.store.size(key) == size:
                return StoredObject(key, size, sha256)
            raise StagedBytesMissing(f"upload {name}: the staged object is gone") from None
        if staged_size != size:
            raise HashMismatch(f"upload {name}: {staged_size} bytes staged, {size} recorded")
        from botocore.exceptions import BotoCoreError, ClientError

        extra: dict[str, Any] = self.store._extra_args("application/octet-stream", None)
        # The copy gets a whole-object checksum of its own: the multipart upload's is a
        # checksum of part checksums, which a copy in one request would carry over and
        # a reader checking the body against it would refuse.
        extra["ChecksumAlgorithm"] = "CRC32"
        try:
            self.store.client.copy(
                {"Bucket": self.store.bucket, "Key": data_key},
                self.store.bucket,
                self.store._key(key),
                ExtraArgs=extra,
                Config=TransferConfig(
                    multipart_chunksize=max(self.store.multipart_chunksize, 64 * MIB),
                    max_concurrency=self.store.max_concurrency,
                ),
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"copying upload {name} to {key} failed: {exc}") from exc
        if self.store.size(key) != size:
            self.store.delete(key)
            raise HashMismatch(f"{key}: the copy of upload {name} has the wrong size")
        self.discard(name, state)
        return StoredObject(key, size, sha256)

    def discard(self, name: str, state: dict[str, Any]) -> None:
        with contextlib.suppress(ObjectNotFound):
            self._call(
                f"aborting upload {name}",
                "abort_multipart_upload",
                Key=self._data_key(name),
                UploadId=state["upload_id"],
            )
        # Every object of the upload: the completed data, the incomplete part, and any
        # a request left before it died.
        prefix = self.store._key(f"uploads/{name}/data")[: -len("data")]
        paginator = self.store.client.get_paginator("list_objects_v2")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in paginator.paginate(Bucket=self.store.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    self._call(f"removing {item['Key']}", "delete_object", Key=item["Key"])
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"removing upload {name} failed: {exc}") from exc

    def remove_objects(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self._call(f"removing {key}", "delete_object", Key=key)
            except StorageError as exc:
                # Left for the upload's discard (cancel, expiry or ingest) to remove.
                log.warning("could not remove a replaced staged object", extra={"error": str(exc)})

    def locator(self, name: str, state: dict[str, Any]) -> str:
        return f"s3://{self.store.bucket}/{self._data_key(name)}"


class _ViewReader(io.RawIOBase):
    """A seekable, read-only file over a memoryview, without copying it: botocore
    reads a body more than once (checksum, signature, retry), so it must seek."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}
        self._position = max(0, base[whence] + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        piece = self._view[self._position : self._position + len(target)]
        target[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._position + size
        piece = bytes(self._view[self._position : end])
        self._position += len(piece)
        return piece
