"""API operations on cases, uploads, clips, versions and approvals. They call the
same services as the staff pages; errors are problem+json with the offending field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from flask import Response, g, jsonify, request, url_for

from portal.api import bp
from portal.api.authz import api_requires
from portal.extensions import db
from portal.http import tus
from portal.http.bodies import streams_body
from portal.http.media import serve_rendition
from portal.models import Case, Clip, ClipVersion
from portal.services.agencies import watermark_reference
from portal.services.authz import Permission
from portal.services.cases import create_case, get_case_for, list_cases, update_case
from portal.services.clips import (
    APPROVAL_CHECKLIST,
    approve_version,
    attach_upload,
    create_version,
    get_clip_for,
    get_version_for,
    list_clips,
    plan_from_request,
    revoke_approval,
)
from portal.services.errors import ValidationFailed
from portal.services.uploads import upload_from_stream
from portal.staff.presenters import clip_status

CASE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "number": str,
    "title": str,
    "offense": str,
    "occurred_at": str,
    "location_address": str,
    "latitude": (int, float),
    "longitude": (int, float),
    "public_summary": str,
    "internal_notes": str,
    "status": str,
}
MAX_TEXT = {
    "number": 64,
    "title": 200,
    "offense": 120,
    "location_address": 300,
    "public_summary": 4000,
    "internal_notes": 20000,
}


def _user():
    return g.api_user


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="body")
    return data


def _case_fields(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Type-check case fields from a client; the service checks the meaning."""
    fields: dict[str, Any] = {}
    for name, value in data.items():
        if name not in CASE_FIELDS:
            raise ValidationFailed(f"Unknown field {name!r}.", field=name)
        expected = CASE_FIELDS[name]
        if value is None and name in ("occurred_at", "latitude", "longitude"):
            fields[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ValidationFailed("has the wrong type", field=name)
        if isinstance(value, str) and len(value) > MAX_TEXT.get(name, 100):
            raise ValidationFailed(
                f"is longer than {MAX_TEXT.get(name, 100)} characters", field=name
            )
        if name == "occurred_at":
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValidationFailed("must be an ISO 8601 date and time", field=name) from None
            value = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
        if name == "latitude" and not -90 <= value <= 90:
            raise ValidationFailed("must be between -90 and 90", field=name)
        if name == "longitude" and not -180 <= value <= 180:
            raise ValidationFailed("must be between -180 and 180", field=name)
        fields[name] = value
    if not partial:
        for required in ("number", "title"):
            if required not in fields:
                raise ValidationFailed("is required", field=required)
    if ("latitude" in fields) != ("longitude" in fields):
        raise ValidationFailed("give latitude and longitude together", field="longitude")
    return fields


def _case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.public_id,
        "number": case.number,
        "title": case.title,
        "offense": case.offense,
        "occurred_at": case.occurred_at.isoformat() if case.occurred_at else None,
        "location_address": case.location_address,
        "latitude": case.latitude,
        "longitude": case.longitude,
        "public_summary": case.public_summary,
        "internal_notes": case.internal_notes,
        "status": case.status,
        "detectives": [d.public_id for d in case.detectives],
        "created_at": case.created_at.isoformat(),
    }


@bp.route("/cases", methods=["POST"])
@api_requires(Permission.CASE_CREATE)
def post_case():
    fields = _case_fields(_json_object(), partial=False)
    if fields.pop("status", "open") != "open":
        raise ValidationFailed("A new case is open.", field="status")
    case = create_case(_user().agency, created_by=_user(), **fields)
    db.session.commit()
    response = jsonify(_case_json(case))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_case", case_id=case.public_id)
    return response


@bp.route("/cases", methods=["GET"])
@api_requires(Permission.CASE_VIEW)
def get_cases():
    try:
        limit = int(request.args.get("limit", "25"))
    except ValueError:
        raise ValidationFailed("must be a whole number", field="limit") from None
    if not 1 <= limit <= 100:
        raise ValidationFailed("must be between 1 and 100", field="limit")
    page = list_cases(
        _user(),
        status=request.args.get("status") or None,
        search=request.args.get("q", "")[:100],
        after=request.args.get("after") or None,
        limit=limit,
    )
    return jsonify(cases=[_case_json(c) for c in page.cases], next=page.next_cursor)


@bp.route("/cases/<case_id>", methods=["GET"])
@api_requires(Permission.CASE_VIEW)
def get_case(case_id: str):
    case = get_case_for(_user(), case_id)
    body = _case_json(case)
    body["clips"] = [
        {"id": c.public_id, "status": c.status, "url": url_for("api.get_clip", clip_id=c.public_id)}
        for c in list_clips(case)
    ]
    return jsonify(body)


@bp.route("/cases/<case_id>", methods=["PATCH"])
@api_requires(Permission.CASE_EDIT)
def patch_case(case_id: str):
    case = get_case_for(_user(), case_id)
    update_case(case, _user(), _case_fields(_json_object(), partial=True))
    return jsonify(_case_json(case))


# -- uploads (tus) --------------------------------------------------------------------


@bp.route("/uploads", methods=["OPTIONS"], endpoint="tus_options")
def api_tus_options():
    return tus.options()


@bp.route("/uploads", methods=["POST"], endpoint="tus_create")
@api_requires(Permission.CLIP_UPLOAD)
def api_tus_create():
    return tus.create(_user(), "api.tus_upload")


@bp.route("/uploads/<upload_id>", methods=["HEAD", "PATCH", "DELETE"], endpoint="tus_upload")
@streams_body(["PATCH"])
@api_requires(Permission.CLIP_UPLOAD)
def api_tus_upload(upload_id: str):
    if request.method == "PATCH":
        return tus.patch(_user(), upload_id)
    if request.method == "DELETE":
        return tus.delete(_user(), upload_id)
    return tus.head(_user(), upload_id)


# -- clips ----------------------------------------------------------------------------


def _media_url(version: ClipVersion, name: str) -> str:
    return url_for("api.get_rendition", version_id=version.public_id, name=name)


def _clip_json(clip: Clip) -> dict[str, Any]:
    body = clip_status(clip, None, media_url=_media_url)
    body["clip"]["case"] = clip.case.public_id
    body["clip"]["probe"] = clip.probe
    return body


@bp.route("/cases/<case_id>/clips", methods=["POST"])
@api_requires(Permission.CLIP_UPLOAD)
def post_clip(case_id: str):
    case = get_case_for(_user(), case_id)
    file = request.files.get("file")
    if file is not None:
        stream = cast(BinaryIO, file.stream)
        upload = upload_from_stream(_user(), stream, filename=file.filename or "", case=case)
        upload_id: object = upload.public_id
    else:
        upload_id = _json_object().get("upload_id")
        if not isinstance(upload_id, str) or not upload_id:
            raise ValidationFailed(
                "Send a finished tus upload's id, or the file as multipart 'file'.",
                field="upload_id",
            )
    clip = attach_upload(case, str(upload_id), _user())
    response = jsonify(_clip_json(clip))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_clip", clip_id=clip.public_id)
    return response


@bp.route("/clips/<clip_id>", methods=["GET"])
@api_requires(Permission.CASE_VIEW)
def get_clip(clip_id: str):
    return jsonify(_clip_json(get_clip_for(_user(), clip_id)))


@bp.route("/versions/<version_id>/renditions/<name>", methods=["GET"])
@api_requires(Permission.CASE_VIEW)
def get_rendition(version_id: str, name: str):
    return serve_rendition(get_version_for(_user(), version_id), name)


@bp.route("/clips/<clip_id>/versions", methods=["POST"])
@api_requires(Permission.CLIP_EDIT)
def post_version(clip_id: str):
    clip = get_clip_for(_user(), clip_id, Permission.CLIP_EDIT)
    data = _json_object()
    if "plan" not in data:
        raise ValidationFailed("is required", field="plan")
    plan = plan_from_request(data["plan"], watermark_path=watermark_reference(clip.case.agency))
    version = create_version(clip, plan, _user())
    response = jsonify(
        id=version.public_id,
        number=version.number,
        status=version.status,
        clip=url_for("api.get_clip", clip_id=clip.public_id),
    )
    response.status_code = 201
    return response


@bp.route("/versions/<version_id>/approval", methods=["POST"])
@api_requires(Permission.VERSION_APPROVE)
def post_approval(version_id: str):
    version = get_version_for(_user(), version_id, Permission.VERSION_APPROVE)
    checklist = _json_object().get("checklist")
    if not isinstance(checklist, dict) or not all(isinstance(v, bool) for v in checklist.values()):
        raise ValidationFailed(
            "an object of booleans: " + ", ".join(APPROVAL_CHECKLIST), field="checklist"
        )
    approval = approve_version(version, _user(), checklist)
    response = jsonify(
        version=version.public_id,
        approved_by=approval.approved_by.public_id,
        approved_at=approval.approved_at.isoformat(),
        renditions_digest=approval.renditions_digest,
    )
    response.status_code = 201
    return response


@bp.route("/versions/<version_id>/approval", methods=["DELETE"])
@api_requires(Permission.VERSION_APPROVE)
def delete_approval(version_id: str):
    version = get_version_for(_user(), version_id, Permission.VERSION_APPROVE)
    reason = (request.get_json(silent=True) or {}).get("reason") if request.data else None
    if not isinstance(reason, str):
        raise ValidationFailed("Say why the approval is revoked.", field="reason")
    revoke_approval(version, _user(), reason)
    return Response(status=204)
