"""SHA-256 computed while data streams through, so no file is ever read twice to hash it."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import os
from typing import Any, BinaryIO

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


class _Sha256Ctx(ctypes.Structure):
    """OpenSSL's ``SHA256_CTX`` (openssl/sha.h): the eight chaining words, the bit
    count, the unprocessed block and its length. A plain struct, no pointers, so its
    bytes are the whole state."""

    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


def _load_libcrypto() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypto") or "libcrypto.so.3"
    lib = ctypes.CDLL(name)
    ctx_p = ctypes.POINTER(_Sha256Ctx)
    lib.SHA256_Init.argtypes = [ctx_p]
    lib.SHA256_Update.argtypes = [ctx_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctx_p]
    for function in (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final):
        function.restype = ctypes.c_int
    return lib


_libcrypto: ctypes.CDLL | None = None


def _crypto() -> ctypes.CDLL:
    global _libcrypto
    if _libcrypto is None:
        _libcrypto = _load_libcrypto()
    return _libcrypto


class ResumableSha256:
    """SHA-256 whose running state can be saved as bytes and resumed elsewhere.

    A resumable upload is hashed while it is received, one request at a time, and the
    requests of one upload may reach different machines: the state must travel with
    the upload's database row. ``hashlib`` cannot export its state (``copy()`` stays in
    the process), so this drives OpenSSL's own ``SHA256_Init/Update/Final`` through
    ctypes: the same code ``hashlib`` runs (SHA-NI where the CPU has it), at the same
    speed, and ctypes releases the GIL during the call as ``hashlib`` does for large
    buffers. The state is OpenSSL's ``SHA256_CTX``, 112 bytes in the machine's byte
    order: every node of one deployment must share the architecture (they run one
    build); a state of the wrong size is refused, never guessed at.
    """

    STATE_BYTES = ctypes.sizeof(_Sha256Ctx)

    def __init__(self, state: bytes | None = None) -> None:
        self._lib = _crypto()
        if state:
            if len(state) != self.STATE_BYTES:
                raise ValueError(f"a SHA-256 state is {self.STATE_BYTES} bytes, not {len(state)}")
            self._ctx = _Sha256Ctx.from_buffer_copy(state)
        else:
            self._ctx = _Sha256Ctx()
            if self._lib.SHA256_Init(ctypes.byref(self._ctx)) != 1:
                raise RuntimeError("SHA256_Init failed")
        self.bytes_hashed = (self._ctx.Nh << 32 | self._ctx.Nl) // 8

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        count = len(view)
        if not count:
            return
        if view.readonly:
            # bytes: its buffer is read-only, which ctypes' from_buffer refuses; a
            # c_char_p points at it without a copy.
            pointer: Any = ctypes.c_char_p(bytes(view) if not isinstance(data, bytes) else data)
            self._call_update(pointer, count)
            return
        block = (ctypes.c_char * count).from_buffer(view)
        try:
            self._call_update(block, count)
        finally:
            del block  # release the export, or the bytearray could not be resized

    def _call_update(self, pointer: Any, count: int) -> None:
        if self._lib.SHA256_Update(ctypes.byref(self._ctx), pointer, count) != 1:
            raise RuntimeError("SHA256_Update failed")
        self.bytes_hashed += count

    def state(self) -> bytes:
        return bytes(self._ctx)

    def copy(self) -> ResumableSha256:
        return ResumableSha256(self.state())

    def digest(self) -> bytes:
        """The digest of what was hashed so far; the running state is left as it is."""
        final = _Sha256Ctx.from_buffer_copy(bytes(self._ctx))
        out = ctypes.create_string_buffer(32)
        if self._lib.SHA256_Final(out, ctypes.byref(final)) != 1:
            raise RuntimeError("SHA256_Final failed")
        return out.raw

    def hexdigest(self) -> str:
        return self.digest().hex()
