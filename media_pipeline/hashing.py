"""SHA-256 computed while data streams through, so no file is ever read twice to hash it."""

from __future__ import annotations

import hashlib
import io
import os
from typing import BinaryIO

#: 1 MiB: large enough that the per-call overhead vanishes next to SHA-256 itself
#: (measured in bench/media_pipeline_bench.py, ``sha256_vs_hashlib``), small enough to
#: keep memory flat.
CHUNK_SIZE = 1024 * 1024


class HashingReader(io.RawIOBase):
    """A forward-only reader that hashes every byte it hands out.

    It deliberately reports ``seekable() == False``: a consumer that could seek
    (boto3's multipart upload does, when it can) might read parts out of order or
    twice, and the digest would no longer be the digest of the file.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._hash = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        n = self._raw.readinto(view)  # type: ignore[attr-defined]
        if n:
            self._hash.update(view[:n])
            self.bytes_read += n
        return n or 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        data = self._raw.read(size)
        if data:
            self._hash.update(data)
            self.bytes_read += len(data)
        return data

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(CHUNK_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hash_stream(stream: BinaryIO, sink: BinaryIO | None = None) -> tuple[str, int]:
    """Hash ``stream`` to its end, copying it to ``sink`` on the way if given.

    Returns ``(sha256_hex, size)``. One reusable buffer, so memory stays at one chunk.
    """
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    size = 0
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                break
            chunk = view[:n]
        else:
            data = stream.read(CHUNK_SIZE)
            if not data:
                break
            chunk = memoryview(data)
            n = len(data)
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
        size += n
    return digest.hexdigest(), size


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(sha256_hex, size)`` of the file at ``path``, read once, unbuffered."""
    with open(path, "rb", buffering=0) as stream:
        return hash_stream(stream)
