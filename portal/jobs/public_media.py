"""Keeping published appeals' copies on the public media origin in line."""

from __future__ import annotations

from portal.extensions import db
from portal.jobs.registry import JobContext, job
from portal.services.appeals import sync_public_media


@job("appeals.public_media", subject=("appeal", "appeal_id"))
def sync_appeal_public_media(ctx: JobContext, appeal_id: int) -> None:
    """Copy or remove the appeal's public renditions to match its state now."""
    sync_public_media(appeal_id)
    ctx.confirm()
    db.session.commit()
