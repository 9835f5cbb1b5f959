"""The staging of resumable uploads, on its own (the portal's use of it is tested in
tests/portal/test_upload_nodes.py and tests/portal/public/test_tip_file_nodes.py)."""

from __future__ import annotations

import os

import pytest

from media_pipeline.staging import StagedBytesMissing
from media_pipeline.storage import MIB, S3Store, Store
from tests.media_pipeline.test_storage import s3_store, store  # noqa: F401


def test_read_start_gives_the_first_bytes_a_request_left(store: Store) -> None:  # noqa: F811
    staging = store.staging()
    state = staging.create("upload-a", 20 * MIB)
    writer = staging.open_writer(
        "upload-a", state, offset=0, durable_offset=0, hash_state=b"", guard=lambda: None
    )
    writer.write(memoryview(b"\x00\x00\x00\x18ftypmp42"))
    point = writer.checkpoint(final=False, durable=True)
    writer.close()
    state = point.state or state
    assert staging.read_start("upload-a", state, 8) == b"\x00\x00\x00\x18ftyp"
    with pytest.raises(StagedBytesMissing):
        staging.read_start("upload-a", state, 64)  # more than was staged
    staging.discard("upload-a", state)


def test_read_start_after_a_whole_s3_part_is_refused(s3_store: S3Store) -> None:  # noqa: F811
    # The first part of an unfinished multipart upload cannot be read back: the first
    # bytes are asked for only while they are all in the incomplete part.
    staging = s3_store.staging()
    state = staging.create("upload-b", 20 * MIB)
    writer = staging.open_writer(
        "upload-b", state, offset=0, durable_offset=0, hash_state=b"", guard=lambda: None
    )
    writer.write(memoryview(os.urandom(9 * MIB)))
    point = writer.checkpoint(final=False, durable=True)
    writer.close()
    assert point.state["parts"]
    with pytest.raises(StagedBytesMissing):
        staging.read_start("upload-b", point.state, 10)
    staging.discard("upload-b", point.state)
