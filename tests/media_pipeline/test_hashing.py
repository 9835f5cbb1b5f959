from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from media_pipeline import HashingReader, hash_file, hash_stream


def test_hashing_reader_digest_matches_hashlib() -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    reader = HashingReader(io.BytesIO(data))
    out = bytearray()
    while chunk := reader.read(100_003):
        out += chunk
    assert bytes(out) == data
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    assert reader.bytes_read == len(data)


def test_hashing_reader_readinto_and_readall_hash_everything() -> None:
    data = os.urandom(50_000)
    reader = HashingReader(io.BytesIO(data))
    buffer = bytearray(1000)
    assert reader.readinto(buffer) == 1000
    rest = reader.readall()
    assert buffer + rest == data
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()


def test_hashing_reader_refuses_to_seek() -> None:
    reader = HashingReader(io.BytesIO(b"abc"))
    assert reader.seekable() is False


def test_hash_stream_copies_to_sink_while_hashing() -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    sink = io.BytesIO()
    digest, size = hash_stream(io.BytesIO(data), sink)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert sink.getvalue() == data


def test_hash_file_of_empty_and_nonempty_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.touch()
    assert hash_file(empty) == (hashlib.sha256(b"").hexdigest(), 0)
    full = tmp_path / "full"
    full.write_bytes(b"evidence" * 1000)
    assert hash_file(full) == (hashlib.sha256(b"evidence" * 1000).hexdigest(), 8000)
