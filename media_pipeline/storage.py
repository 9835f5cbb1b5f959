"""Where originals and renditions live: one interface, a local directory or S3.

Both stores hash while they stream (never reading a file a second time to hash it),
write atomically (an object is either absent or complete), and refuse unsafe keys.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import io
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from .errors import HashMismatch, InvalidKey, ObjectNotFound, StorageError
from .hashing import HashingReader, hash_stream

if TYPE_CHECKING:
    from .staging import Staging

MAX_KEY_BYTES = 1024
_TEMP_PREFIX = ".tmp-"
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9._~=+@-][A-Za-z0-9._~=+@ -]*$")
MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectStat:
    """What an HTTP response about an object needs before reading it.

    ``etag`` is opaque and unquoted; it changes whenever the object is replaced.
    """

    size: int
    etag: str
    last_modified: datetime


def read_into(stream: Any, buffer: memoryview | bytearray) -> int:
    """``stream.readinto(buffer)``, or for a stream that has none, a read copied into
    ``buffer``. Returns how many bytes it holds now (0 at the end)."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    block = stream.read(len(buffer))
    buffer[: len(block)] = block
    return len(block)


class _RangeReader(io.RawIOBase):
    """Bytes ``start`` up to ``end`` of ``raw``, which is positioned at ``start``.

    For files, ``fileno``, ``seek`` and ``tell`` are passed through, so a WSGI server's
    ``wsgi.file_wrapper`` can ``sendfile`` the range (gunicorn starts at the file's
    offset and sends Content-Length bytes) instead of copying it through Python.
    """

    def __init__(self, raw: Any, start: int, end: int) -> None:
        super().__init__()
        self._raw = raw
        self._position = start
        self._end = max(start, end)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self._raw, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self.seekable():
            raise io.UnsupportedOperation("seek")
        self._position = self._raw.seek(offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position

    def fileno(self) -> int:
        fileno = getattr(self._raw, "fileno", None)
        if fileno is None:
            raise io.UnsupportedOperation("fileno")
        return cast(int, fileno())

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        remaining = self._end - self._position
        if remaining <= 0:
            return 0
        count = read_into(self._raw, memoryview(buffer).cast("B")[:remaining])
        self._position += count
        return count

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._raw.close()
        super().close()


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`InvalidKey`.

    Threat: a key built from user input (a file name, a case number) that climbs out
    of the store's root (``..``, an absolute path, a backslash on a Windows-minded
    client, a NUL that truncates the path in C) or hides as a temp file.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("the key is empty")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey("the key is too long")
    if "\x00" in key or "\\" in key:
        raise InvalidKey("the key contains a NUL or a backslash")
    if key.startswith("/"):
        raise InvalidKey("the key is absolute")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey("the key has an empty, '.' or '..' segment")
        if segment.startswith(_TEMP_PREFIX) or not _KEY_SEGMENT.match(segment):
            raise InvalidKey(f"the key segment {segment!r} has characters that are not allowed")
    return key


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """A ``Content-Disposition`` value for ``filename`` (RFC 6266), safe for any name.

    Threat: a tip attachment's name with quotes, CR/LF or non-ASCII characters used to
    inject headers or spoof the extension; the ASCII fallback keeps only safe
    characters and the real name travels percent-encoded.
    """
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:100] or "download"
    encoded = urllib.parse.quote(filename, safe="")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _check_header(value: str | None, name: str) -> None:
    if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{name} must not contain control characters")


class Store(abc.ABC):
    """Storage of immutable objects under ``/``-separated keys."""

    def put_file(
        self,
        key: str,
        path: str | os.PathLike[str],
        content_type: str,
        disposition: str | None = None,
    ) -> StoredObject:
        """Store the file at ``path`` under ``key``; the file is read exactly once."""
        with open(path, "rb", buffering=0) as stream:
            return self.put_stream(key, stream, content_type, disposition)

    @abc.abstractmethod
    def put_stream(
        self, key: str, stream: BinaryIO, content_type: str, disposition: str | None = None
    ) -> StoredObject:
        """Store everything ``stream`` yields under ``key``, hashing it on the way."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object; raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def get_to_path(self, key: str, path: str | os.PathLike[str]) -> StoredObject:
        """Copy the object to ``path`` atomically, hashing it on the way."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error (idempotent jobs)."""

    @abc.abstractmethod
    def url(self, key: str, expires: int = 3600, disposition: str | None = None) -> str | None:
        """A time-limited URL the browser can fetch directly, or ``None`` when the portal
        must serve the object itself (local storage)."""

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in lexical order."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectStat:
        """Size, ETag and modification time; raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        """A readable stream of bytes ``start`` up to (not including) ``end``.

        The caller checks the range against :meth:`stat` first; what is asked is read,
        nothing before it (seeking a 4 GB original must not read the first gigabytes).
        """

    @abc.abstractmethod
    def adopt_file(
        self, key: str, path: str | os.PathLike[str], sha256: str, size: int
    ) -> StoredObject:
        """Make the finished file at ``path`` the object ``key``; ``path`` is gone after.

        ``sha256`` and ``size`` were computed while the file was received. What is
        stored must match them, or nothing is kept and :class:`HashMismatch` is raised
        (the file at ``path`` is left for inspection).
        """

    @abc.abstractmethod
    def staging(self) -> Staging:
        """Where resumable uploads are received before they become objects: in the
        store itself, so every machine that shares the store shares them."""

    @contextlib.contextmanager
    def local_path_or_copy(self, key: str, scratch_dir: str | os.PathLike[str]) -> Iterator[str]:
        """A path to the object for tools that need one (ffmpeg).

        A temporary copy inside ``scratch_dir``, removed on leaving the block whatever
        happens there; a store that holds files returns the file itself.
        """
        tmpdir = tempfile.mkdtemp(prefix="source-", dir=scratch_dir)
        try:
            path = os.path.join(tmpdir, "source")
            self.get_to_path(key, path)
            yield path
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    @abc.abstractmethod
    def remove_incomplete(self, older_than_s: float) -> int:
        """Remove what interrupted writes left behind (temp files, unfinished multipart
        uploads) that started more than ``older_than_s`` seconds ago. Returns how many.

        Writes clean up after themselves when they fail; this is for the ones that
        could not (a killed process, a store unreachable at the moment of failure).
        """


def _write_atomically(directory: str, target: str, stream: BinaryIO) -> tuple[str, int]:
    """Copy ``stream`` to a temp file beside ``target``, fsync, rename. Returns (sha, size)."""
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as sink:
            sha256, size = hash_stream(stream, sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return sha256, size


class LocalStore(Store):
    """Objects as files under ``root`` (the embedded default, ``instance/media``).

    Content type and disposition are not stored: the portal serves local objects
    itself and sets those headers from its database.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    def _path(self, key: str) -> str:
        path = os.path.join(self.root, *validate_key(key).split("/"))
        # Threat: a symlink planted inside the root pointing outside it.
        real = os.path.realpath(path)
        if not real.startswith(self.root + os.sep):
            raise InvalidKey("the key resolves outside the store")
        return path

    def put_stream(
        self, key: str, stream: BinaryIO, content_type: str, disposition: str | None = None
    ) -> StoredObject:
        path = self._path(key)
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        sha256, size = _write_atomically(directory, path, stream)
        return StoredObject(key, size, sha256)

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    def get_to_path(self, key: str, path: str | os.PathLike[str]) -> StoredObject:
        target = os.path.abspath(os.fspath(path))
        with self.open(key) as stream:
            sha256, size = _write_atomically(os.path.dirname(target), target, stream)
        return StoredObject(key, size, sha256)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def url(self, key: str, expires: int = 3600, disposition: str | None = None) -> str | None:
        self._path(key)
        return None

    def size(self, key: str) -> int:
        try:
            return os.path.getsize(self._path(key))
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        keys = []
        for directory, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(_TEMP_PREFIX)]
            relative = os.path.relpath(directory, self.root)
            for name in files:
                if name.startswith(_TEMP_PREFIX):
                    continue
                key = name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def local_path(self, key: str) -> str:
        """The file behind ``key``, for tools that need a path (ffmpeg): no copy."""
        path = self._path(key)
        if not os.path.isfile(path):
            raise ObjectNotFound(key)
        return path

    def adopt_file(
        self, key: str, path: str | os.PathLike[str], sha256: str, size: int
    ) -> StoredObject:
        """Move a finished upload into the store without copying it.

        The upload was hashed while it was received, so the caller passes that hash;
        rewriting gigabytes only to hash them again would double the disk writes. On
        another filesystem (no rename possible) it falls back to a hashed copy, and
        the hash must match.
        """
        target = self._path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.chmod(path, 0o640)
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            stored = self.put_file(key, path, "application/octet-stream")
            if stored.sha256 != sha256 or stored.size != size:
                self.delete(key)
                raise HashMismatch(f"{key}: the copy does not match the upload's hash") from None
            os.unlink(path)
            return stored
        return StoredObject(key, size, sha256)

    def staging(self) -> Staging:
        from .staging import LocalStaging

        # Inside the root, so adopting a finished upload is a rename, not a copy.
        return LocalStaging(self, os.path.join(self.root, ".uploads"))

    @contextlib.contextmanager
    def local_path_or_copy(self, key: str, scratch_dir: str | os.PathLike[str]) -> Iterator[str]:
        yield self.local_path(key)

    def stat(self, key: str) -> ObjectStat:
        try:
            info = os.stat(self._path(key))
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        # Every write is a rename of a new file: a new inode and mtime per version.
        etag = f"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"
        modified = datetime.fromtimestamp(info.st_mtime, tz=UTC)
        return ObjectStat(info.st_size, etag, modified)

    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        stream = self.open(key)
        stream.seek(start)
        return cast(BinaryIO, _RangeReader(stream, start, end))

    def remove_incomplete(self, older_than_s: float) -> int:
        cutoff = time.time() - older_than_s
        removed = 0
        for directory, _dirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith(_TEMP_PREFIX):
                    continue
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
        return removed


class S3Store(Store):
    """Objects in an S3 bucket (AWS, MinIO, Ceph or any S3-compatible store).

    Uploads are multipart above ``multipart_threshold``, in parts of
    ``multipart_chunksize``, at most ``max_concurrency`` in flight and
    ``max_in_memory_chunks`` buffered, so memory is bounded whatever the file size.
    The stream is read in order, once, and hashed on the way.

    The multipart upload is driven here rather than by boto3's transfer manager: that
    hides the upload id, so an upload it does not abort itself stays in the bucket
    (billed, invisible to listings), and an exception that is not an ``Exception``
    (a worker's shutdown) raised while it reads the stream leaves it waiting forever.
    Here every failure, of any kind, aborts the upload it started.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        server_side_encryption: str | None = None,
        sse_kms_key_id: str | None = None,
        max_attempts: int = 5,
        multipart_threshold: int = 64 * MIB,
        multipart_chunksize: int = 8 * MIB,
        max_concurrency: int = 4,
        max_in_memory_chunks: int = 6,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        if server_side_encryption not in (None, "AES256", "aws:kms", "aws:kms:dsse"):
            raise ValueError("server_side_encryption must be AES256, aws:kms or aws:kms:dsse")
        if not bucket:
            raise ValueError("the bucket name is empty")
        if multipart_chunksize < MIN_PART_BYTES:
            raise ValueError("multipart_chunksize must be at least 5 MiB, S3's smallest part")
        if max_concurrency < 1 or max_in_memory_chunks < 1:
            raise ValueError("max_concurrency and max_in_memory_chunks must be at least 1")
        self.bucket = bucket
        self.prefix = validate_key(prefix.strip("/")) + "/" if prefix.strip("/") else ""
        self.server_side_encryption = server_side_encryption
        self.sse_kms_key_id = sse_kms_key_id
        self.config = Config(
            # "standard" retries throttling and transient errors with exponential
            # backoff and jitter. botocore's own "max_attempts" counts retries only;
            # "total_max_attempts" is the number of tries in all, as documented here.
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            signature_version="s3v4",
            # S3-compatible servers (MinIO, a test server) rarely have wildcard DNS.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self.client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region_name, config=self.config
        )
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.max_concurrency = max_concurrency
        self.max_in_memory_chunks = max_in_memory_chunks

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _extra_args(self, content_type: str, disposition: str | None) -> dict[str, str]:
        _check_header(content_type, "content_type")
        _check_header(disposition, "disposition")
        extra = {"ContentType": content_type}
        if disposition:
            extra["ContentDisposition"] = disposition
        if self.server_side_encryption:
            extra["ServerSideEncryption"] = self.server_side_encryption
            if self.sse_kms_key_id:
                extra["SSEKMSKeyId"] = self.sse_kms_key_id
        return extra

    def put_stream(
        self, key: str, stream: BinaryIO, content_type: str, disposition: str | None = None
    ) -> StoredObject:
        from botocore.exceptions import BotoCoreError, ClientError

        full_key = self._key(key)
        extra = self._extra_args(content_type, disposition)
        reader = HashingReader(stream)
        try:
            head: list[bytearray] = []
            buffered = 0
            while buffered < self.multipart_threshold:
                chunk = _read_chunk(reader, self.multipart_chunksize)
                if not chunk:
                    break
                head.append(chunk)
                buffered += len(chunk)
            if buffered < self.multipart_threshold:
                self.client.put_object(
                    Bucket=self.bucket, Key=full_key, Body=b"".join(head), **extra
                )
            else:
                self._put_multipart(full_key, reader, head, extra)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"upload of {key} failed: {exc}") from exc
        return StoredObject(key, reader.bytes_read, reader.hexdigest())

    def _put_multipart(
        self, full_key: str, reader: HashingReader, head: list[bytearray], extra: dict[str, str]
    ) -> None:
        """Parts in order from ``head`` then ``reader``; aborted on any failure."""
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=full_key, ChecksumAlgorithm="CRC32", **extra
        )["UploadId"]
        # Buffers in memory: the ones being read, queued or sent. Taken before a part
        # is read, given back when it has been sent.
        slots = threading.BoundedSemaphore(self.max_in_memory_chunks)

        def send(number: int, body: bytearray) -> dict[str, Any]:
            try:
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumAlgorithm="CRC32",
                )
            finally:
                slots.release()
            part = {"ETag": response["ETag"], "PartNumber": number}
            if "ChecksumCRC32" in response:
                part["ChecksumCRC32"] = response["ChecksumCRC32"]
            return part

        pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="s3-part")
        futures: list[Future[dict[str, Any]]] = []
        try:
            pending = list(head)
            head.clear()
            number = 0
            while True:
                slots.acquire()
                chunk = pending.pop(0) if pending else _read_chunk(reader, self.multipart_chunksize)
                if not chunk:
                    slots.release()
                    break
                number += 1
                futures.append(pool.submit(send, number, chunk))
                failed = next((f for f in futures if f.done() and f.exception()), None)
                if failed is not None:
                    failed.result()
            parts = [future.result() for future in futures]
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            # Best effort: if the store is unreachable now, remove_incomplete() finds
            # the upload later.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=full_key, UploadId=upload_id
                )
            raise
        finally:
            pool.shutdown(wait=True)

    def _client_call(self, key: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, Key=self._key(key), **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFound(key) from None
            raise StorageError(f"{method} {key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{method} {key} failed: {exc}") from exc

    def head(self, key: str) -> dict[str, Any]:
        """The object's S3 metadata (ContentType, ContentDisposition, SSE...)."""
        return cast(dict[str, Any], self._client_call(key, "head_object"))

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self._client_call(key, "get_object")["Body"])

    def get_to_path(self, key: str, path: str | os.PathLike[str]) -> StoredObject:
        target = os.path.abspath(os.fspath(path))
        body = self._client_call(key, "get_object")["Body"]
        try:
            # Sequential GET rather than boto3's ranged parallel download: the bytes
            # arrive in order, so they are hashed as they are written.
            sha256, size = _write_atomically(os.path.dirname(target), target, cast(BinaryIO, body))
        finally:
            body.close()
        return StoredObject(key, size, sha256)

    def exists(self, key: str) -> bool:
        try:
            self._client_call(key, "head_object")
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self._client_call(key, "delete_object")

    def url(self, key: str, expires: int = 3600, disposition: str | None = None) -> str | None:
        _check_header(disposition, "disposition")
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if disposition:
            params["ResponseContentDisposition"] = disposition
        return cast(
            str, self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
        )

    def size(self, key: str) -> int:
        return int(self.head(key)["ContentLength"])

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", ()):
                    yield item["Key"][len(self.prefix) :]
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"listing {prefix!r} failed: {exc}") from exc

    def stat(self, key: str) -> ObjectStat:
        head = self.head(key)
        return ObjectStat(
            int(head["ContentLength"]), str(head["ETag"]).strip('"'), head["LastModified"]
        )

    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        if end <= start:
            return io.BytesIO(b"")
        # S3's byte ranges are inclusive (RFC 9110); ours end before ``end``.
        body = self._client_call(key, "get_object", Range=f"bytes={start}-{end - 1}")["Body"]
        return cast(BinaryIO, _RangeReader(body, start, end))

    def adopt_file(
        self, key: str, path: str | os.PathLike[str], sha256: str, size: int
    ) -> StoredObject:
        """Upload the file (read once, hashed on the way), check it, then remove it."""
        stored = self.put_file(key, path, "application/octet-stream")
        if stored.sha256 != sha256 or stored.size != size:
            self.delete(key)
            raise HashMismatch(f"{key}: the upload does not match the hash it was received with")
        os.unlink(path)
        return stored

    def staging(self) -> Staging:
        from .staging import S3Staging

        return S3Staging(self)

    def remove_incomplete(self, older_than_s: float) -> int:
        """Abort unfinished multipart uploads under the prefix. Their parts are billed
        and invisible to listings; a bucket lifecycle rule can do the same, but the
        store must not depend on every operator having set one.

        Staged uploads (``uploads/``) are left alone: they are meant to stay open
        while their upload lives (a day), and the upload expiry sweep aborts them."""
        from botocore.exceptions import BotoCoreError, ClientError

        cutoff = datetime.now(UTC).timestamp() - older_than_s
        removed = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() >= cutoff:
                        continue
                    if upload["Key"].startswith(self.prefix + "uploads/"):
                        continue
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"removing unfinished uploads failed: {exc}") from exc
        return removed


def _read_chunk(reader: HashingReader, size: int) -> bytearray:
    """Up to ``size`` bytes: fewer only at the end of the stream."""
    chunk = bytearray(size)
    filled = 0
    with memoryview(chunk) as view:
        while filled < size:
            count = reader.readinto(view[filled:])
            if not count:
                break
            filled += count
    del chunk[filled:]
    return chunk


def store_from_url(url: str, endpoint_url: str | None = None, **options: Any) -> Store:
    """``file:///abs/path`` (or ``file://relative/path``) or ``s3://bucket/prefix``.

    ``TATTLETALE_STORAGE_URL`` and ``TATTLETALE_S3_ENDPOINT_URL`` are meant to be passed
    here; ``options`` go to :class:`S3Store` (encryption, part size, retries).
    """
    if url.startswith("file://"):
        path = urllib.parse.unquote(url[len("file://") :])
        if not path:
            raise ValueError("file:// URL without a path")
        return LocalStore(path)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError("s3:// URL without a bucket")
        return S3Store(parsed.netloc, parsed.path.strip("/"), endpoint_url=endpoint_url, **options)
    raise ValueError(f"unsupported storage URL {url!r}: use file:// or s3://")
