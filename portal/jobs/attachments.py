"""The job that turns a tip's attachment into its stripped derivative, and the sweep
of drafts nobody sent.

A refused file is not a failed job: the attachment says why, and the tipster sees it.
An ffmpeg or storage failure is retried like any job; when the job gives up, the
attachment is marked failed with the error, its staged bytes kept, and staff may
retry it from the tip's page.
"""

from __future__ import annotations

from portal.extensions import db
from portal.jobs.errors import PermanentJobError
from portal.jobs.periodic import periodic
from portal.jobs.registry import JobContext, job
from portal.models import Job, TipAttachment
from portal.services.attachments import fail_attachment, process_attachment, sweep_drafts


def _fail(row: Job, reason: str) -> None:
    attachment = db.session.get(TipAttachment, row.subject_id)
    if attachment is not None:
        fail_attachment(attachment, f"Processing failed: {reason}")


@job("tips.attachment", subject=("tip_attachment", "attachment_id"), on_failure=_fail)
def process_tip_attachment(ctx: JobContext, attachment_id: int) -> None:
    attachment = db.session.get(TipAttachment, attachment_id)
    if attachment is None:
        raise PermanentJobError(f"tip attachment {attachment_id} does not exist")
    ctx.report(0.05, "processing")
    process_attachment(
        attachment, heartbeat=lambda fraction: ctx.report(0.05 + fraction * 0.9, "processing")
    )
    ctx.confirm()
    db.session.commit()


@periodic("tips.attachments.sweep", every_s=900)
def sweep_tip_drafts() -> None:
    """Drafts never sent within their lifetime, and staged parts nothing claims."""
    sweep_drafts()
    db.session.commit()
