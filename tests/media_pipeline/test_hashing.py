from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# -- the resumable SHA-256 (OpenSSL's state through ctypes) ---------------------------


@pytest.mark.parametrize(
    "cuts", [[0], [1], [63], [64], [65], [1000, 1000, 5], [4 * 1024 * 1024 + 3]]
)
def test_resumable_sha256_saved_and_resumed_matches_hashlib(cuts: list[int]) -> None:
    from media_pipeline.hashing import ResumableSha256

    data = os.urandom(sum(cuts) + 12_345)
    state = ResumableSha256().state()
    position = 0
    # Saved after every piece, as after each request, and resumed from the bytes only.
    for size in [*cuts, len(data) - sum(cuts)]:
        hasher = ResumableSha256(state)
        hasher.update(bytearray(data[position : position + size]))
        position += size
        state = hasher.state()
    resumed = ResumableSha256(state)
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    assert resumed.bytes_hashed == len(data)
    # The digest leaves the running state as it was.
    resumed.update(b"more")
    assert resumed.hexdigest() == hashlib.sha256(data + b"more").hexdigest()


def test_resumable_sha256_state_resumes_in_another_process(tmp_path: Path) -> None:
    from media_pipeline.hashing import ResumableSha256

    data = os.urandom(3 * 1024 * 1024 + 77)
    first = ResumableSha256()
    first.update(memoryview(bytearray(data))[:1_000_003])
    (tmp_path / "state").write_bytes(first.state())
    (tmp_path / "rest").write_bytes(data[1_000_003:])
    script = (
        "import sys; from pathlib import Path; from media_pipeline.hashing import ResumableSha256\n"
        "d = Path(sys.argv[1]); h = ResumableSha256((d / 'state').read_bytes())\n"
        "h.update(bytearray((d / 'rest').read_bytes())); print(h.hexdigest())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == hashlib.sha256(data).hexdigest()


def test_resumable_sha256_refuses_a_state_of_the_wrong_size() -> None:
    from media_pipeline.hashing import ResumableSha256

    with pytest.raises(ValueError, match="112 bytes"):
        ResumableSha256(b"\0" * 100)
