"""Serving stored evidence objects to signed-in staff and API clients.

Every object is served by the portal itself, from either store, with byte ranges (a
video player seeks with them) and conditional requests. The browser is never sent to
the bucket: a presigned URL would make the page fetch from another host, and the
bucket's address, lifetime and logs are not the portal's to hand out.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from flask import abort, current_app, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from media_pipeline import (
    LocalStore,
    ObjectNotFound,
    ObjectStat,
    content_disposition,
    validate_key,
)
from portal.extensions import db
from portal.models import ClipVersion, Rendition
from portal.services.public_media import copy_url, public_media_base
from portal.services.storage import get_store
from portal.services.text import replace_refused

STAFF_CACHE = "private, no-store"
# Published media: a CDN or reverse proxy may keep it for a few minutes (a viral
# appeal's spike), and revalidates by ETag after that; a withdrawn appeal is gone
# from caches within that time.
PUBLIC_CACHE = "public, max-age=300"

#: Read size when the body is copied through Python (S3, or a server without
#: sendfile): large enough for few round trips, small enough that many concurrent
#: video streams stay at a few hundred KiB of memory each.
CHUNK_BYTES = 256 * 1024


def _seconds(moment: datetime) -> datetime:
    # HTTP dates have one-second resolution; compare at that resolution.
    return moment.replace(microsecond=0)


def _precondition_status(stat: ObjectStat) -> int | None:
    """304 or 412 when the request's validators say so (RFC 9110 section 13.2.2)."""
    if request.if_match:
        if not (request.if_match.star_tag or request.if_match.contains(stat.etag)):
            return 412
    elif (
        request.if_unmodified_since is not None
        and _seconds(stat.last_modified) > request.if_unmodified_since
    ):
        return 412
    safe = request.method in ("GET", "HEAD")
    if request.if_none_match:
        if request.if_none_match.star_tag or request.if_none_match.contains_weak(stat.etag):
            return 304 if safe else 412
    elif (
        safe
        and request.if_modified_since is not None
        and _seconds(stat.last_modified) <= request.if_modified_since
    ):
        return 304
    return None


def _range_applies(stat: ObjectStat) -> bool:
    """A Range is honoured unless If-Range names another version of the object."""
    if "Range" not in request.headers:
        return False
    if_range = request.if_range
    if if_range.etag is not None:
        return if_range.etag == stat.etag
    if if_range.date is not None:
        return if_range.date == _seconds(stat.last_modified)
    return True


def serve_object(
    key: str,
    content_type: str,
    *,
    download_name: str | None = None,
    cache_control: str = STAFF_CACHE,
    etag: str | None = None,
) -> Response:
    """Serve a stored object from either store, with Range and conditional requests.

    By default, as staff evidence: never kept by the browser or a proxy. Published
    renditions may pass a cacheable ``cache_control``; the validators make revalidation
    cheap either way.
    """
    store = get_store()
    try:
        stat = store.stat(key)
    except ObjectNotFound:
        abort(404)
    if etag is not None:
        # A validator that is the same on every store and every node: the content hash.
        stat = dataclasses.replace(stat, etag=etag)
    if download_name is not None:
        # The name is made of stored text (a case number) that may predate the text
        # rules: CR/LF would split the header, a lone surrogate cannot be encoded.
        # Whatever is stored, only what the rules accept reaches a header.
        download_name = replace_refused(download_name, "_")
    response = Response(mimetype=content_type, direct_passthrough=True)
    response.headers["Cache-Control"] = cache_control
    response.set_etag(stat.etag)
    response.last_modified = stat.last_modified
    response.accept_ranges = "bytes"
    if download_name:
        response.headers["Content-Disposition"] = content_disposition(download_name)

    status = _precondition_status(stat)
    if status is not None:
        response.status_code = status
        return response

    start, end = 0, stat.size
    if _range_applies(stat):
        byte_range = request.range
        # A range that cannot be parsed or satisfied, or several ranges (we do not
        # send multipart/byteranges): 416 with the length, so the client can retry.
        span = byte_range.range_for_length(stat.size) if byte_range else None
        if byte_range is None or span is None:
            response.status_code = 416
            response.headers["Content-Range"] = f"bytes */{stat.size}"
            response.content_length = 0
            return response
        start, end = span
        response.status_code = 206
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{stat.size}"

    response.content_length = end - start
    if request.method == "HEAD":
        return response
    stream = store.open_range(key, start, end)
    # wsgi.file_wrapper where the server has one: sendfile for local files.
    response.response = wrap_file(request.environ, stream, buffer_size=CHUNK_BYTES)
    return response


def serve_rendition(version: ClipVersion, name: str) -> Response:
    rendition = db.session.scalar(
        select(Rendition).where(Rendition.version_id == version.id, Rendition.name == name)
    )
    if rendition is None:
        abort(404)
    return serve_object(rendition.storage_key, rendition.content_type)


def _offloaded(key: str) -> Response | None:
    """The answer that hands the file to the front proxy (TATTLETALE_MEDIA_OFFLOAD),
    or None when the portal sends it itself.

    Only for the local store, whose files the proxy can read: nginx serves an
    ``internal`` location (X-Accel-Redirect) and Apache or lighttpd a path (X-Sendfile),
    with Range, from the file; the worker is free again as soon as the headers are
    out, however long the viewer watches. The portal has already checked that the
    rendition is public and answered the conditional request (304) itself.
    """
    settings = current_app.config["TATTLETALE"]
    store = get_store()
    if not settings.media_offload or not isinstance(store, LocalStore):
        return None
    key = validate_key(key)
    response = Response(status=200)
    if settings.media_offload == "x-accel-redirect":
        response.headers["X-Accel-Redirect"] = settings.media_offload_prefix + quote(key)
    else:
        response.headers["X-Sendfile"] = os.path.join(store.root, *key.split("/"))
    return response


@dataclass(frozen=True)
class PublishedMedia:
    """What serving a published rendition needs of it: plain values, so the public
    site can keep them with the appeal's pages (portal/services/public_cache.py) and
    answer each Range request of a viewer without loading the appeal again."""

    storage_key: str
    content_type: str
    sha256: str

    @classmethod
    def of(cls, rendition: Rendition) -> PublishedMedia:
        return cls(rendition.storage_key, rendition.content_type, rendition.sha256)


def serve_published_rendition(rendition: PublishedMedia) -> Response:
    """A rendition of a published appeal, for anyone: cacheable, validated by its
    SHA-256 (which never changes for a stored rendition)."""
    response = serve_object(
        rendition.storage_key,
        rendition.content_type,
        cache_control=PUBLIC_CACHE,
        etag=rendition.sha256,
    )
    if response.status_code not in (200, 206) or request.method == "HEAD":
        return response  # 304, 412, 416: answered here, nothing to send
    offloaded = _offloaded(rendition.storage_key)
    if offloaded is None:
        return response
    response.close()  # the stream serve_object opened is not read
    # The proxy keeps these from the portal's answer and adds Range, length and body.
    for name in ("Content-Type", "Cache-Control", "ETag", "Last-Modified", "Accept-Ranges"):
        offloaded.headers[name] = response.headers[name]
    return offloaded


def published_media_url(appeal_id: str, rendition: Rendition, *, copied: bool = False) -> str:
    """Where a viewer fetches a published rendition: its copy on the public media
    origin once it is there, the portal's own route otherwise."""
    if copied and public_media_base():
        return copy_url(appeal_id, rendition)
    return url_for(
        "public.appeal_media",
        appeal_id=appeal_id,
        version_id=rendition.version.public_id,
        name=rendition.name,
    )
