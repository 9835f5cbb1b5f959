"""LocalStore and S3Store behind one interface; S3 against moto's server on loopback."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from media_pipeline import (
    HashMismatch,
    InvalidKey,
    LocalStore,
    ObjectNotFound,
    S3Store,
    StorageError,
    Store,
    content_disposition,
    store_from_url,
    validate_key,
)

MIB = 1024 * 1024
BAD_KEYS = [
    "",
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a\\b",
    "a\x00b",
    "a//b",
    "./a",
    "a/.",
    "a/.tmp-x",
    "a\nb",
]


@pytest.fixture
def s3_store(s3_endpoint: str, bucket: str) -> S3Store:
    # Multipart from 5 MiB, S3's smallest part size, so a 12 MiB file takes 3 parts.
    return S3Store(
        bucket,
        "tenant-a/media",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        server_side_encryption="AES256",
        multipart_threshold=5 * MIB,
        multipart_chunksize=5 * MIB,
        max_concurrency=2,
        max_in_memory_chunks=3,
        max_attempts=3,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield LocalStore(tmp_path / "media")
    else:
        yield request.getfixturevalue("s3_store")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_validate_key_rejects_unsafe_keys(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_validate_key_accepts_ordinary_keys() -> None:
    assert validate_key("cases/7f3a/v2/web_720.mp4") == "cases/7f3a/v2/web_720.mp4"


@pytest.mark.parametrize("key", ["../escape", "/abs", "a\\b"])
def test_store_rejects_traversal_keys_on_every_operation(
    store: Store, tmp_path: Path, key: str
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    for call in (
        lambda: store.put_file(key, source, "text/plain"),
        lambda: store.exists(key),
        lambda: store.open(key),
        lambda: store.delete(key),
        lambda: store.url(key),
    ):
        with pytest.raises(InvalidKey):
            call()


def test_store_put_file_round_trips_and_hashes(store: Store, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "clip.mp4"
    source.write_bytes(data)
    stored = store.put_file("cases/c1/clip.mp4", source, "video/mp4")
    assert (stored.key, stored.size, stored.sha256) == (
        "cases/c1/clip.mp4",
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    with store.open("cases/c1/clip.mp4") as f:
        assert f.read() == data
    assert store.exists("cases/c1/clip.mp4") and store.size("cases/c1/clip.mp4") == len(data)
    copy = store.get_to_path("cases/c1/clip.mp4", tmp_path / "copy.mp4")
    assert copy.sha256 == stored.sha256 and (tmp_path / "copy.mp4").read_bytes() == data


def test_store_iter_keys_lists_by_prefix_in_order(store: Store) -> None:
    for key in ("b/2", "a/1", "b/1", "c"):
        store.put_stream(key, io.BytesIO(key.encode()), "text/plain")
    assert list(store.iter_keys("b/")) == ["b/1", "b/2"]
    assert list(store.iter_keys()) == ["a/1", "b/1", "b/2", "c"]


def test_store_delete_is_idempotent(store: Store) -> None:
    store.put_stream("x/y", io.BytesIO(b"1"), "text/plain")
    store.delete("x/y")
    store.delete("x/y")
    assert not store.exists("x/y")
    with pytest.raises(ObjectNotFound):
        store.open("x/y").read()


def test_store_missing_object_raises_not_found(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        store.size("nothing/here")
    with pytest.raises(ObjectNotFound):
        store.get_to_path("nothing/here", tmp_path / "out")
    assert not (tmp_path / "out").exists()


class _Exploding(io.RawIOBase):
    """A stream that fails half-way, like a client disconnecting during an upload."""

    def __init__(self, after: int = 3 * MIB, error: BaseException | None = None) -> None:
        self.sent = 0
        self.after = after
        self.error = error or OSError("connection reset")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.sent > self.after:
            raise self.error
        n = len(buffer)
        buffer[:n] = b"a" * n
        self.sent += n
        return n


def test_local_store_failed_upload_leaves_no_object_or_temp_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    with pytest.raises(OSError, match="connection reset"):
        store.put_stream("cases/c1/upload.bin", _Exploding(), "application/octet-stream")  # type: ignore[arg-type]
    assert list(store.iter_keys()) == []
    assert os.listdir(tmp_path / "media" / "cases" / "c1") == []


def test_local_store_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "media" / "link")
    with pytest.raises(InvalidKey, match="outside"):
        store.put_stream("link/file", io.BytesIO(b"x"), "text/plain")
    assert list(outside.iterdir()) == []


def test_local_store_has_no_direct_url(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_stream("a", io.BytesIO(b"x"), "text/plain")
    assert store.url("a", 60) is None


def test_s3_store_multipart_upload_hashes_while_streaming(
    s3_store: S3Store, tmp_path: Path
) -> None:
    data = os.urandom(12 * MIB + 123)
    source = tmp_path / "big.mp4"
    source.write_bytes(data)
    stored = s3_store.put_file("cases/c1/big.mp4", source, "video/mp4")
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size == len(data)
    head = s3_store.head("cases/c1/big.mp4")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: it really was multipart
    assert head["ContentLength"] == len(data)
    with s3_store.open("cases/c1/big.mp4") as body:
        assert hashlib.sha256(body.read()).hexdigest() == stored.sha256


def test_s3_store_sets_content_type_disposition_and_encryption(
    s3_store: S3Store, bucket: str, s3_endpoint: str
) -> None:
    disposition = content_disposition("tip «night».mp4")
    s3_store.put_stream("tips/t1/a.mp4", io.BytesIO(b"video"), "video/mp4", disposition)
    raw = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    head = raw.head_object(Bucket=bucket, Key="tenant-a/media/tips/t1/a.mp4")
    assert head["ContentType"] == "video/mp4"
    assert head["ContentDisposition"] == disposition
    assert head["ServerSideEncryption"] == "AES256"


def test_s3_store_presigned_url_serves_the_same_bytes(s3_store: S3Store) -> None:
    data = os.urandom(70_000)
    s3_store.put_stream("renditions/web.mp4", io.BytesIO(data), "video/mp4")
    url = s3_store.url(
        "renditions/web.mp4", expires=120, disposition=content_disposition("web.mp4")
    )
    assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=120" in url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test server
        assert response.read() == data
        assert response.headers["Content-Disposition"].startswith('attachment; filename="web.mp4"')


def test_s3_store_configures_standard_retries_and_bounded_transfers(s3_store: S3Store) -> None:
    assert s3_store.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert s3_store.multipart_chunksize == 5 * MIB
    assert s3_store.max_in_memory_chunks == 3
    assert s3_store.max_concurrency == 2


def test_s3_store_unreachable_endpoint_raises_storage_error_after_retries(tmp_path: Path) -> None:
    store = S3Store("b", endpoint_url="http://127.0.0.1:9", max_attempts=2, connect_timeout_s=0.5)
    with pytest.raises(StorageError):
        store.put_stream("k", io.BytesIO(b"x"), "text/plain")
    with pytest.raises(StorageError):
        store.exists("k")


def test_s3_store_refuses_header_injection_in_disposition(s3_store: S3Store) -> None:
    with pytest.raises(ValueError, match="control characters"):
        s3_store.put_stream("k", io.BytesIO(b"x"), "text/plain", "attachment\r\nX-Evil: 1")


def test_content_disposition_keeps_ascii_fallback_safe() -> None:
    value = content_disposition('evil"\r\nname.mp4')
    assert "\r" not in value and "\n" not in value
    assert value.startswith(
        "attachment; filename=\"evil___name.mp4\"; filename*=UTF-8''evil%22%0D%0Aname.mp4"
    )


def test_store_from_url_builds_local_and_s3_stores(tmp_path: Path, s3_endpoint: str) -> None:
    local = store_from_url(f"file://{tmp_path}/media")
    assert isinstance(local, LocalStore) and local.root == str(tmp_path / "media")
    s3 = store_from_url(
        "s3://evidence/prod/media", endpoint_url=s3_endpoint, region_name="us-east-1"
    )
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("evidence", "prod/media/")
    with pytest.raises(ValueError):
        store_from_url("http://example.com/x")


def test_local_store_adopt_file_moves_without_copying(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    upload = tmp_path / "upload.part"
    upload.write_bytes(b"original evidence")
    inode = upload.stat().st_ino
    digest = hashlib.sha256(b"original evidence").hexdigest()
    stored = store.adopt_file("cases/c1/original", upload, digest, 17)
    assert (stored.sha256, stored.size) == (digest, 17)
    assert not upload.exists()
    assert Path(store.local_path("cases/c1/original")).stat().st_ino == inode
    with pytest.raises(ObjectNotFound):
        store.local_path("cases/c1/missing")


class WorkerShutdown(BaseException):
    """Not an Exception: what a worker's warm shutdown or a timeout raises in a job."""


def _multipart_uploads(s3_endpoint: str, bucket: str) -> list[dict[str, object]]:
    raw = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    return list(raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.mark.parametrize(
    "error", [OSError("connection reset"), WorkerShutdown()], ids=["oserror", "shutdown"]
)
def test_s3_store_failed_multipart_upload_is_aborted(
    s3_store: S3Store, s3_endpoint: str, bucket: str, error: BaseException
) -> None:
    """Cut after 12 MiB: two 5 MiB parts are sent, then the stream fails."""
    outcome: list[BaseException] = []

    def upload() -> None:
        try:
            s3_store.put_stream("cases/c1/cut.bin", _Exploding(12 * MIB, error), "video/mp4")  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - the test inspects what was raised
            outcome.append(exc)

    # In a thread: an upload that never returns must fail the test, not hang it.
    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the upload hung after its stream failed"
    assert outcome and outcome[0] is error
    assert _multipart_uploads(s3_endpoint, bucket) == []
    assert not s3_store.exists("cases/c1/cut.bin")


def test_s3_store_remove_incomplete_aborts_only_old_uploads(
    s3_store: S3Store, s3_endpoint: str, bucket: str
) -> None:
    # What a killed process leaves: an upload nobody will complete or abort.
    s3_store.client.create_multipart_upload(Bucket=bucket, Key="tenant-a/media/cases/c1/killed")
    s3_store.client.create_multipart_upload(Bucket=bucket, Key="other-tenant/killed")
    # moto reports every upload as initiated at this fixed moment; the bound is
    # checked against it.
    initiated = datetime(2010, 11, 10, 20, 48, 33, tzinfo=UTC)
    age_s = (datetime.now(UTC) - initiated).total_seconds()
    assert s3_store.remove_incomplete(older_than_s=age_s + 3600) == 0
    assert len(_multipart_uploads(s3_endpoint, bucket)) == 2
    assert s3_store.remove_incomplete(older_than_s=age_s - 3600) == 1
    assert [u["Key"] for u in _multipart_uploads(s3_endpoint, bucket)] == ["other-tenant/killed"]


def test_local_store_remove_incomplete_removes_only_old_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    store.put_stream("cases/c1/kept", io.BytesIO(b"evidence"), "video/mp4")
    directory = tmp_path / "media" / "cases" / "c1"
    old = directory / ".tmp-killed"
    recent = directory / ".tmp-writing"
    old.write_bytes(b"half")
    recent.write_bytes(b"half")
    day_ago = time.time() - 86400
    os.utime(old, (day_ago, day_ago))
    assert store.remove_incomplete(older_than_s=3600) == 1
    assert sorted(p.name for p in directory.iterdir()) == [".tmp-writing", "kept"]


def test_store_adopt_file_stores_and_removes_the_staged_file(store: Store, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    staged = tmp_path / "upload.part"
    staged.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    stored = store.adopt_file("cases/c1/original", staged, digest, len(data))
    assert (stored.key, stored.sha256, stored.size) == ("cases/c1/original", digest, len(data))
    assert not staged.exists()
    with store.open("cases/c1/original") as f:
        assert f.read() == data


def test_s3_store_adopt_file_refuses_a_file_that_changed(s3_store: S3Store, tmp_path: Path) -> None:
    staged = tmp_path / "upload.part"
    staged.write_bytes(b"what arrived, then damaged")
    recorded = hashlib.sha256(b"what arrived").hexdigest()
    with pytest.raises(HashMismatch):
        s3_store.adopt_file("cases/c1/original", staged, recorded, 12)
    assert not s3_store.exists("cases/c1/original")
    assert staged.exists()  # kept for whoever investigates


def test_store_open_range_reads_exactly_the_range(store: Store) -> None:
    data = os.urandom(100_000)
    store.put_stream("v/web.mp4", io.BytesIO(data), "video/mp4")
    for start, end in ((0, 1), (0, 100_000), (12_345, 54_321), (99_999, 100_000), (5, 5)):
        with store.open_range("v/web.mp4", start, end) as stream:
            assert stream.read() == data[start:end], (start, end)
    with pytest.raises(ObjectNotFound):
        store.open_range("v/missing.mp4", 0, 10)


def test_store_stat_reports_size_and_a_new_etag_per_version(store: Store) -> None:
    store.put_stream("v/poster.jpg", io.BytesIO(b"first"), "image/jpeg")
    first = store.stat("v/poster.jpg")
    assert first.size == 5 and first.etag and first.last_modified.tzinfo is not None
    store.put_stream("v/poster.jpg", io.BytesIO(b"second"), "image/jpeg")
    second = store.stat("v/poster.jpg")
    assert second.size == 6 and second.etag != first.etag
    with pytest.raises(ObjectNotFound):
        store.stat("v/missing.jpg")


def test_store_local_path_or_copy_leaves_nothing_in_scratch(store: Store, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    store.put_stream("c/original", io.BytesIO(data), "video/mp4")
    scratch = tmp_path / "work"
    scratch.mkdir()
    with store.local_path_or_copy("c/original", scratch) as path:
        assert Path(path).read_bytes() == data
    with pytest.raises(RuntimeError), store.local_path_or_copy("c/original", scratch) as path:
        raise RuntimeError("ffmpeg failed")
    assert list(scratch.iterdir()) == []
    with pytest.raises(ObjectNotFound), store.local_path_or_copy("c/missing", scratch):
        pass
    assert list(scratch.iterdir()) == []


def test_local_store_open_range_can_be_sent_with_sendfile(tmp_path: Path) -> None:
    """What gunicorn's wsgi.file_wrapper does with a range: socket.sendfile from the
    file's offset, Content-Length bytes, straight from the page cache."""
    import socket

    store = LocalStore(tmp_path / "media")
    data = os.urandom(1_000_000)
    store.put_stream("v/web.mp4", io.BytesIO(data), "video/mp4")
    sender, receiver = socket.socketpair()
    received = bytearray()

    def receive() -> None:
        while chunk := receiver.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    with sender, receiver, store.open_range("v/web.mp4", 250_000, 750_000) as stream:
        assert stream.tell() == 250_000
        sent = sender.sendfile(stream, offset=stream.tell(), count=500_000)
        sender.shutdown(socket.SHUT_WR)
        reader.join(10)
    assert sent == 500_000 and bytes(received) == data[250_000:750_000]
