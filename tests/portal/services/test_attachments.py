"""The attachment service's guarantees that no form shows: a draft a tip has taken is
never removed for room, and failed files' bytes still count against the quota."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import Agency, AttachmentStatus, TipAttachment
from portal.services import attachments
from portal.services.attachments import new_draft_secret, pending_bytes, take_drafts
from portal.services.tips import TipInput, submit_tip


def staged_draft(agency: Agency, secret: str, size: int = 1000) -> TipAttachment:
    row = TipAttachment(
        agency_id=agency.id,
        draft_hash=attachments.draft_hash(secret),
        status=AttachmentStatus.DRAFT.value,
        format="jpeg",
        kind="image",
        size=size,
    )
    db.session.add(row)
    db.session.flush()
    attachments.staging_path(row.public_id).write_bytes(b"\xff\xd8\xff" + b"\0" * (size - 3))
    db.session.commit()
    return row


def test_a_draft_taken_by_a_tip_is_not_removed_for_room(app: Flask, agency: Agency) -> None:
    secret = new_draft_secret()
    stale = staged_draft(agency, secret)  # what a concurrent eviction pass holds
    public_id = stale.public_id
    tip, _ = submit_tip(TipInput(body="It is my neighbour."), agency=agency)
    # The tip takes it in one statement, as if in another session.
    db.session.execute(
        sa.update(TipAttachment).where(TipAttachment.id == stale.id).values(tip_id=tip.id)
    )
    db.session.commit()
    attachments._remove_draft(stale)
    db.session.commit()
    row = db.session.scalar(sa.select(TipAttachment).where(TipAttachment.public_id == public_id))
    assert row is not None and row.tip_id == tip.id
    assert attachments.staging_path(public_id).exists()


def test_take_drafts_is_single_use_and_counts_the_quota(app: Flask, agency: Agency) -> None:
    secret = new_draft_secret()
    staged_draft(agency, secret, size=1000)
    staged_draft(agency, secret, size=2000)
    assert pending_bytes() == 3000
    tip, _ = submit_tip(TipInput(body="It is my neighbour."), agency=agency)
    assert [r.status for r in take_drafts(tip, secret)] == ["queued", "queued"]
    assert take_drafts(tip, secret) == []  # the secret takes nothing twice
    db.session.commit()
    first, second = db.session.scalars(sa.select(TipAttachment).order_by(TipAttachment.id))
    first.status = AttachmentStatus.FAILED.value  # its bytes wait on disk for a retry
    second.status = AttachmentStatus.READY.value
    second.original_key = "tips/x/attachments/y/original"  # moved into the store
    db.session.commit()
    assert pending_bytes() == 1000
