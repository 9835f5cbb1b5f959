"""Serving stored objects (portal/http/media.py) from both stores: Range, validators,
conditional requests, and never a redirect to the bucket."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest
from flask import Flask
from werkzeug.http import http_date
from werkzeug.wrappers import Response

from portal.http.media import serve_object
from portal.services.storage import get_store

pytestmark = pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)

KEY = "cases/c1/clips/k1/proxy.mp4"
SIZE = 300_000


@pytest.fixture
def data(app: Flask) -> bytes:
    content = os.urandom(SIZE)
    get_store().put_stream(KEY, io.BytesIO(content), "video/mp4")
    return content


def fetch(
    app: Flask, headers: dict[str, str] | None = None, method: str = "GET", **kwargs: str
) -> tuple[Response, bytes]:
    with app.test_request_context("/media", method=method, headers=headers or {}):
        response = serve_object(KEY, "video/mp4", **kwargs)
        body = b"".join(response.response)  # type: ignore[arg-type]
        response.close()
    return response, body


def test_serve_object_whole_object_with_validators(app: Flask, data: bytes) -> None:
    response, body = fetch(app)
    assert response.status_code == 200 and body == data
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["ETag"].startswith('"') and response.headers["Last-Modified"]
    assert response.mimetype == "video/mp4"
    assert "Location" not in response.headers  # served here, never sent to the bucket


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=1000-", 1000, SIZE),
        ("bytes=-500", SIZE - 500, SIZE),
        ("bytes=299999-299999", SIZE - 1, SIZE),
        ("bytes=250000-999999", 250_000, SIZE),  # clipped to the end, as RFC 9110 says
    ],
)
def test_serve_object_range_is_206_with_exactly_those_bytes(
    app: Flask, data: bytes, header: str, start: int, end: int
) -> None:
    response, body = fetch(app, {"Range": header})
    assert response.status_code == 206
    assert body == data[start:end]
    assert response.headers["Content-Length"] == str(end - start)
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{SIZE}"


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=400000-500000", "bytes=0-1,5-9"])
def test_serve_object_unsatisfiable_range_is_416_with_the_length(
    app: Flask, data: bytes, header: str
) -> None:
    response, body = fetch(app, {"Range": header})
    assert response.status_code == 416 and body == b""
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert response.headers["Cache-Control"] == "private, no-store"


def test_serve_object_conditional_requests(app: Flask, data: bytes) -> None:
    first, _ = fetch(app)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert fetch(app, {"If-None-Match": etag})[0].status_code == 304
    assert fetch(app, {"If-None-Match": '"other"'})[0].status_code == 200
    assert fetch(app, {"If-Modified-Since": modified})[0].status_code == 304
    assert fetch(app, {"If-Match": '"other"'})[0].status_code == 412
    assert fetch(app, {"If-Match": etag})[0].status_code == 200
    earlier = http_date(first.last_modified - timedelta(days=1))  # type: ignore[operator]
    assert fetch(app, {"If-Unmodified-Since": earlier})[0].status_code == 412
    not_modified, body = fetch(app, {"If-None-Match": etag})
    assert body == b"" and "Content-Range" not in not_modified.headers


def test_serve_object_if_range_of_another_version_sends_the_whole_object(
    app: Flask, data: bytes
) -> None:
    etag = fetch(app)[0].headers["ETag"]
    resumed, body = fetch(app, {"Range": "bytes=100-199", "If-Range": etag})
    assert resumed.status_code == 206 and body == data[100:200]
    changed, body = fetch(app, {"Range": "bytes=100-199", "If-Range": '"older-version"'})
    assert changed.status_code == 200 and body == data


def test_serve_object_head_sends_headers_only(app: Flask, data: bytes) -> None:
    response, body = fetch(app, method="HEAD")
    assert response.status_code == 200 and body == b""
    assert response.headers["Content-Length"] == str(SIZE)


def test_serve_object_download_is_an_attachment(app: Flask, data: bytes) -> None:
    response, body = fetch(app, download_name="24-0001 night «cam».mp4")
    assert body == data
    assert response.headers["Content-Disposition"].startswith(
        "attachment; filename=\"24-0001_night__cam_.mp4\"; filename*=UTF-8''"
    )


def test_serve_object_missing_object_is_404(app: Flask) -> None:
    from werkzeug.exceptions import NotFound

    with app.test_request_context("/media"), pytest.raises(NotFound):
        serve_object("cases/none/original", "video/mp4")


def test_serve_object_published_media_may_be_cacheable(app: Flask, data: bytes) -> None:
    response, body = fetch(app, {"Range": "bytes=0-9"}, cache_control="public, max-age=300")
    assert response.status_code == 206 and body == data[:10]
    assert response.headers["Cache-Control"] == "public, max-age=300"
