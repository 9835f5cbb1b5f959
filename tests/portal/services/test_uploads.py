"""The tus 1.0 endpoint: creation, resumption, checksums, limits, termination."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from portal.extensions import db
from portal.models import Case, Role, Upload, User
from portal.models.base import utcnow
from portal.services.uploads import (
    UploadDamaged,
    expire_uploads,
    make_staged_file_durable,
    staged_locator,
)
from tests.filesystems import tmpfs
from tests.portal.conftest import csrf_token

TUS = {"Tus-Resumable": "1.0.0"}


def partial_path(upload: Upload) -> Path:
    """The partial file of an upload staged on the local store (the default)."""
    return Path(staged_locator(upload))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def officer_client(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> FlaskClient:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/")
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    return client


def create(client: FlaskClient, length: int, case: Case | None = None, **extra: str) -> str:
    metadata = f"filename {b64('doorbell cam.mp4')},filetype {b64('video/mp4')}"
    if case is not None:
        metadata += f",case {b64(case.public_id)}"
    response = client.post(
        "/staff/uploads/",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata, **extra},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Tus-Resumable"] == "1.0.0"
    return response.headers["Location"]


def patch(client: FlaskClient, location: str, offset: int, body: bytes, **headers: str):  # type: ignore[no-untyped-def]
    return client.patch(
        location,
        data=body,
        headers={
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


def test_tus_options_advertises_extensions(officer_client: FlaskClient) -> None:
    response = officer_client.options("/staff/uploads/")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) >= {
        "creation",
        "termination",
        "checksum",
        "expiration",
    }
    assert "sha1" in response.headers["Tus-Checksum-Algorithm"]


def test_tus_upload_in_chunks_then_resume_from_head(
    officer_client: FlaskClient, case: Case
) -> None:
    data = os.urandom(300_000)
    location = create(officer_client, len(data), case)
    assert patch(officer_client, location, 0, data[:100_000]).headers["Upload-Offset"] == "100000"
    head = officer_client.head(location, headers=TUS)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "100000"
    assert head.headers["Upload-Length"] == "300000"
    assert head.headers["Cache-Control"] == "no-store"
    response = patch(officer_client, location, 100_000, data[100_000:])
    assert response.status_code == 204 and response.headers["Upload-Offset"] == "300000"
    upload = db.session.scalar(select(Upload))
    assert upload is not None
    assert upload.status == "complete"
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.filename == "doorbell cam.mp4" and upload.case_id == case.id
    assert partial_path(upload).read_bytes() == data


def test_tus_hash_state_is_kept_in_the_row_between_requests(
    officer_client: FlaskClient, case: Case
) -> None:
    data = os.urandom(50_000)
    location = create(officer_client, len(data), case)
    patch(officer_client, location, 0, data[:20_000])
    # Nothing of the running hash stays in the process: the row carries it.
    assert len(db.session.scalar(select(Upload.sha256_state)) or b"") == 112
    patch(officer_client, location, 20_000, data[20_000:])
    assert db.session.scalar(select(Upload.sha256_state)) == b""
    assert db.session.scalar(select(Upload.sha256)) == hashlib.sha256(data).hexdigest()


def test_tus_wrong_offset_is_a_conflict(officer_client: FlaskClient, case: Case) -> None:
    location = create(officer_client, 10, case)
    response = patch(officer_client, location, 5, b"12345")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "upload is at 0" in response.json["title"]


def test_tus_checksum_mismatch_keeps_nothing(officer_client: FlaskClient, case: Case) -> None:
    location = create(officer_client, 10, case)
    bad = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    response = patch(
        officer_client, location, 0, b"0123456789", **{"Upload-Checksum": f"sha1 {bad}"}
    )
    assert response.status_code == 460
    assert officer_client.head(location, headers=TUS).headers["Upload-Offset"] == "0"
    good = base64.b64encode(hashlib.sha1(b"0123456789").digest()).decode()
    response = patch(
        officer_client, location, 0, b"0123456789", **{"Upload-Checksum": f"sha1 {good}"}
    )
    assert response.status_code == 204
    assert db.session.scalar(select(Upload.sha256)) == hashlib.sha256(b"0123456789").hexdigest()


def test_tus_unsupported_checksum_algorithm(officer_client: FlaskClient, case: Case) -> None:
    location = create(officer_client, 4, case)
    response = patch(officer_client, location, 0, b"abcd", **{"Upload-Checksum": "crc32 AAAA"})
    # tus checksum extension: "the Server MUST respond with 400 Bad Request".
    assert response.status_code == 400 and response.json["field"] == "Upload-Checksum"


def test_tus_more_bytes_than_declared_are_refused(officer_client: FlaskClient, case: Case) -> None:
    location = create(officer_client, 4, case)
    response = patch(officer_client, location, 0, b"abcdefgh")
    assert response.status_code == 413
    assert officer_client.head(location, headers=TUS).headers["Upload-Offset"] == "0"


def test_tus_too_large_is_refused_before_storing(
    app: Flask, officer_client: FlaskClient, case: Case
) -> None:
    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], max_upload_bytes=1000)
    response = officer_client.post("/staff/uploads/", headers={**TUS, "Upload-Length": "1001"})
    assert response.status_code == 413
    assert "largest accepted" in response.json["title"]
    assert db.session.scalar(select(Upload)) is None


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Upload-Length": "10"}, 412),  # no Tus-Resumable
        ({**TUS}, 400),  # no length
        ({**TUS, "Upload-Length": "-5"}, 400),
        ({**TUS, "Upload-Length": "0"}, 422),  # well-formed, but an empty file
        ({**TUS, "Upload-Length": "10", "Upload-Metadata": "filename !!notbase64"}, 400),
    ],
)
def test_tus_bad_creation_requests(
    officer_client: FlaskClient, headers: dict[str, str], status: int
) -> None:
    response = officer_client.post("/staff/uploads/", headers=headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_tus_patch_needs_offset_content_type(officer_client: FlaskClient, case: Case) -> None:
    location = create(officer_client, 4, case)
    response = officer_client.patch(
        location, data=b"abcd", headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_tus_termination_removes_the_bytes(officer_client: FlaskClient, case: Case) -> None:
    location = create(officer_client, 10, case)
    patch(officer_client, location, 0, b"01234")
    upload = db.session.scalar(select(Upload))
    assert upload is not None and partial_path(upload).exists()
    assert officer_client.delete(location, headers=TUS).status_code == 204
    assert not partial_path(upload).exists()
    assert officer_client.head(location, headers=TUS).status_code == 410


def test_tus_upload_of_someone_else_is_not_found(
    app: Flask, officer_client: FlaskClient, case: Case, users: dict[Role, User]
) -> None:
    location = create(officer_client, 10, case)
    other = app.test_client()
    from tests.portal.conftest import sign_in

    sign_in(other, users[Role.DETECTIVE].email)
    assert other.head(location, headers=TUS).status_code == 404


def test_tus_needs_csrf_header(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.OFFICER])
    response = client.post("/staff/uploads/", headers={**TUS, "Upload-Length": "10"})
    assert response.status_code == 400


def test_tus_refused_for_roles_without_upload(
    client: FlaskClient, users: dict[Role, User], signed_in: Callable[[User], FlaskClient]
) -> None:
    signed_in(users[Role.COORDINATOR])
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client, "/staff/")
    response = client.post("/staff/uploads/", headers={**TUS, "Upload-Length": "10"})
    assert response.status_code == 403


def test_tus_case_of_another_officer_is_not_found(
    officer_client: FlaskClient, make_user: Callable[..., User], agency
) -> None:  # type: ignore[no-untyped-def]
    from portal.services.cases import create_case

    someone = make_user(Role.OFFICER)
    foreign = create_case(agency, number="X-1", title="Not mine", created_by=someone)
    db.session.commit()
    metadata = f"case {b64(foreign.public_id)}"
    response = officer_client.post(
        "/staff/uploads/", headers={**TUS, "Upload-Length": "10", "Upload-Metadata": metadata}
    )
    assert response.status_code == 404


def test_expired_uploads_are_cleaned_up(officer_client: FlaskClient, case: Case) -> None:
    create(officer_client, 10, case)
    upload = db.session.scalar(select(Upload))
    assert upload is not None
    db.session.execute(update(Upload).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert expire_uploads() == 1
    db.session.refresh(upload)
    assert upload.status == "expired" and not partial_path(upload).exists()


def test_tus_rolls_back_to_durable_offset_after_a_reboot(
    officer_client: FlaskClient, case: Case
) -> None:
    data = os.urandom(30_000)
    location = create(officer_client, len(data), case)
    patch(officer_client, location, 0, data[:10_000])
    upload = db.session.scalar(select(Upload))
    assert upload is not None and upload.offset == 10_000 and upload.durable_offset == 0
    # The machine restarted: bytes not yet fsynced may be gone.
    db.session.execute(update(Upload).values(boot_id="an-earlier-boot"))
    db.session.commit()
    assert officer_client.head(location, headers=TUS).headers["Upload-Offset"] == "0"
    assert partial_path(upload).stat().st_size == 0
    patch(officer_client, location, 0, data)
    db.session.refresh(upload)
    assert upload.status == "complete"
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_staged_upload_damaged_by_a_crash_is_detected(
    officer_client: FlaskClient, case: Case
) -> None:
    data = os.urandom(20_000)
    location = create(officer_client, len(data), case)
    patch(officer_client, location, 0, data)
    upload = db.session.scalar(select(Upload))
    assert upload is not None
    make_staged_file_durable(upload)  # same boot: fsync only
    # A reboot before the bytes reached the disk: zeros where video was.
    upload.boot_id = "an-earlier-boot"
    db.session.commit()
    with open(partial_path(upload), "r+b") as staged:
        staged.seek(10_000)
        staged.write(bytes(10_000))
    with pytest.raises(UploadDamaged, match="upload the file again"):
        make_staged_file_durable(upload)


# The staff page sends 50 MiB PATCH requests (case_detail.html, uploads.js); the app's
# form limit is 32 MiB.
PAGE_CHUNK = 50 * 1024 * 1024
FORM_LIMIT = 32 * 1024 * 1024


def test_tus_staff_patch_of_a_page_chunk_is_accepted(
    officer_client: FlaskClient, case: Case
) -> None:
    data = os.urandom(PAGE_CHUNK)
    location = create(officer_client, PAGE_CHUNK + 1000, case)
    response = patch(officer_client, location, 0, data)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.headers["Upload-Offset"] == str(PAGE_CHUNK)
    upload = db.session.scalar(select(Upload))
    assert upload is not None and partial_path(upload).stat().st_size == PAGE_CHUNK


def test_tus_staff_patch_csrf_token_is_never_read_from_the_body(
    client: FlaskClient,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
    case: Case,
) -> None:
    signed_in(users[Role.OFFICER])
    token = csrf_token(client, "/staff/")
    response = client.post(
        "/staff/uploads/",
        headers={**TUS, "Upload-Length": "10", "X-CSRFToken": token},
    )
    location = response.headers["Location"]
    # A token in a form body does not count for an upload endpoint: its body is the
    # file, never parsed as a form.
    response = client.patch(
        location,
        data={"csrf_token": token},
        headers={**TUS, "Upload-Offset": "0"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert client.head(location, headers=TUS).headers["Upload-Offset"] == "0"


def test_form_limit_still_applies_beside_the_upload_stream(officer_client: FlaskClient) -> None:
    response = officer_client.post(
        "/staff/uploads/",
        data=b"x" * (FORM_LIMIT + 1),
        headers={**TUS, "Upload-Length": "10", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


# Each of these passes str.isdigit() or int(), and none is a number of bytes in HTTP.
HOSTILE_NUMBERS = [
    "\u00b2",  # superscript two: isdigit() is true, int() raises
    "\u0661\u0662",  # Arabic-Indic "12": int() accepts it
    "\uff11\uff10",  # fullwidth "10"
    "+10",
    "1_0",
    "0x10",
    "1e3",
    "10.0",
    "12 34",
    "99999999999999999999",  # 20 digits: more than a signed 64-bit column holds
]


def _latin1(value: str) -> str:
    """A header as a hostile client's raw bytes arrive (UTF-8 read as Latin-1 by WSGI)."""
    return value.encode().decode("latin-1")


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_tus_hostile_upload_length_is_a_400_problem(
    officer_client: FlaskClient, value: str
) -> None:
    response = officer_client.post(
        "/staff/uploads/", headers={**TUS, "Upload-Length": _latin1(value)}
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == "Upload-Length"
    assert db.session.scalar(select(Upload)) is None


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_tus_hostile_upload_offset_is_a_400_problem(
    officer_client: FlaskClient, case: Case, value: str
) -> None:
    location = create(officer_client, 10, case)
    response = patch(
        officer_client, location, 0, b"0123456789", **{"Upload-Offset": _latin1(value)}
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["field"] == "Upload-Offset"
    assert officer_client.head(location, headers=TUS).headers["Upload-Offset"] == "0"


@pytest.mark.parametrize(
    "header",
    [
        "sha1",  # no digest
        "sha1 " + base64.b64encode(b"short").decode(),  # not 20 bytes
        "sha1 " + "!" * 28,  # not base64
        "SHA1 " + base64.b64encode(hashlib.sha1(b"0123456789").digest()).decode(),
    ],
)
def test_tus_malformed_checksum_is_a_400_problem(
    officer_client: FlaskClient, case: Case, header: str
) -> None:
    location = create(officer_client, 10, case)
    response = patch(officer_client, location, 0, b"0123456789", **{"Upload-Checksum": header})
    assert response.status_code == 400
    assert response.json["field"] == "Upload-Checksum"
    assert officer_client.head(location, headers=TUS).headers["Upload-Offset"] == "0"


@pytest.mark.parametrize(
    "metadata",
    [
        f"filename {b64('a.mp4')},filename {b64('b.mp4')}",  # the same key twice
        _latin1(f"f\u00eclename {b64('a.mp4')}"),  # a key that is not ASCII
        f"filename {b64('a.mp4')} extra",  # three parts
        f"filename {b64('a.mp4')},",  # an empty pair
        "filename " + base64.b64encode(b"\xff\xfe").decode(),  # not UTF-8
    ],
)
def test_tus_malformed_metadata_is_a_400_problem(
    officer_client: FlaskClient, metadata: str
) -> None:
    response = officer_client.post(
        "/staff/uploads/", headers={**TUS, "Upload-Length": "10", "Upload-Metadata": metadata}
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["field"] == "Upload-Metadata"


@pytest.mark.parametrize("key", ["case", "filetype"])
@pytest.mark.parametrize("value", ["\x00", "a\u202eb", "x\ny"])
def test_tus_metadata_text_is_checked_like_every_field(
    officer_client: FlaskClient, key: str, value: str
) -> None:
    # A NUL once reached PostgreSQL from here and answered 500.
    response = officer_client.post(
        "/staff/uploads/",
        headers={**TUS, "Upload-Length": "10", "Upload-Metadata": f"{key} {b64(value)}"},
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["field"] == "Upload-Metadata"
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_tus_deferred_length_is_refused_plainly(officer_client: FlaskClient) -> None:
    response = officer_client.post("/staff/uploads/", headers={**TUS, "Upload-Defer-Length": "1"})
    assert response.status_code == 400
    assert response.json["field"] == "Upload-Defer-Length"


def test_tus_head_of_an_expired_upload_is_gone_like_patch(
    officer_client: FlaskClient, case: Case
) -> None:
    location = create(officer_client, 10, case)
    patch(officer_client, location, 0, b"01234")
    db.session.execute(update(Upload).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    head = officer_client.head(location, headers=TUS)
    assert head.status_code == 410
    assert "Upload-Offset" not in head.headers
    assert patch(officer_client, location, 5, b"56789").status_code == 410


# The documented defaults (config/__init__.py, docs): per user, 20 unfinished uploads
# and 64 GiB declared by them; one file at most 8 GiB.
OPEN_UPLOADS = 20
OPEN_UPLOAD_BYTES = 64 * 1024**3
MAX_FILE = 8 * 1024**3
MIB = 1024**2


@pytest.fixture
def staging_filesystem(app: Flask, tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Put the app's store (and so its upload staging) on a fresh tmpfs of a size."""
    with ExitStack() as stack:

        def mount(size: str) -> Path:
            root = stack.enter_context(tmpfs(tmp_path / f"fs-{size}", size))
            settings = app.config["TATTLETALE"]
            app.config["TATTLETALE"] = replace(settings, storage_url=f"file://{root}/media")
            app.extensions.pop("tattletale.store", None)
            return root

        yield mount
        app.extensions.pop("tattletale.store", None)


def _try_create(client: FlaskClient, length: int):  # type: ignore[no-untyped-def]
    return client.post("/staff/uploads/", headers={**TUS, "Upload-Length": str(length)})


def test_tus_open_uploads_per_user_are_limited(
    app: Flask, officer_client: FlaskClient, case: Case, make_user: Callable[..., User]
) -> None:
    locations = [create(officer_client, 10, case) for _ in range(OPEN_UPLOADS)]
    refused = _try_create(officer_client, 10)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert f"at most {OPEN_UPLOADS} may be open" in refused.json["title"]
    assert db.session.scalar(select(func.count(Upload.id))) == OPEN_UPLOADS

    # Another user is not held back by this one's uploads.
    from tests.portal.conftest import sign_in

    other = app.test_client()
    sign_in(other, make_user(Role.OFFICER).email)
    other.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(other, "/staff/")
    assert _try_create(other, 10).status_code == 201

    # A finished upload and a cancelled one are no longer open.
    assert patch(officer_client, locations[0], 0, b"0123456789").status_code == 204
    assert officer_client.delete(locations[1], headers=TUS).status_code == 204
    assert _try_create(officer_client, 10).status_code == 201
    assert _try_create(officer_client, 10).status_code == 201
    assert _try_create(officer_client, 10).status_code == 429


def test_tus_declared_bytes_per_user_are_limited(
    officer_client: FlaskClient, staging_filesystem: Callable[[str], Path]
) -> None:
    staging_filesystem("100g")  # room for all of it: only the quota may refuse
    statuses = [_try_create(officer_client, MAX_FILE).status_code for _ in range(10)]
    assert statuses == [201] * (OPEN_UPLOAD_BYTES // MAX_FILE) + [429, 429]
    refused = _try_create(officer_client, 1)
    assert refused.status_code == 429
    assert "limit of 64.0 GiB" in refused.json["title"]


def test_tus_declared_length_beyond_free_staging_space_is_507(
    officer_client: FlaskClient, case: Case, staging_filesystem: Callable[[str], Path]
) -> None:
    root = staging_filesystem("8m")
    refused = _try_create(officer_client, 8 * MIB)
    assert refused.status_code == 507
    assert refused.mimetype == "application/problem+json"
    assert "no room for this file" in refused.json["title"]
    assert db.session.scalar(select(Upload)) is None
    assert not list(root.glob("media/.uploads/*.part"))

    first = create(officer_client, 4 * MIB, case)
    # The first upload's 4 MiB are promised, though none has arrived yet.
    assert _try_create(officer_client, 4 * MIB).status_code == 507
    assert patch(officer_client, first, 0, os.urandom(4 * MIB)).status_code == 204
    assert _try_create(officer_client, 4 * MIB).status_code == 507
    assert _try_create(officer_client, 3 * MIB).status_code == 201


@pytest.fixture
def live_address(app: Flask) -> Iterator[tuple[str, int]]:
    """The app served by werkzeug on a free port, for clients that use real sockets."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="upload-test-server")
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _request(address: tuple[str, int], method: str, path: str, headers: dict[str, str], body=b""):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)
def test_tus_client_that_hangs_up_mid_body_keeps_what_arrived(
    live_address: tuple[str, int], users: dict[Role, User], case: Case
) -> None:
    from portal.services.users import create_api_token

    _, token = create_api_token(users[Role.OFFICER])
    db.session.commit()
    auth = {"Authorization": f"Bearer {token}", **TUS}
    data = os.urandom(10 * MIB)
    status, headers, body = _request(
        live_address,
        "POST",
        "/api/v1/uploads",
        {**auth, "Upload-Length": str(len(data)), "Upload-Metadata": f"case {b64(case.public_id)}"},
    )
    assert status == 201, body
    path = headers["Location"]

    # A raw client announces the whole file, sends part of it, and closes its socket.
    sent = 5 * MIB + 12_345
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {live_address[0]}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in auth.items())
        + "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        + f"Content-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection(live_address, timeout=30) as raw:
        raw.sendall(head.encode() + data[:sent])

    # The server records the offset when it has read to the end of what arrived.
    offset = 0
    deadline = time.monotonic() + 20
    while offset == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        status, headers, _ = _request(live_address, "HEAD", path, auth)
        assert status == 200
        offset = int(headers["Upload-Offset"])
    assert offset == sent

    status, headers, body = _request(
        live_address,
        "PATCH",
        path,
        {
            **auth,
            "Upload-Offset": str(sent),
            "Content-Type": "application/offset+octet-stream",
        },
        data[sent:],
    )
    assert status == 204, body
    assert headers["Upload-Offset"] == str(len(data))
    db.session.expire_all()
    assert db.session.scalar(select(Upload.sha256)) == hashlib.sha256(data).hexdigest()


def test_tus_full_disk_is_507_and_the_upload_resumes_once_there_is_room(
    officer_client: FlaskClient, case: Case, staging_filesystem: Callable[[str], Path]
) -> None:
    root = staging_filesystem("8m")
    data = os.urandom(6 * MIB)
    location = create(officer_client, len(data), case)
    # Something else fills the disk after the upload was accepted.
    filler = root / "other-use.bin"
    filler.write_bytes(os.urandom(3 * MIB))

    response = patch(officer_client, location, 0, data)
    assert response.status_code == 507, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "ran out of room" in response.json["title"]
    head = officer_client.head(location, headers=TUS)
    assert head.status_code == 200
    offset = int(head.headers["Upload-Offset"])
    upload = db.session.scalar(select(Upload))
    assert upload is not None
    # What was written before the disk filled is kept, on disk, and nothing else.
    assert 0 < offset < len(data)
    assert upload.durable_offset == offset
    assert partial_path(upload).read_bytes() == data[:offset]

    filler.unlink()  # room again
    response = patch(officer_client, location, offset, data[offset:])
    assert response.status_code == 204, response.get_data(as_text=True)
    db.session.refresh(upload)
    assert upload.status == "complete"
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_tus_hostile_content_length_is_a_400_problem(
    live_address: tuple[str, int], users: dict[Role, User], case: Case, value: str
) -> None:
    # A raw request: the test client would correct the header. Werkzeug reads a
    # Content-Length that is not ASCII digits as 0, which would make this an empty
    # PATCH answered 204; it is refused instead.
    from portal.services.users import create_api_token

    _, token = create_api_token(users[Role.OFFICER])
    db.session.commit()
    auth = {"Authorization": f"Bearer {token}", **TUS}
    status, headers, _ = _request(
        live_address, "POST", "/api/v1/uploads", {**auth, "Upload-Length": "10"}
    )
    assert status == 201
    request = (
        f"PATCH {headers['Location']} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in auth.items())
        + "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        + f"Content-Length: {value}\r\n\r\n0123456789"
    )
    with socket.create_connection(live_address, timeout=30) as raw:
        raw.sendall(request.encode())
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"field":"Content-Length"' in answer.replace(b" ", b"")


def _staged_on_s3(app: Flask) -> tuple[list[str], list[str]]:
    """The bucket's multipart uploads and objects under the staging prefix."""
    import boto3

    settings = app.config["TATTLETALE"]
    bucket, prefix = settings.storage_url.removeprefix("s3://").split("/", 1)
    raw = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
    staged = f"{prefix}/uploads/"
    uploads = raw.list_multipart_uploads(Bucket=bucket, Prefix=staged).get("Uploads", [])
    objects = raw.list_objects_v2(Bucket=bucket, Prefix=staged).get("Contents", [])
    return [u["Key"] for u in uploads], [o["Key"] for o in objects]


@pytest.mark.parametrize("storage_location", ["s3"], indirect=True)
def test_tus_on_s3_termination_aborts_the_multipart_upload_and_removes_its_tail(
    app: Flask, officer_client: FlaskClient, case: Case
) -> None:
    location = create(officer_client, 20 * MIB, case)
    # 9 MiB: one 8 MiB part and a 1 MiB incomplete part.
    assert patch(officer_client, location, 0, os.urandom(9 * MIB)).status_code == 204
    uploads, objects = _staged_on_s3(app)
    assert len(uploads) == 1 and len(objects) == 1 and "/tail-" in objects[0]
    assert officer_client.delete(location, headers=TUS).status_code == 204
    assert _staged_on_s3(app) == ([], [])
    assert officer_client.head(location, headers=TUS).status_code == 410


@pytest.mark.parametrize("storage_location", ["s3"], indirect=True)
def test_tus_on_s3_expiry_sweep_aborts_stale_multipart_uploads(
    app: Flask, officer_client: FlaskClient, case: Case
) -> None:
    unfinished = create(officer_client, 20 * MIB, case)
    assert patch(officer_client, unfinished, 0, os.urandom(MIB)).status_code == 204
    finished = create(officer_client, MIB, case)
    assert patch(officer_client, finished, 0, os.urandom(MIB)).status_code == 204
    assert len(_staged_on_s3(app)[0]) == 2
    db.session.execute(update(Upload).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert expire_uploads() == 2
    db.session.commit()
    assert _staged_on_s3(app) == ([], [])
    assert officer_client.head(unfinished, headers=TUS).status_code == 410
