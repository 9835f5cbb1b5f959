"""Agency settings that staff features use: the watermark logo."""

from __future__ import annotations

import os

from media_pipeline import Rejected
from media_pipeline.probe import probe_image
from portal.extensions import db
from portal.models import Agency, User
from portal.services.audit import record_event
from portal.services.errors import ValidationFailed
from portal.services.storage import get_store

WATERMARK_PREFIX = "store:"


def set_watermark(agency: Agency, path: str | os.PathLike[str], *, actor: User | None) -> str:
    """Store the agency's logo (PNG or JPEG, checked by content like any upload)."""
    try:
        image = probe_image(path)
    except Rejected as exc:
        raise ValidationFailed(f"Not a usable logo: {exc.reason}", field="watermark") from None
    content_type = "image/png" if image.container.startswith("png") else "image/jpeg"
    key = f"agencies/{agency.public_id}/watermark"
    stored = get_store().put_file(key, path, content_type)
    agency.watermark_key = key
    record_event(
        "agency.watermark",
        agency_id=agency.id,
        actor=actor,
        object_type="agency",
        object_id=agency.public_id,
        details={"sha256": stored.sha256, "size": stored.size},
    )
    db.session.flush()
    return key


def watermark_reference(agency: Agency) -> str | None:
    """What an edit plan records for the agency logo: a store key, resolved to a local
    file by the render job on whichever machine runs it."""
    return WATERMARK_PREFIX + agency.watermark_key if agency.watermark_key else None
