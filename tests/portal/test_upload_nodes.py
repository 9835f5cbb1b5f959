"""Scale-out of uploads: several web machines and a worker, each with its own instance
directory, sharing only the database and the store (the local store's directory, or S3
on moto's server). Any node takes any request of an upload; any worker ingests it.

Each node is a real HTTP server on loopback, and the client behaves as a tus client
does: it asks for the offset (HEAD) and sends the next chunk (PATCH), here to whichever
node the load balancer picked, the other one every time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Case, Clip, Role, Upload, User
from portal.services.storage import get_store
from portal.services.uploads import staged_locator
from portal.services.users import create_api_token
from tests.portal.conftest import Node, run_jobs

pytestmark = pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def auth(users: dict[Role, User]) -> dict[str, str]:
    _, secret = create_api_token(users[Role.OFFICER])
    db.session.commit()
    return {"Authorization": f"Bearer {secret}", **TUS}


def make_noisy_clip(path: Path) -> Path:
    """A real video of about 13 MB (lossless noise): more than one 8 MiB S3 part."""
    subprocess.run(
        [
            shutil.which("ffmpeg") or "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=480x360:r=25:d=2,geq=lum='random(1)*255':cb=128:cr=128",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    assert path.stat().st_size > 10 * MIB
    return path


@pytest.fixture(scope="module")
def noisy_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_noisy_clip(tmp_path_factory.mktemp("clips") / "noise.mp4")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(node: Node, auth: dict[str, str], length: int, case: Case) -> str:
    status, headers, body = node.request(
        "POST",
        "/api/v1/uploads",
        {
            **auth,
            "Upload-Length": str(length),
            "Upload-Metadata": f"filename {b64('noise.mp4')},case {b64(case.public_id)}",
        },
    )
    assert status == 201, body
    return headers["Location"]


def offset_of(node: Node, auth: dict[str, str], location: str) -> int:
    status, headers, body = node.request("HEAD", location, auth)
    assert status == 200, body
    return int(headers["Upload-Offset"])


def patch(
    node: Node, auth: dict[str, str], location: str, offset: int, chunk: bytes
) -> tuple[int, dict[str, str], bytes]:
    return node.request(
        "PATCH",
        location,
        {**auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        chunk,
    )


def upload_alternating(
    nodes: tuple[Node, Node], auth: dict[str, str], location: str, data: bytes, chunks: list[int]
) -> None:
    """A tus client whose every request the load balancer sends to the other node:
    HEAD for the offset on one node, PATCH of the next chunk on the other."""
    turn = 0
    for size in chunks:
        offset = offset_of(nodes[turn % 2], auth, location)
        turn += 1
        status, headers, body = patch(
            nodes[turn % 2], auth, location, offset, data[offset : offset + size]
        )
        assert status == 204, body
        assert int(headers["Upload-Offset"]) == min(len(data), offset + size)
    assert offset_of(nodes[turn % 2], auth, location) == len(data)


def test_upload_alternating_between_nodes_is_ingested_by_a_third_into_a_ready_clip(
    nodes: tuple[Node, Node],
    worker: Flask,
    auth: dict[str, str],
    case: Case,
    noisy_clip: Path,
) -> None:
    data = noisy_clip.read_bytes()
    location = create(nodes[0], auth, len(data), case)
    # Chunks that end inside an 8 MiB part, on a part boundary and past it.
    chunks = [3 * MIB + 17, 5 * MIB - 17, 1 * MIB, 2 * MIB + 5, len(data)]
    upload_alternating(nodes, auth, location, data, chunks)
    upload_id = location.rsplit("/", 1)[-1]

    status, _, body = nodes[1].request(
        "POST",
        f"/api/v1/cases/{case.public_id}/clips",
        {**auth, "Content-Type": "application/json"},
        json.dumps({"upload_id": upload_id}).encode(),
    )
    assert status == 201, body
    clip_id = json.loads(body)["clip"]["id"]

    with worker.app_context():
        assert run_jobs() == ["succeeded"] * 3  # ingest, proxy, version 1
        clip = db.session.scalar(select(Clip).where(Clip.public_id == clip_id))
        assert clip is not None and clip.status == "ready", clip and clip.rejection_reason
        expected = hashlib.sha256(data).hexdigest()
        assert clip.original_sha256 == expected
        with get_store().open(clip.original_key) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == expected
        # Nothing of the staging is left on the store.
        assert not list(get_store().iter_keys("uploads/"))
        assert clip.upload is not None
        assert not Path(staged_locator(clip.upload)).exists()
        db.session.remove()
    # No node kept anything of the upload in its instance directory.
    for node in nodes:
        assert not list(node.instance.rglob("*.part"))


def test_tail_smaller_than_an_s3_part_is_continued_on_the_other_node(
    nodes: tuple[Node, Node], auth: dict[str, str], case: Case
) -> None:
    data = os.urandom(9 * MIB + 4321)
    location = create(nodes[0], auth, len(data), case)
    # 1 MiB on one node (less than S3's 5 MiB minimum part: kept as the incomplete
    # part), then 4 MiB on the other (still no part), then the rest back on the first.
    upload_alternating(nodes, auth, location, data, [1 * MIB, 4 * MIB, len(data)])
    upload = db.session.scalar(select(Upload))
    assert upload is not None and upload.status == "complete"
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    # The staged bytes, stored, are the file.
    from portal.services.uploads import adopt_upload

    adopt_upload(upload, "checks/adopted")
    with get_store().open("checks/adopted") as stored:
        assert stored.read() == data


def test_simultaneous_patches_on_two_nodes_one_wins_the_other_is_409(
    nodes: tuple[Node, Node], auth: dict[str, str], case: Case
) -> None:
    data = os.urandom(12 * MIB)
    location = create(nodes[0], auth, len(data), case)
    first_half = 6 * MIB

    # A slow client on the first node: headers and part of its body, then a pause.
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: web-1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in auth.items())
        + "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        + f"Content-Length: {first_half}\r\n\r\n"
    )
    with socket.create_connection(nodes[0].address, timeout=60) as slow:
        slow.sendall(head.encode() + data[: 2 * MIB])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.scalar(select(Upload.writer_token)):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first request never started writing")

        # Meanwhile the same client's retry (or another tab) reaches the second node.
        status, _, body = patch(nodes[1], auth, location, 0, data[:first_half])
        assert status == 409, body
        assert "Another request is writing" in json.loads(body)["title"]

        slow.sendall(data[2 * MIB : first_half])
        answer = slow.recv(65536)
    assert answer.startswith(b"HTTP/1.1 204"), answer[:200]
    assert b"Upload-Offset: 6291456" in answer

    # The winner's bytes are all there, nothing of the loser's: the upload finishes
    # on the second node with the right hash.
    assert offset_of(nodes[1], auth, location) == first_half
    status, _, body = patch(nodes[1], auth, location, first_half, data[first_half:])
    assert status == 204, body
    db.session.expire_all()
    upload = db.session.scalar(select(Upload))
    assert upload is not None and upload.status == "complete"
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.writer_token == ""
