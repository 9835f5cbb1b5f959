"""Staff pages and endpoints for footage: upload (tus), clip page, status, media,
edit versions, approval, evidence record and original download."""

from __future__ import annotations

import json

from flask import (
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from portal.extensions import db
from portal.http import tus
from portal.http.bodies import streams_body
from portal.http.edge import problem
from portal.http.media import serve_object, serve_rendition
from portal.models import AuditEvent, Clip, ClipVersion
from portal.services.agencies import watermark_reference
from portal.services.authz import Permission, can
from portal.services.cases import get_case_for
from portal.services.clips import (
    APPROVAL_CHECKLIST,
    approval_is_intact,
    approve_version,
    attach_upload,
    create_version,
    get_clip_for,
    get_version_for,
    plan_from_request,
    record_evidence_access,
    retry_clip,
    revoke_approval,
)
from portal.services.errors import DomainError, ValidationFailed
from portal.services.evidence import delete_clip
from portal.services.proposals import (
    get_proposal_for,
    latest_faces,
    proposal_json,
    request_faces,
    request_follow,
)
from portal.staff import bp
from portal.staff.authz import requires
from portal.staff.forms import (
    DELETION_REASON_MISSING,
    REVOKE_REASON_MISSING,
    ApprovalForm,
    DeleteEvidenceForm,
    RetryForm,
    RevokeForm,
)
from portal.staff.presenters import (
    approve_url,
    clip_status,
    rendition_url,
    revoke_url,
)


@bp.app_template_global("rendition_url")
def _rendition_url(version: ClipVersion, name: str) -> str:
    return rendition_url(version, name)


@bp.app_template_global("approve_url")
def _approve_url(version: ClipVersion) -> str:
    return approve_url(version)


@bp.app_template_global("revoke_url")
def _revoke_url(version: ClipVersion) -> str:
    return revoke_url(version)


def _problem(error: DomainError) -> Response:
    extra = {"field": error.field} if error.field else {}
    return problem(error.status, error.message, **extra)


# -- tus uploads (session + X-CSRFToken) ----------------------------------------------


@bp.route("/uploads/", methods=["OPTIONS"], endpoint="tus_options")
def tus_options():
    return tus.options()


@bp.route("/uploads/", methods=["POST"], endpoint="tus_create")
@requires(Permission.CLIP_UPLOAD)
def tus_create():
    return tus.create(current_user, "staff.tus_upload")


@bp.route("/uploads/<upload_id>", methods=["HEAD", "PATCH", "DELETE"], endpoint="tus_upload")
@streams_body(["PATCH"])
@requires(Permission.CLIP_UPLOAD)
def tus_upload(upload_id: str):
    if request.method == "PATCH":
        return tus.patch(current_user, upload_id)
    if request.method == "DELETE":
        return tus.delete(current_user, upload_id)
    return tus.head(current_user, upload_id)


@bp.route("/cases/<case_id>/clips", methods=["POST"])
@requires(Permission.CLIP_UPLOAD)
def clip_attach(case_id: str):
    payload = request.get_json(silent=True) or {}
    upload_id = payload.get("upload_id") if isinstance(payload, dict) else None
    try:
        case = get_case_for(current_user, case_id)
        if not isinstance(upload_id, str) or not upload_id:
            raise ValidationFailed("Send the finished upload's id.", field="upload_id")
        clip = attach_upload(case, upload_id, current_user)
    except DomainError as exc:
        return _problem(exc)
    url = url_for("staff.clip_detail", clip_id=clip.public_id)
    return jsonify(clip={"id": clip.public_id, "url": url, "status": clip.status}), 201


# -- the clip page ------------------------------------------------------------------


def _timeline_sprite(clip: Clip) -> dict[str, str | None]:
    """Version 1's sprite sheet and its WebVTT index, for the studio's timeline of
    thumbnails: version 1 renders the whole unedited source, so its thumbnails sit
    on the source timeline the studio edits (later versions are trimmed)."""
    first = clip.versions[0] if clip.versions else None
    names = {r.name for r in first.renditions} if first and first.status == "ready" else set()
    if first is None or not {"sprite", "sprite_index"} <= names:
        return {"sprite": None, "sprite_index": None}
    return {
        "sprite": rendition_url(first, "sprite"),
        "sprite_index": rendition_url(first, "sprite_index"),
    }


def _clip_urls(clip: Clip) -> dict[str, str | None]:
    can_edit = can(current_user, Permission.CLIP_EDIT, clip.case)
    return {
        **_timeline_sprite(clip),
        "status": url_for("staff.clip_status_json", clip_id=clip.public_id),
        "proxy": url_for("staff.clip_proxy", clip_id=clip.public_id) if clip.proxy_key else None,
        "save_version": url_for("staff.version_create", clip_id=clip.public_id),
        "evidence": url_for("staff.clip_evidence", clip_id=clip.public_id),
        "download_original": (
            url_for("staff.clip_original", clip_id=clip.public_id)
            if clip.original_key and can(current_user, Permission.EVIDENCE_DOWNLOAD, clip.case)
            else None
        ),
        "retry": url_for("staff.clip_retry", clip_id=clip.public_id) if can_edit else None,
        "proposals": (
            url_for("staff.proposal_create", clip_id=clip.public_id) if can_edit else None
        ),
    }


def _latest_faces_url(clip: Clip) -> str | None:
    """The newest face search on the clip, shown again in the studio after a reload."""
    if not can(current_user, Permission.CLIP_EDIT, clip.case):
        return None
    proposal = latest_faces(clip)
    return url_for("staff.proposal_status", proposal_id=proposal.public_id) if proposal else None


@bp.route("/clips/<clip_id>")
@requires(Permission.CASE_VIEW)
def clip_detail(clip_id: str):
    clip = get_clip_for(current_user, clip_id)
    record_evidence_access(clip, current_user, "evidence.view")
    return render_template(
        "staff/clip_detail.html",
        clip=clip,
        case=clip.case,
        versions=list(reversed(clip.versions)),
        urls=_clip_urls(clip),
        faces_url=_latest_faces_url(clip),
        can_edit=can(current_user, Permission.CLIP_EDIT, clip.case),
        can_approve=can(current_user, Permission.VERSION_APPROVE, clip.case),
        approval_form=ApprovalForm(formdata=None),
        revoke_form=RevokeForm(formdata=None),
        retry_form=RetryForm(formdata=None),
        checklist=APPROVAL_CHECKLIST,
        approval_is_intact=approval_is_intact,
        tip_url=url_for("public.index", _external=True),
        watermark_available=bool(clip.case.agency.watermark_key),
    )


@bp.route("/clips/<clip_id>/status.json")
@requires(Permission.CASE_VIEW)
def clip_status_json(clip_id: str):
    clip = get_clip_for(current_user, clip_id)
    proxy = url_for("staff.clip_proxy", clip_id=clip.public_id) if clip.proxy_key else None
    return jsonify(clip_status(clip, proxy))


@bp.route("/clips/<clip_id>/proxy.mp4")
@requires(Permission.CASE_VIEW)
def clip_proxy(clip_id: str):
    clip = get_clip_for(current_user, clip_id)
    if not clip.proxy_key:
        abort(404)
    return serve_object(clip.proxy_key, "video/mp4")


@bp.route("/versions/<version_id>/media/<name>")
@requires(Permission.CASE_VIEW)
def rendition_media(version_id: str, name: str):
    return serve_rendition(get_version_for(current_user, version_id), name)


@bp.route("/clips/<clip_id>/versions", methods=["POST"])
@requires(Permission.CLIP_EDIT)
def version_create(clip_id: str):
    payload = request.get_json(silent=True)
    try:
        clip = get_clip_for(current_user, clip_id, Permission.CLIP_EDIT)
        if not isinstance(payload, dict) or "plan" not in payload:
            raise ValidationFailed("Send a JSON object with a plan.", field="plan")
        plan = plan_from_request(
            payload["plan"], watermark_path=watermark_reference(clip.case.agency)
        )
        version = create_version(clip, plan, current_user)
    except DomainError as exc:
        return _problem(exc)
    return jsonify(
        version={"id": version.public_id, "number": version.number, "status": version.status}
    ), 201


# -- redaction proposals (session + X-CSRFToken, JSON) -------------------------------


@bp.route("/clips/<clip_id>/proposals", methods=["POST"], endpoint="proposal_create")
@requires(Permission.CLIP_EDIT)
def proposal_create(clip_id: str):
    """Ask for the faces in the clip (``{"kind": "faces"}``) or for a box to be
    followed (``{"kind": "follow", "box": {"t", "x", "y", "w", "h"}}``)."""
    payload = request.get_json(silent=True)
    try:
        clip = get_clip_for(current_user, clip_id, Permission.CLIP_EDIT)
        if not isinstance(payload, dict) or payload.get("kind") not in ("faces", "follow"):
            raise ValidationFailed(
                'Send {"kind": "faces"} or {"kind": "follow", "box": ...}.', field="kind"
            )
        if payload["kind"] == "faces":
            proposal = request_faces(clip, current_user)
        else:
            proposal = request_follow(clip, current_user, payload.get("box"))
    except DomainError as exc:
        return _problem(exc)
    body = proposal_json(proposal)
    body["url"] = url_for("staff.proposal_status", proposal_id=proposal.public_id)
    return jsonify(proposal=body), 202


@bp.route("/proposals/<proposal_id>.json", endpoint="proposal_status")
@requires(Permission.CLIP_EDIT)
def proposal_status(proposal_id: str):
    try:
        proposal = get_proposal_for(current_user, proposal_id)
    except DomainError as exc:
        return _problem(exc)
    body = proposal_json(proposal)
    body["url"] = url_for("staff.proposal_status", proposal_id=proposal.public_id)
    return jsonify(proposal=body)


@bp.route("/clips/<clip_id>/retry", methods=["POST"])
@requires(Permission.CLIP_EDIT)
def clip_retry(clip_id: str):
    form = RetryForm()
    if form.validate_on_submit():
        clip = get_clip_for(current_user, clip_id, Permission.CLIP_EDIT)
        try:
            retry_clip(clip, current_user)
            flash("Processing was started again.", "info")
        except DomainError as exc:
            flash(exc.message, "error")
    return redirect(url_for("staff.clip_detail", clip_id=clip_id))


@bp.route("/versions/<version_id>/approval", methods=["POST"], endpoint="approve_version")
@requires(Permission.VERSION_APPROVE)
def approve_version_view(version_id: str):
    form = ApprovalForm()
    version = get_version_for(current_user, version_id, Permission.VERSION_APPROVE)
    if form.validate_on_submit():
        checklist = {key: bool(getattr(form, key).data) for key in APPROVAL_CHECKLIST}
        try:
            approve_version(version, current_user, checklist)
            flash(f"Version {version.number} is approved for release.", "info")
        except DomainError as exc:
            flash(exc.message, "error")
    return redirect(url_for("staff.clip_detail", clip_id=version.clip.public_id))


@bp.route("/versions/<version_id>/approval/revoke", methods=["POST"], endpoint="revoke_approval")
@requires(Permission.VERSION_APPROVE)
def revoke_approval_view(version_id: str):
    form = RevokeForm()
    version = get_version_for(current_user, version_id, Permission.VERSION_APPROVE)
    if form.validate_on_submit():
        try:
            revoke_approval(version, current_user, form.reason.data or "")
            flash(f"The approval of version {version.number} is revoked.", "info")
        except DomainError as exc:
            flash(exc.message, "error")
    else:
        # The field's own message (too long, a refused character) when it has one.
        flash(next(iter(form.reason.errors), REVOKE_REASON_MISSING), "error")
    return redirect(url_for("staff.clip_detail", clip_id=version.clip.public_id))


@bp.route("/clips/<clip_id>/evidence")
@requires(Permission.CASE_VIEW)
def clip_evidence(clip_id: str):
    clip = get_clip_for(current_user, clip_id)
    record_evidence_access(clip, current_user, "evidence.record_view")
    object_ids = [clip.public_id, *(v.public_id for v in clip.versions)]
    custody = db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id.in_(object_ids)).order_by(AuditEvent.id)
    ).all()
    return render_template(
        "staff/evidence.html",
        clip=clip,
        case=clip.case,
        custody=custody,
        delete_form=DeleteEvidenceForm(formdata=None)
        if can(current_user, Permission.EVIDENCE_DELETE, clip.case) and clip.status != "deleted"
        else None,
        probe_json=json.dumps(clip.probe, indent=2, sort_keys=True),
        urls=_clip_urls(clip),
        approval_is_intact=approval_is_intact,
    )


@bp.route("/clips/<clip_id>/delete", methods=["POST"])
@requires(Permission.EVIDENCE_DELETE)
def clip_delete(clip_id: str):
    clip = get_clip_for(current_user, clip_id, Permission.EVIDENCE_DELETE)
    form = DeleteEvidenceForm()
    if form.validate_on_submit():
        try:
            delete_clip(clip, current_user, form.reason.data or "")
            flash("The footage was deleted from storage; its record remains.", "info")
        except DomainError as exc:
            flash(exc.message, "error")
    else:
        flash(next(iter(form.reason.errors), DELETION_REASON_MISSING), "error")
    return redirect(url_for("staff.clip_evidence", clip_id=clip_id))


@bp.route("/clips/<clip_id>/original")
@requires(Permission.EVIDENCE_DOWNLOAD)
def clip_original(clip_id: str):
    clip = get_clip_for(current_user, clip_id, Permission.EVIDENCE_DOWNLOAD)
    if not clip.original_key:
        abort(404)
    record_evidence_access(clip, current_user, "evidence.download", sha256=clip.original_sha256)
    name = f"{clip.case.number}-{clip.public_id}-original"
    return serve_object(clip.original_key, "application/octet-stream", download_name=name)
