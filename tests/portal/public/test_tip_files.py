"""A tip's files sent one by one and resumably (tus), as the tip form's page does with
JavaScript: through a real HTTP server on loopback, in the page's own chunk size, a
connection cut in the middle of a chunk and resumed from the offset the server has;
and every way a file can be refused, the tipster told why, in their language. Nothing
about the sender is kept.

The protocol's rules are from tus 1.0.0 (https://tus.io/protocols/resumable-upload):
creation answers 201 with Location, HEAD the Upload-Offset, PATCH 204 with the new
offset; an offset that is not the server's is 409."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from config import Settings
from portal.extensions import db
from portal.models import Agency, AttachmentStatus, Tip, TipAttachment
from portal.services.attachments import staging_path
from tests.portal.conftest import proof_fields
from tests.portal.public.test_attachments import FORM, receipt_of
from tests.portal.services.test_tips import TIPSTER_ADDRESS, dump_database

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
TIPSTER_AGENT = "TipsterPhone/2.0 (SerialNumber 8675309)"
# The first bytes of an MP4 (an ISO base media ftyp box): what the server tells the
# file by. The rest is noise, so no two chunks are alike.
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
PDF = b"%PDF-1.7\n" + b"x" * 200


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Behind one trusted proxy, so the client's address is the distinctive one sent.
    return replace(settings, trusted_proxies=1)


class Server:
    """The app served on a port of its own, as a browser reaches it."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.address = ("127.0.0.1", self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="tip-files")
        self._thread.start()

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.address, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def cut_patch(self, path: str, headers: dict[str, str], declared: int, sent: bytes) -> None:
        """A PATCH whose connection is lost after ``sent`` of ``declared`` bytes."""
        lines = [f"PATCH {path} HTTP/1.1", f"Host: {self.address[0]}:{self.address[1]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {declared}")
        with socket.create_connection(self.address, timeout=60) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
            sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def server(app: Flask) -> Iterator[Server]:
    running = Server(app)
    try:
        yield running
    finally:
        running.close()


def tip_page(client: FlaskClient, path: str = FORM) -> dict[str, str]:
    """What the page's uploader reads from the form: the draft secret, where files go,
    the chunk size; and the form's own fields."""
    page = client.get(path).get_data(as_text=True)
    found = {
        name: re.search(pattern, page)
        for name, pattern in {
            "csrf_token": r'name="csrf_token" type="hidden" value="([^"]+)"',
            "draft": r'name="draft" type="hidden" value="([^"]+)"',
            "files_url": r'data-files-url="([^"]+)"',
            "chunk": r'data-chunk-bytes="(\d+)"',
        }.items()
    }
    missing = [name for name, match in found.items() if match is None]
    assert not missing, f"the page lacks {missing}"
    return {**{name: m.group(1) for name, m in found.items() if m}, "html": page}


def headers_for(page: dict[str, str], **more: str) -> dict[str, str]:
    return {
        **TUS,
        "Tip-Draft": page["draft"],
        "X-Forwarded-For": TIPSTER_ADDRESS,
        "User-Agent": TIPSTER_AGENT,
        **more,
    }


def start(server: Server, page: dict[str, str], length: int, **more: str) -> str:
    status, headers, body = server.request(
        "POST", page["files_url"], headers_for(page, **{"Upload-Length": str(length), **more})
    )
    assert status == 201, body
    return headers["Location"]


def patch(
    server: Server, page: dict[str, str], location: str, offset: int, chunk: bytes
) -> tuple[int, dict[str, str], bytes]:
    return server.request(
        "PATCH",
        location,
        headers_for(
            page,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        ),
        chunk,
    )


def head_offset(server: Server, page: dict[str, str], location: str) -> int:
    status, headers, _ = server.request("HEAD", location, headers_for(page))
    assert status == 200
    return int(headers["Upload-Offset"])


def resume(server: Server, page: dict[str, str], location: str, content: bytes, step: int) -> int:
    """As the page does after a lost connection: ask the offset, send the next chunk
    from there; a 409 (the cut request not finished on the server yet, or an offset
    read before it was) is asked again. Returns the offset the first accepted PATCH
    started from."""
    for _ in range(200):
        offset = head_offset(server, page, location)
        status, _, body = patch(server, page, location, offset, content[offset : offset + step])
        if status == 204:
            return offset
        assert status == 409, body
        threading.Event().wait(0.05)
    raise AssertionError("the upload never became free to resume")


def send_form(client: FlaskClient, page: dict[str, str], body: str, path: str = FORM) -> str:
    """The form sent as the page sends it once its files arrived: without them."""
    response = client.post(
        path,
        data={
            "body": body,
            "csrf_token": page["csrf_token"],
            "draft": page["draft"],
            **proof_fields(page["html"]),
        },
        headers={"X-Forwarded-For": TIPSTER_ADDRESS, "User-Agent": TIPSTER_AGENT},
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    return text


def test_a_large_video_arrives_in_the_pages_chunks_across_a_cut_connection(
    app: Flask,
    client: FlaskClient,
    agency: Agency,
    server: Server,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    page = tip_page(client)
    step = int(page["chunk"])
    assert MIB <= step <= 16 * MIB  # a chunk a phone sends in seconds, not minutes
    content = MP4_HEAD + os.urandom(5 * step + 123_457 - len(MP4_HEAD))  # tens of MB
    location = start(server, page, len(content))
    assert head_offset(server, page, location) == 0

    status, headers, _ = patch(server, page, location, 0, content[:step])
    assert (status, headers["Upload-Offset"]) == (204, str(step))
    # The second chunk's connection is lost after a part of it.
    sent = step // 2 + 4321
    server.cut_patch(
        location,
        headers_for(
            page, **{"Upload-Offset": str(step), "Content-Type": "application/offset+octet-stream"}
        ),
        declared=step,
        sent=content[step : step + sent],
    )
    # Resumed from what the server has: every byte that arrived, not the chunk's start.
    assert resume(server, page, location, content, step) == step + sent
    offset = head_offset(server, page, location)
    while offset < len(content):
        status, headers, body = patch(
            server, page, location, offset, content[offset : offset + step]
        )
        assert status == 204, body
        offset = int(headers["Upload-Offset"])
    assert offset == len(content)
    # Sending the same bytes again is not a second file: it has arrived.
    status, _, _ = patch(server, page, location, 0, content[:step])
    assert status == 409

    receipt = send_form(client, page, "He drives a blue van.")
    assert "Video 1" in receipt and "being checked" in receipt
    receipt_of(receipt)
    tip = db.session.scalar(sa.select(Tip).order_by(Tip.id.desc()))
    assert tip is not None
    (row,) = tip.attachments
    assert (row.status, row.kind, row.format, row.size) == ("queued", "video", "mp4", len(content))
    assert row.sha256 == hashlib.sha256(content).hexdigest()
    assert staging_path(row.public_id).read_bytes() == content
    # Nothing about the sender, in the database or the logs.
    stored = dump_database()
    fields = " ".join(str(v) for record in caplog.records for v in vars(record).values())
    logged = caplog.text + fields + "".join(capfd.readouterr())
    for trace in (TIPSTER_ADDRESS, "TipsterPhone", "8675309"):
        assert trace not in stored, trace
        assert trace not in logged, trace


def test_a_file_that_is_not_a_photo_or_video_is_refused_at_its_first_chunk_in_spanish(
    app: Flask, client: FlaskClient, agency: Agency, server: Server
) -> None:
    page = tip_page(client, FORM + "?lang=es")
    location = start(server, page, len(PDF) + 10 * MIB)
    status, headers, body = patch(server, page, location, 0, PDF)
    assert status == 422
    problem = json.loads(body)
    assert problem["code"] == "pdf"
    assert "documento PDF" in problem["title"], problem
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None and row.status == AttachmentStatus.REFUSED.value
    assert not staging_path(row.public_id).exists()  # nothing of it kept
    # The page asks again after a lost answer: still refused, and nothing more taken.
    status, _, _ = patch(server, page, location, len(PDF), b"x" * 100)
    assert status == 422
    status, _, _ = server.request("HEAD", location, headers_for(page))
    assert status == 422
    # The tip is sent all the same, and its receipt says why the file was not kept.
    receipt = send_form(client, page, "Lo vi ayer.", FORM + "?lang=es")
    assert "no admitido" in receipt and "documento PDF" in receipt


def test_files_too_large_or_too_many_are_refused_before_a_byte_is_sent(
    app: Flask, client: FlaskClient, agency: Agency, server: Server
) -> None:
    settings = app.config["TATTLETALE"]
    page = tip_page(client)
    status, _, body = server.request(
        "POST",
        page["files_url"],
        headers_for(page, **{"Upload-Length": str(settings.tip_attachment_max_bytes + 1)}),
    )
    assert status == 413
    assert b"largest accepted" in body
    for _ in range(settings.tip_attachments_max):
        start(server, page, 1000)
    status, _, body = server.request(
        "POST", page["files_url"], headers_for(page, **{"Upload-Length": "1000"})
    )
    assert status == 422
    assert f"at most {settings.tip_attachments_max} files".encode() in body
    status, _, _ = server.request(
        "POST", page["files_url"], headers_for(page, **{"Upload-Length": "0"})
    )
    assert status == 422


def test_a_file_is_reached_only_with_its_forms_draft_secret(
    app: Flask, client: FlaskClient, agency: Agency, server: Server
) -> None:
    page = tip_page(client)
    other = tip_page(client)
    location = start(server, page, 1000)
    for headers in (
        headers_for(other),
        {k: v for k, v in headers_for(page).items() if k != "Tip-Draft"},
    ):
        status, _, _ = server.request("HEAD", location, headers)
        assert status == 404
        status, _, _ = server.request(
            "PATCH",
            location,
            {**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
            MP4_HEAD,
        )
        assert status == 404
        status, _, _ = server.request("DELETE", location, headers)
        assert status == 404
    assert head_offset(server, page, location) == 0
    # A form whose draft secret is missing starts nothing.
    status, _, _ = server.request(
        "POST", page["files_url"], {**TUS, "Upload-Length": "1000", "Tip-Draft": "short"}
    )
    assert status == 404


def test_more_bytes_than_declared_are_refused_and_nothing_of_them_kept(
    app: Flask, client: FlaskClient, agency: Agency, server: Server
) -> None:
    page = tip_page(client)
    location = start(server, page, 100)
    status, _, _ = patch(server, page, location, 0, MP4_HEAD + b"\0" * 200)
    assert status == 413
    assert head_offset(server, page, location) == 0
    status, _, _ = patch(server, page, location, 5, b"\0" * 10)
    assert status == 409  # not the server's offset


def test_a_file_still_arriving_is_not_taken_by_the_tip(
    app: Flask, client: FlaskClient, agency: Agency, server: Server
) -> None:
    page = tip_page(client)
    location = start(server, page, 10_000)
    status, _, _ = patch(server, page, location, 0, MP4_HEAD + b"\0" * 1000)
    assert status == 204
    send_form(client, page, "Sent before the file arrived.")
    tip = db.session.scalar(sa.select(Tip).order_by(Tip.id.desc()))
    assert tip is not None and tip.attachments == []
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None and (row.status, row.tip_id) == ("receiving", None)


def test_the_tipster_can_remove_a_file_before_sending(
    app: Flask, client: FlaskClient, agency: Agency, server: Server
) -> None:
    page = tip_page(client)
    location = start(server, page, 10_000)
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None
    path = staging_path(row.public_id)
    assert path.exists()
    status, _, _ = server.request("DELETE", location, headers_for(page))
    assert status == 204
    assert not path.exists()
    assert db.session.scalar(sa.select(sa.func.count(TipAttachment.id))) == 0


def test_starting_files_is_rate_limited_per_client(
    settings: Settings, agency: Agency, tmp_path: Path
) -> None:
    from portal import create_app
    from tests.conftest import IsolatedClient

    app = create_app(replace(settings, rate_limit_tip_uploads="2 per minute"))
    app.test_client_class = IsolatedClient
    with app.app_context():
        client = app.test_client()
        page = tip_page(client)
        answers = [
            client.post(page["files_url"], headers=headers_for(page, **{"Upload-Length": "1000"}))
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert int(answers[2].headers["Retry-After"]) >= 1
        # Another client (another address) is not held back.
        other = client.post(
            page["files_url"],
            headers={
                **headers_for(page, **{"Upload-Length": "1000"}),
                "X-Forwarded-For": "198.51.100.9",
            },
        )
        assert other.status_code == 201
        db.session.remove()
        db.engine.dispose()


def test_a_flood_of_unfinished_files_makes_room_oldest_first(
    settings: Settings, agency: Agency
) -> None:
    from portal import create_app
    from tests.conftest import IsolatedClient

    app = create_app(replace(settings, tip_attachments_pending_bytes=3000))
    app.test_client_class = IsolatedClient
    with app.app_context():
        client = app.test_client()
        flood = tip_page(client)
        first = client.post(
            flood["files_url"], headers=headers_for(flood, **{"Upload-Length": "1000"})
        )
        client.post(flood["files_url"], headers=headers_for(flood, **{"Upload-Length": "1000"}))
        client.post(flood["files_url"], headers=headers_for(flood, **{"Upload-Length": "1000"}))
        page = tip_page(client)
        mine = client.post(
            page["files_url"], headers=headers_for(page, **{"Upload-Length": "1500"})
        )
        assert mine.status_code == 201
        # The oldest two went to make room; the newest of the flood stays.
        assert client.head(first.headers["Location"], headers=headers_for(flood)).status_code == 404
        assert db.session.scalar(sa.select(sa.func.count(TipAttachment.id))) == 2
        too_big = client.post(
            page["files_url"], headers=headers_for(page, **{"Upload-Length": "3500"})
        )
        assert too_big.status_code == 507  # over the quota alone: nobody's file goes for it
        assert client.head(mine.headers["Location"], headers=headers_for(page)).status_code == 200
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("storage_location", ["s3"], indirect=True)
def test_with_a_store_that_holds_no_files_the_page_still_sends_files_resumably(
    app: Flask, client: FlaskClient, agency: Agency, storage_location: tuple[str, str | None]
) -> None:
    # The bytes are staged on the store itself (an S3 multipart upload), so a resumed
    # chunk may reach any machine (tests/portal/public/test_tip_file_nodes.py).
    page = tip_page(client)
    assert 'enctype="multipart/form-data"' in page["html"]  # the path without JavaScript
    answer = client.post(
        page["files_url"],
        headers={**TUS, "Tip-Draft": page["draft"], "Upload-Length": "1000"},
    )
    assert answer.status_code == 201
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None and row.staging["upload_id"]
    assert not staging_path(row.public_id).exists()  # nothing on this machine's disk


def test_a_file_refused_before_a_byte_is_explained_in_spanish(
    app: Flask, client: FlaskClient, agency: Agency, server: Server
) -> None:
    page = tip_page(client, FORM + "?lang=es")
    largest = app.config["TATTLETALE"].tip_attachment_max_bytes
    status, _, body = server.request(
        "POST", page["files_url"], headers_for(page, **{"Upload-Length": str(largest + 1)})
    )
    assert status == 413
    assert "el máximo admitido es" in json.loads(body)["title"]
