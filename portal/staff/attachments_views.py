"""Staff pages for a tip's photos and videos: the stripped derivative for viewing,
the original as evidence (every download audited), and a retry when processing
failed. Only staff who may handle the tip reach any of it; others get a 404."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.extensions import db
from portal.http.media import serve_object
from portal.models import AttachmentStatus
from portal.services.attachments import (
    ORIGINAL_TYPE,
    get_attachment_for,
    record_original_download,
    retry_attachment,
)
from portal.services.authz import Permission
from portal.services.errors import DomainError, NotFound
from portal.staff import bp
from portal.staff.authz import requires


@bp.route("/tips/<tip_id>/attachments/<attachment_id>/view")
@requires(Permission.TIP_TRIAGE)
def tip_attachment_view(tip_id: str, attachment_id: str) -> Response:
    try:
        row = get_attachment_for(current_user, tip_id, attachment_id)
    except NotFound:
        abort(404)
    if row.status != AttachmentStatus.READY.value or not row.derivative_key:
        abort(404)
    return serve_object(row.derivative_key, row.derivative_type, etag=row.derivative_sha256)


@bp.route("/tips/<tip_id>/attachments/<attachment_id>/original")
@requires(Permission.TIP_TRIAGE)
def tip_attachment_original(tip_id: str, attachment_id: str) -> Response:
    try:
        row = get_attachment_for(current_user, tip_id, attachment_id)
        record_original_download(row, current_user)
    except NotFound:
        abort(404)
    db.session.commit()
    assert row.tip is not None
    name = f"{row.tip.number}-{row.public_id}-original.{row.format or 'bin'}"
    return serve_object(row.original_key, ORIGINAL_TYPE, download_name=name, etag=row.sha256)


@bp.route("/tips/<tip_id>/attachments/<attachment_id>/retry", methods=["POST"])
@requires(Permission.TIP_TRIAGE)
def tip_attachment_retry(tip_id: str, attachment_id: str) -> Response:
    try:
        row = get_attachment_for(current_user, tip_id, attachment_id)
    except NotFound:
        abort(404)
    try:
        retry_attachment(row, current_user)
        db.session.commit()
        flash("The file is being processed again.", "info")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("staff.tip_detail", tip_id=tip_id))
