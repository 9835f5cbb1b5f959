"""The whole footage flow through the portal's own endpoints, on the local store and on
S3 (moto's server on loopback): tus upload, ingest, proxy, render, evidence check,
original download and playback with Range. Nothing may be left behind."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from portal.extensions import db
from portal.models import Case, Clip, Role, User
from portal.services.storage import get_store, work_dir
from tests.portal.conftest import csrf_token, run_jobs, sign_in

pytestmark = pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 64 * 1024


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tus_upload(client: FlaskClient, case: Case, data: bytes) -> str:
    """Upload ``data`` in several PATCH requests, as a browser's tus client does."""
    created = client.post(
        "/staff/uploads/",
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"filename {_b64('doorbell.mp4')},case {_b64(case.public_id)}",
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    for offset in range(0, len(data), CHUNK):
        response = client.patch(
            location,
            data=data[offset : offset + CHUNK],
            headers={
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert response.status_code == 204, response.get_data(as_text=True)
    return location.rstrip("/").rsplit("/", 1)[-1]


def leftovers(app: Flask) -> list[str]:
    """Staged parts, work files and unfinished multipart uploads still around."""
    settings = app.config["TATTLETALE"]
    staged = Path(settings.storage_url.removeprefix("file://")) / ".uploads"
    found = [str(p) for p in staged.iterdir()] if staged.is_dir() else []
    found += [str(p) for p in Path(work_dir()).iterdir()]
    found += list(get_store().iter_keys("uploads/"))
    if settings.storage_url.startswith("s3://"):
        bucket = settings.storage_url.removeprefix("s3://").split("/", 1)[0]
        raw = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
        found += [u["Key"] for u in raw.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return found


def test_footage_flow_from_tus_upload_to_playback_leaves_nothing_behind(
    app: Flask,
    client: FlaskClient,
    cli: FlaskCliRunner,
    users: dict[Role, User],
    case: Case,
    sample_clip: Path,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    data = sample_clip.read_bytes()
    signed_in(users[Role.OFFICER])
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client, "/staff/")
    upload_id = tus_upload(client, case, data)
    attached = client.post(f"/staff/cases/{case.public_id}/clips", json={"upload_id": upload_id})
    assert attached.status_code == 201, attached.get_data(as_text=True)
    assert run_jobs() == ["succeeded"] * 3  # ingest, proxy, render version 1

    clip = db.session.query(Clip).one()
    assert clip.status == "ready"
    assert clip.original_sha256 == hashlib.sha256(data).hexdigest()
    store = get_store()
    assert store.exists(clip.original_key) and store.exists(clip.proxy_key)

    # The detective downloads the original: the very bytes uploaded, from the portal.
    client = app.test_client()
    sign_in(client, users[Role.DETECTIVE].email)
    original = client.get(f"/staff/clips/{clip.public_id}/original")
    assert original.status_code == 200 and original.data == data
    assert original.headers["Content-Disposition"].startswith("attachment;")
    assert original.headers["Cache-Control"] == "private, no-store"

    # Playback seeks with Range, on the proxy and on a rendition.
    proxy = client.get(f"/staff/clips/{clip.public_id}/proxy.mp4", headers={"Range": "bytes=0-"})
    assert proxy.status_code == 206 and proxy.headers["Content-Range"].startswith("bytes 0-")
    with store.open(clip.proxy_key) as stored:
        assert hashlib.sha256(proxy.data).hexdigest() == hashlib.sha256(stored.read()).hexdigest()
    version = clip.versions[0]
    web = next(r for r in version.renditions if r.role == "video")
    url = f"/staff/versions/{version.public_id}/media/{web.name}"
    whole = client.get(url)
    assert whole.status_code == 200 and hashlib.sha256(whole.data).hexdigest() == web.sha256
    middle = client.get(url, headers={"Range": f"bytes={web.size // 2}-{web.size // 2 + 999}"})
    assert middle.status_code == 206 and middle.data == whole.data[web.size // 2 :][:1000]
    assert middle.headers["Cache-Control"] == "private, no-store"
    for response in (original, proxy, whole, middle):
        assert "Location" not in response.headers

    verified = cli.invoke(args=["evidence", "verify", case.number])
    assert verified.exit_code == 0, verified.output
    assert " 0 problems" in verified.output

    assert leftovers(app) == []
