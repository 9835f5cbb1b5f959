"""Scale-out of a tip's files: two web machines and a worker, each with its own
instance directory, sharing only the database and the store (the local store's
directory, or S3 on moto's server). Any node takes any request of a tipster's file,
as for a clip upload (tests/portal/test_upload_nodes.py); any worker processes it.

The client behaves as the tip form's uploader (portal/static/js/tip-upload.js) does:
it asks for the offset (HEAD) and sends the next chunk (PATCH), here to whichever node
the load balancer picked, the other one every time.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from media_pipeline.storage import S3Store
from portal.extensions import db
from portal.models import Agency, Tip, TipAttachment
from portal.models.base import utcnow
from portal.services.attachments import staging_path, sweep_drafts
from portal.services.storage import get_store
from tests.portal.conftest import Node, run_jobs
from tests.portal.public.test_tip_files import (
    MP4_HEAD,
    TIPSTER_ADDRESS,
    headers_for,
    send_form,
    tip_page,
)
from tests.portal.services.test_tips import dump_database
from tests.portal.test_upload_nodes import make_noisy_clip

pytestmark = pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)

MIB = 1024 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Behind one trusted proxy, so the client's address is the distinctive one sent.
    return replace(settings, trusted_proxies=1)


@pytest.fixture(scope="module")
def noisy_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_noisy_clip(tmp_path_factory.mktemp("tipclips") / "noise.mp4")


def start(node: Node, page: dict[str, str], length: int) -> str:
    status, headers, body = node.request(
        "POST", page["files_url"], headers_for(page, **{"Upload-Length": str(length)})
    )
    assert status == 201, body
    return headers["Location"]


def offset_of(node: Node, page: dict[str, str], location: str) -> int:
    status, headers, body = node.request("HEAD", location, headers_for(page))
    assert status == 200, body
    return int(headers["Upload-Offset"])


def patch(
    node: Node, page: dict[str, str], location: str, offset: int, chunk: bytes
) -> tuple[int, dict[str, str], bytes]:
    return node.request(
        "PATCH",
        location,
        headers_for(
            page,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        ),
        chunk,
    )


def cut_patch(node: Node, path: str, headers: dict[str, str], declared: int, sent: bytes) -> None:
    """A PATCH whose connection is lost after ``sent`` of ``declared`` bytes."""
    lines = [f"PATCH {path} HTTP/1.1", f"Host: {node.address[0]}:{node.address[1]}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {declared}")
    with socket.create_connection(node.address, timeout=60) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
        sock.shutdown(socket.SHUT_WR)


def recorded_offset(public_id: str) -> tuple[int, str]:
    db.session.expire_all()
    row = db.session.scalar(sa.select(TipAttachment).where(TipAttachment.public_id == public_id))
    assert row is not None
    return row.offset, row.writer_token


def staged_objects() -> list[str]:
    """What the store holds of staged uploads: objects, and (S3) open multipart uploads."""
    store = get_store()
    found = list(store.iter_keys("uploads/"))
    if isinstance(store, S3Store):
        answer = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
        found += [f"multipart:{u['Key']}" for u in answer.get("Uploads", ())]
    return found


def test_a_tip_video_sent_to_alternating_nodes_is_processed_by_a_third(
    client: FlaskClient,
    agency: Agency,
    nodes: tuple[Node, Node],
    worker: Flask,
    noisy_clip: Path,
) -> None:
    data = noisy_clip.read_bytes()
    page = tip_page(client)
    location = start(nodes[0], page, len(data))
    # Chunks that end inside an 8 MiB S3 part, on its boundary and past it: a tail
    # the other node reads back and continues, as the page's 8 MiB chunks do too.
    chunks = [3 * MIB + 17, 5 * MIB - 17, 1 * MIB, 2 * MIB + 5, len(data)]
    turn = 0
    for size in chunks:
        offset = offset_of(nodes[turn % 2], page, location)
        turn += 1
        status, headers, body = patch(
            nodes[turn % 2], page, location, offset, data[offset : offset + size]
        )
        assert status == 204, body
        assert int(headers["Upload-Offset"]) == min(len(data), offset + size)
    assert offset_of(nodes[turn % 2], page, location) == len(data)

    receipt = send_form(client, page, "The van again, on Elm Street.")
    assert "Video 1" in receipt
    expected = hashlib.sha256(data).hexdigest()
    with worker.app_context():
        assert run_jobs() == ["succeeded"]
        tip = db.session.scalar(sa.select(Tip).order_by(Tip.id.desc()))
        assert tip is not None
        (row,) = tip.attachments
        assert (row.status, row.kind, row.format, row.size) == ("ready", "video", "mp4", len(data))
        assert row.sha256 == expected
        with get_store().open(row.original_key) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == expected
        assert row.derivative_key and get_store().exists(row.derivative_key)
        # Nothing of the staging is left on the store.
        assert staged_objects() == []
        assert not staging_path(row.public_id).exists()
        db.session.remove()
    # No machine kept anything of the file in its instance directory.
    for node in nodes:
        assert not [p for p in node.instance.rglob("*") if p.is_file() and "tip" in p.name]
    # Nor anything of the sender in the database.
    stored = dump_database()
    for trace in (TIPSTER_ADDRESS, "TipsterPhone", "8675309"):
        assert trace not in stored, trace


def test_a_cut_patch_on_one_node_resumes_on_the_other_from_every_byte_that_arrived(
    client: FlaskClient, agency: Agency, nodes: tuple[Node, Node]
) -> None:
    content = MP4_HEAD + os.urandom(12 * MIB - len(MP4_HEAD))
    page = tip_page(client)
    location = start(nodes[0], page, len(content))
    public_id = location.rsplit("/", 1)[-1]
    status, _, body = patch(nodes[0], page, location, 0, content[: 2 * MIB])
    assert status == 204, body
    # The next chunk's connection is lost after 7 MiB of its 9: past the first S3 part.
    sent = 7 * MIB + 4321
    cut_patch(
        nodes[1],
        location,
        headers_for(
            page,
            **{"Upload-Offset": str(2 * MIB), "Content-Type": "application/offset+octet-stream"},
        ),
        declared=9 * MIB,
        sent=content[2 * MIB : 2 * MIB + sent],
    )
    deadline = time.monotonic() + 30
    while recorded_offset(public_id) != (2 * MIB + sent, ""):
        assert time.monotonic() < deadline, "the cut request never recorded what arrived"
        threading.Event().wait(0.05)
    # The page asks the other node where to go on, and sends the rest there.
    offset = offset_of(nodes[0], page, location)
    assert offset == 2 * MIB + sent
    status, headers, body = patch(nodes[0], page, location, offset, content[offset:])
    assert status == 204, body
    assert int(headers["Upload-Offset"]) == len(content)
    db.session.expire_all()
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None
    assert (row.status, row.format, row.kind) == ("draft", "mp4", "video")
    assert row.sha256 == hashlib.sha256(content).hexdigest()


def test_one_request_writes_a_file_at_a_time_across_nodes(
    client: FlaskClient, agency: Agency, nodes: tuple[Node, Node]
) -> None:
    page = tip_page(client)
    location = start(nodes[0], page, 1000)
    public_id = location.rsplit("/", 1)[-1]
    # A request on another node is receiving this file (it holds the lease).
    db.session.execute(
        sa.update(TipAttachment)
        .where(TipAttachment.public_id == public_id)
        .values(writer_token="f" * 32, writer_until=utcnow() + timedelta(seconds=30))
    )
    db.session.commit()
    status, _, body = patch(nodes[1], page, location, 0, MP4_HEAD)
    assert status == 409, body
    assert b"being received in another request" in body
    # That request's process died: its lease lapses and the file is free again.
    db.session.execute(
        sa.update(TipAttachment)
        .where(TipAttachment.public_id == public_id)
        .values(writer_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    status, headers, body = patch(nodes[1], page, location, 0, MP4_HEAD)
    assert (status, headers.get("Upload-Offset")) == (204, str(len(MP4_HEAD))), body


def test_an_expired_drafts_staged_bytes_are_removed_from_the_store(
    client: FlaskClient, agency: Agency, nodes: tuple[Node, Node], worker: Flask
) -> None:
    page = tip_page(client)
    # One file half sent (a whole S3 part and an incomplete one), one complete but
    # never sent with a tip.
    half = start(nodes[0], page, 20 * MIB)
    status, _, body = patch(nodes[0], page, half, 0, MP4_HEAD + os.urandom(9 * MIB))
    assert status == 204, body
    whole_content = MP4_HEAD + os.urandom(3 * MIB)
    whole = start(nodes[1], page, len(whole_content))
    status, _, body = patch(nodes[1], page, whole, 0, whole_content)
    assert status == 204, body
    public_ids = [location.rsplit("/", 1)[-1] for location in (half, whole)]
    assert staged_objects() != [] or all(staging_path(p).exists() for p in public_ids)

    db.session.execute(sa.update(TipAttachment).values(created_at=utcnow() - timedelta(hours=25)))
    db.session.commit()
    with worker.app_context():
        assert sweep_drafts() == 2
        db.session.commit()
        assert staged_objects() == []
        for public_id in public_ids:
            assert not staging_path(public_id).exists()
        db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count(TipAttachment.id))) == 0
    status, _, _ = nodes[0].request("HEAD", half, headers_for(page))
    assert status == 404


def test_a_file_is_told_by_its_first_bytes_even_when_they_came_in_two_requests(
    client: FlaskClient, agency: Agency, nodes: tuple[Node, Node]
) -> None:
    page = tip_page(client)
    # A connection lost in the file's first bytes: what it is is only known once the
    # next request, on the other node, brings the rest of them.
    video = MP4_HEAD + os.urandom(5000)
    location = start(nodes[0], page, len(video))
    status, headers, body = patch(nodes[0], page, location, 0, video[:10])
    assert (status, headers.get("Upload-Offset")) == (204, "10"), body
    status, headers, body = patch(nodes[1], page, location, 10, video[10:])
    assert (status, headers.get("Upload-Offset")) == (204, str(len(video))), body
    row = db.session.scalar(
        sa.select(TipAttachment).where(TipAttachment.public_id == location.rsplit("/", 1)[-1])
    )
    assert row is not None and (row.status, row.format, row.kind) == ("draft", "mp4", "video")

    pdf = b"%PDF-1.7\n" + b"x" * 5000
    location = start(nodes[1], page, len(pdf))
    status, _, body = patch(nodes[1], page, location, 0, pdf[:5])
    assert status == 204, body
    status, _, body = patch(nodes[0], page, location, 5, pdf[5:100])
    assert status == 422, body
    assert b'"code": "pdf"' in body or b'"code":"pdf"' in body
    db.session.expire_all()
    row = db.session.scalar(
        sa.select(TipAttachment).where(TipAttachment.public_id == location.rsplit("/", 1)[-1])
    )
    assert row is not None and row.status == "refused"
    # Nothing of the refused file stays staged.
    assert not staging_path(row.public_id).exists()
    assert not [key for key in staged_objects() if row.public_id in key]


def test_staged_bytes_no_file_claims_are_swept_and_a_live_files_stay(
    client: FlaskClient, agency: Agency, nodes: tuple[Node, Node]
) -> None:
    page = tip_page(client)
    live = start(nodes[0], page, 10 * MIB)
    status, _, body = patch(nodes[0], page, live, 0, MP4_HEAD + os.urandom(MIB))
    assert status == 204, body
    live_id = live.rsplit("/", 1)[-1]
    # What a draft whose removal the store refused at the time (S3), or a process
    # killed mid-request (a local part file), left behind.
    store = get_store()
    orphan = "uploads/tip-gone0000000000000000/tail-0123456789abcdef"
    if isinstance(store, S3Store):
        store.put_stream(orphan, io.BytesIO(b"x" * 100), "application/octet-stream")
        assert orphan in staged_objects()
    else:
        orphan = str(staging_path("gone0000000000000000"))
        Path(orphan).write_bytes(b"x" * 100)
    live_staged = [key for key in staged_objects() if key != orphan]
    # A day and a half later (the file's row is young: its draft lives on).
    sweep_drafts(now_s=time.time() + 36 * 3600)
    db.session.commit()
    assert orphan not in staged_objects() and not Path(orphan).exists()
    assert staged_objects() == live_staged
    if not isinstance(store, S3Store):
        assert staging_path(live_id).exists()
    assert offset_of(nodes[1], page, live) == len(MP4_HEAD) + MIB
