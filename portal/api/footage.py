"""API operations on cases, uploads, clips, versions and approvals. They call the
same services as the staff pages; each declares its body and answers with the schemas
of :mod:`portal.api.schemas`, and errors are problem+json with the offending field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, cast

from flask import Response, g, request, url_for

from portal.api import bp
from portal.api.authz import api_requires
from portal.api.docs import binary, json_body, problems, tus_headers
from portal.api.schemas import (
    ApprovalCreateSchema,
    ApprovalSchema,
    CaseCreateSchema,
    CaseDetailSchema,
    CaseListSchema,
    CaseQuerySchema,
    CaseSchema,
    CaseUpdateSchema,
    ClipAttachSchema,
    ClipFileSchema,
    ClipRetriedSchema,
    ClipStatusSchema,
    RevocationSchema,
    VersionCreatedSchema,
    VersionCreateSchema,
)
from portal.extensions import db
from portal.http import tus
from portal.http.bodies import streams_body
from portal.http.media import serve_rendition
from portal.http.presenters import clip_status
from portal.models import Case, Clip, ClipVersion
from portal.services.agencies import watermark_reference
from portal.services.authz import Permission
from portal.services.cases import create_case, get_case_for, list_cases, update_case
from portal.services.clips import (
    approve_version,
    attach_upload,
    create_version,
    get_clip_for,
    get_version_for,
    list_clips,
    plan_from_request,
    retry_clip,
    revoke_approval,
)
from portal.services.uploads import upload_from_stream

Body = Callable[[], dict[str, Any]]


def _user():
    return g.api_user


def _case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.public_id,
        "number": case.number,
        "title": case.title,
        "offense": case.offense,
        "occurred_at": case.occurred_at,
        "location_address": case.location_address,
        "latitude": case.latitude,
        "longitude": case.longitude,
        "public_summary": case.public_summary,
        "internal_notes": case.internal_notes,
        "status": case.status,
        "detectives": [d.public_id for d in case.detectives],
        "created_at": case.created_at,
    }


@bp.route("/cases", methods=["POST"])
@bp.doc(operationId="createCase")
@api_requires(Permission.CASE_CREATE)
@bp.arguments(CaseCreateSchema)
@bp.response(201, CaseSchema, headers={"Location": {"schema": {"type": "string"}}})
@problems(400, 409)
def post_case(fields: dict[str, Any]):
    """Open a case."""
    fields.pop("status", None)  # the schema allows only "open", which a new case is
    case = create_case(_user().agency, created_by=_user(), **fields)
    db.session.commit()
    return _case_json(case), 201, {"Location": url_for("api.get_case", case_id=case.public_id)}


@bp.route("/cases", methods=["GET"])
@bp.doc(operationId="listCases")
@api_requires(Permission.CASE_VIEW)
@bp.arguments(CaseQuerySchema, location="query")
@bp.response(200, CaseListSchema, description="One page of cases, newest first.")
def get_cases(query: dict[str, Any]):
    """The cases the caller may see."""
    page = list_cases(
        _user(),
        status=query.get("status") or None,
        search=query["q"],
        after=query.get("after") or None,
        limit=query["limit"],
    )
    return {"cases": [_case_json(c) for c in page.cases], "next": page.next_cursor}


@bp.route("/cases/<id:case_id>", methods=["GET"])
@bp.doc(operationId="getCase")
@api_requires(Permission.CASE_VIEW)
@bp.response(200, CaseDetailSchema)
@problems(404)
def get_case(case_id: str):
    """A case with its clips."""
    case = get_case_for(_user(), case_id)
    body = _case_json(case)
    body["clips"] = [
        {"id": c.public_id, "status": c.status, "url": url_for("api.get_clip", clip_id=c.public_id)}
        for c in list_clips(case)
    ]
    return body


@bp.route("/cases/<id:case_id>", methods=["PATCH"])
@bp.doc(operationId="updateCase")
@api_requires(Permission.CASE_EDIT)
@json_body(CaseUpdateSchema)
@bp.response(200, CaseSchema)
@problems(400, 404, 409)
def patch_case(read: Body, case_id: str):
    """Change some of a case's fields."""
    case = get_case_for(_user(), case_id)
    update_case(case, _user(), read())
    return _case_json(case)


# -- uploads (tus) --------------------------------------------------------------------
# The tus protocol (portal/http/tus.py) reads its headers itself; these declarations
# document them.


@bp.route("/uploads", methods=["OPTIONS"], endpoint="tus_options")
@bp.doc(operationId="tusOptions")
@bp.response(204, description="The tus versions, extensions and size limit, in headers.")
def api_tus_options():
    """tus 1.0 discovery."""
    return tus.options()


@bp.route("/uploads", methods=["POST"], endpoint="tus_create")
@api_requires(Permission.CLIP_UPLOAD)
@bp.doc(
    operationId="createUpload",
    parameters=[
        *tus_headers(),
        {
            "name": "Upload-Length",
            "in": "header",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
        {
            "name": "Upload-Metadata",
            "in": "header",
            "schema": {"type": "string", "maxLength": 4096},
            "description": "Comma-separated `key base64(value)`; keys filename, filetype, case.",
        },
    ],
)
@bp.response(201, description="Created; Location names the upload.")
@problems(400, 404, 412, 413, 422, 429, 507)
def api_tus_create():
    """tus 1.0 creation."""
    return tus.create(_user(), "api.tus_upload")


@bp.route("/uploads/<id:upload_id>", methods=["HEAD"], endpoint="tus_offset")
@bp.doc(operationId="getUploadOffset")
@api_requires(Permission.CLIP_UPLOAD)
@bp.response(200, description="Upload-Offset and Upload-Length, in headers.")
@problems(400, 404, 410)
def api_tus_offset(upload_id: str):
    """How much of the upload has arrived."""
    return tus.head(_user(), upload_id)


@bp.route("/uploads/<id:upload_id>", methods=["PATCH"], endpoint="tus_upload")
@streams_body(["PATCH"])
@api_requires(Permission.CLIP_UPLOAD)
@bp.doc(
    operationId="appendUpload",
    parameters=[
        *tus_headers(),
        {
            "name": "Upload-Offset",
            "in": "header",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        },
        {"name": "Upload-Checksum", "in": "header", "schema": {"type": "string"}},
    ],
    requestBody=binary("application/offset+octet-stream", "The next bytes of the file."),
)
@bp.response(204, description="Stored; Upload-Offset is the new offset.")
@problems(400, 404, 409, 410, 412, 413, 415, 460, 500, 507)
def api_tus_append(upload_id: str):
    """Append bytes at Upload-Offset."""
    return tus.patch(_user(), upload_id)


@bp.route("/uploads/<id:upload_id>", methods=["DELETE"], endpoint="tus_cancel")
@api_requires(Permission.CLIP_UPLOAD)
@bp.doc(operationId="cancelUpload", parameters=tus_headers())
@bp.response(204, description="Cancelled; its bytes are gone.")
@problems(404, 409, 410, 412)
def api_tus_cancel(upload_id: str):
    """tus 1.0 termination."""
    return tus.delete(_user(), upload_id)


# -- clips ----------------------------------------------------------------------------


def _media_url(version: ClipVersion, name: str) -> str:
    return url_for("api.get_rendition", version_id=version.public_id, name=name)


def _clip_json(clip: Clip) -> dict[str, Any]:
    body = clip_status(clip, None, media_url=_media_url)
    body["clip"]["case"] = clip.case.public_id
    body["clip"]["probe"] = clip.probe
    return body


@bp.route("/cases/<id:case_id>/clips", methods=["POST"])
@api_requires(Permission.CLIP_UPLOAD)
@bp.doc(
    operationId="createClip",
    requestBody={
        "required": True,
        "description": "A finished tus upload's id, or a small file as multipart `file`.",
        "content": {
            "application/json": {"schema": ClipAttachSchema},
            "multipart/form-data": {"schema": ClipFileSchema},
        },
    },
)
@bp.response(
    201,
    ClipStatusSchema,
    description="The clip, ingesting.",
    headers={"Location": {"schema": {"type": "string"}}},
)
@problems(400, 404, 409, 413, 422)
def post_clip(case_id: str):
    """Make a clip of an upload."""
    case = get_case_for(_user(), case_id)
    parser = bp.ARGUMENTS_PARSER
    if request.mimetype == "multipart/form-data":
        file = parser.parse(ClipFileSchema, location="files")["file"]
        stream = cast(BinaryIO, file.stream)
        upload = upload_from_stream(_user(), stream, filename=file.filename or "", case=case)
        upload_id = upload.public_id
    else:
        upload_id = parser.parse(ClipAttachSchema, location="json")["upload_id"]
    clip = attach_upload(case, upload_id, _user())
    location = url_for("api.get_clip", clip_id=clip.public_id)
    return _clip_json(clip), 201, {"Location": location}


@bp.route("/clips/<id:clip_id>", methods=["GET"])
@bp.doc(operationId="getClip")
@api_requires(Permission.CASE_VIEW)
@bp.response(200, ClipStatusSchema, description="Status, probe, jobs and versions.")
@problems(404)
def get_clip(clip_id: str):
    """A clip and its versions."""
    return _clip_json(get_clip_for(_user(), clip_id))


@bp.route("/versions/<id:version_id>/renditions/<id:name>", methods=["GET"])
@api_requires(Permission.CASE_VIEW)
@bp.doc(
    operationId="getRendition",
    responses={
        "200": binary("*/*", "The file (Range supported)."),
        "206": binary("*/*", "The requested range."),
    },
)
@problems(404, 416)
def get_rendition(version_id: str, name: str):
    """One rendered file of a version (video, poster)."""
    return serve_rendition(get_version_for(_user(), version_id), name)


@bp.route("/clips/<id:clip_id>/versions", methods=["POST"])
@bp.doc(operationId="createVersion")
@api_requires(Permission.CLIP_EDIT)
@json_body(VersionCreateSchema)
@bp.response(201, VersionCreatedSchema, description="The new version, queued.")
@problems(400, 404, 409)
def post_version(read: Body, clip_id: str):
    """Save an edit plan as a new version and render it."""
    clip = get_clip_for(_user(), clip_id, Permission.CLIP_EDIT)
    plan = plan_from_request(read()["plan"], watermark_path=watermark_reference(clip.case.agency))
    version = create_version(clip, plan, _user())
    return {
        "id": version.public_id,
        "number": version.number,
        "status": version.status,
        "clip": url_for("api.get_clip", clip_id=clip.public_id),
    }


@bp.route("/clips/<id:clip_id>/retry", methods=["POST"])
@bp.doc(operationId="retryClip")
@api_requires(Permission.CLIP_EDIT)
@bp.response(202, ClipRetriedSchema, description="The failed work, queued again.")
@problems(404, 409)
def post_clip_retry(clip_id: str):
    """Start the clip's failed work again (ingest, proxy, failed versions)."""
    clip = get_clip_for(_user(), clip_id, Permission.CLIP_EDIT)
    jobs = retry_clip(clip, _user())
    db.session.refresh(clip)
    body = _clip_json(clip)
    body["retried"] = [{"id": job.public_id, "kind": job.name} for job in jobs]
    return body


@bp.route("/versions/<id:version_id>/approval", methods=["POST"])
@bp.doc(operationId="approveVersion")
@api_requires(Permission.VERSION_APPROVE)
@json_body(ApprovalCreateSchema)
@bp.response(201, ApprovalSchema, description="Approved for release.")
@problems(400, 404, 409)
def post_approval(read: Body, version_id: str):
    """Approve this exact version for release (a supervisor, never its author)."""
    version = get_version_for(_user(), version_id, Permission.VERSION_APPROVE)
    approval = approve_version(version, _user(), read()["checklist"])
    return {
        "version": version.public_id,
        "approved_by": approval.approved_by.public_id,
        "approved_at": approval.approved_at,
        "renditions_digest": approval.renditions_digest,
    }


@bp.route("/versions/<id:version_id>/approval", methods=["DELETE"])
@bp.doc(operationId="revokeApproval")
@api_requires(Permission.VERSION_APPROVE)
@json_body(RevocationSchema)
@bp.response(204, description="Revoked.")
@problems(400, 404, 409)
def delete_approval(read: Body, version_id: str):
    """Revoke the approval, saying why."""
    version = get_version_for(_user(), version_id, Permission.VERSION_APPROVE)
    revoke_approval(version, _user(), read()["reason"])
    return Response(status=204)
