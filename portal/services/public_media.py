"""Published renditions on a public media origin of the agency's own domain.

At scale the portal should not send every viewer of a viral appeal its video: with
``TATTLETALE_PUBLIC_MEDIA_URL`` set, an appeal's public renditions (web videos and
poster, never anything else) are copied on publish to ``TATTLETALE_PUBLIC_MEDIA_PREFIX``
of the store, which that origin (a CDN or a bucket behind it, on the agency's
domain: a public page still contacts no third party) serves. Withdrawing the appeal,
or revoking an approval it shows, removes the copies. Until a clip's copy is made
the page keeps playing it from the portal, so publishing never shows a broken player.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from urllib.parse import urlsplit

from flask import current_app

from portal.jobs.registry import enqueue
from portal.models import Appeal, Rendition
from portal.services.storage import get_store


def public_media_base() -> str:
    """The origin (and path) published copies are fetched from; "" when unset."""
    base: str = current_app.config["TATTLETALE"].public_media_url
    return base


def public_media_origin(base: str) -> str:
    """``scheme://host[:port]`` of the base URL: what the CSP must allow."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def appeal_prefix(appeal_id: str) -> str:
    return f"{current_app.config['TATTLETALE'].public_media_prefix}/{appeal_id}/"


def copy_path(appeal_id: str, rendition: Rendition) -> str:
    """The copy's path under the prefix. The stored file's extension is kept: a
    bucket or a static server names the content type by it."""
    extension = posixpath.splitext(rendition.storage_key)[1]
    return f"{appeal_id}/{rendition.version.public_id}/{rendition.name}{extension}"


def copy_url(appeal_id: str, rendition: Rendition) -> str:
    return f"{public_media_base()}/{copy_path(appeal_id, rendition)}"


def schedule_public_media_sync(appeal: Appeal) -> None:
    """After the transaction commits, bring the appeal's public copies in line with
    what it shows now (nothing, once it is not published)."""
    if not public_media_base():
        return
    enqueue("appeals.public_media", appeal_id=appeal.id)


def sync_copies(appeal_id: str, wanted: Mapping[str, Rendition]) -> None:
    """Make the store's copies under the appeal's prefix exactly ``wanted`` (copy
    path -> rendition): copy what is missing, remove the rest. Safe to run twice."""
    store = get_store()
    prefix = appeal_prefix(appeal_id)
    root = current_app.config["TATTLETALE"].public_media_prefix
    keep = {f"{root}/{path}" for path in wanted}
    for key in list(store.iter_keys(prefix)):
        if key not in keep:
            store.delete(key)
    for path, rendition in wanted.items():
        key = f"{root}/{path}"
        if store.exists(key):
            continue
        with store.open(rendition.storage_key) as source:
            store.put_stream(key, source, rendition.content_type)
