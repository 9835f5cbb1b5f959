"""Serving stored evidence objects to signed-in staff and API clients."""

from __future__ import annotations

from flask import abort, redirect, send_file
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from media_pipeline import LocalStore, ObjectNotFound, content_disposition
from portal.extensions import db
from portal.models import ClipVersion, Rendition
from portal.services.storage import get_store
from portal.services.text import replace_refused

STAFF_CACHE = "private, no-store"
# Published media: a CDN or reverse proxy may keep it for a few minutes (a viral
# appeal's spike), and revalidates by ETag after that; a withdrawn appeal is gone
# from caches within that time.
PUBLIC_CACHE = "public, max-age=300"


def serve_object(
    key: str,
    content_type: str,
    *,
    download_name: str | None = None,
    cache_control: str = STAFF_CACHE,
    etag: str | None = None,
) -> BaseResponse:
    """Serve a stored object. Local store: from disk with Range support (video
    seeking). S3: a redirect to a short-lived presigned URL."""
    if download_name is not None:
        # The name is made of stored text (a case number) that may predate the text
        # rules: CR/LF would split the header, a lone surrogate cannot be encoded.
        # Whatever is stored, only what the rules accept reaches a header.
        download_name = replace_refused(download_name, "_")
    store = get_store()
    disposition = content_disposition(download_name) if download_name else None
    if isinstance(store, LocalStore):
        try:
            path = store.local_path(key)
        except ObjectNotFound:
            abort(404)
        response: BaseResponse = send_file(
            path,
            mimetype=content_type,
            as_attachment=download_name is not None,
            download_name=download_name,
            conditional=True,
            etag=etag if etag is not None else True,
            max_age=0,
        )
        if disposition:
            response.headers["Content-Disposition"] = disposition
    else:
        url = store.url(key, expires=300, disposition=disposition)
        if url is None:
            abort(404)
        response = redirect(url)
    response.headers["Cache-Control"] = cache_control
    return response


def serve_rendition(version: ClipVersion, name: str) -> BaseResponse:
    rendition = db.session.scalar(
        select(Rendition).where(Rendition.version_id == version.id, Rendition.name == name)
    )
    if rendition is None:
        abort(404)
    return serve_object(rendition.storage_key, rendition.content_type)


def serve_published_rendition(rendition: Rendition) -> BaseResponse:
    """A rendition of a published appeal, for anyone: cacheable, validated by its
    SHA-256 (which never changes for a stored rendition)."""
    return serve_object(
        rendition.storage_key,
        rendition.content_type,
        cache_control=PUBLIC_CACHE,
        etag=rendition.sha256,
    )
