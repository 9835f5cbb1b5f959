"""The tus 1.0.0 resumable-upload protocol over HTTP (https://tus.io/protocols/resumable-upload).

Core, creation, termination, checksum and expiration. The staff pages (session and
CSRF header) and the API (bearer token) mount the same handlers; the work is done
by :mod:`portal.services.uploads`.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import BinaryIO

from flask import Response, current_app, request, url_for
from werkzeug.exceptions import ClientDisconnected

from portal.http.edge import problem
from portal.models import Upload, User
from portal.services.authz import Permission, can
from portal.services.cases import get_case_for
from portal.services.errors import DomainError, PermissionDenied, ValidationFailed
from portal.services.uploads import (
    CHECKSUM_ALGORITHMS,
    append_to_upload,
    create_upload,
    get_upload_for,
    parse_metadata,
    terminate_upload,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"


class _DisconnectAsOSError:
    """Werkzeug reports a client that hung up mid-body as ``ClientDisconnected``; the
    upload service keeps the bytes that arrived when reading raises ``OSError``."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except ClientDisconnected as exc:
            raise ConnectionError("client disconnected") from exc

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._stream.readinto(buffer)  # type: ignore[attr-defined]
        except ClientDisconnected as exc:
            raise ConnectionError("client disconnected") from exc


def _tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(error: DomainError) -> Response:
    extra = {"field": error.field} if error.field else {}
    response = problem(error.status, error.message, **extra)
    return _tus_headers(response)


def _check_version() -> Response | None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        response = problem(412, "This server speaks tus 1.0.0 (send Tus-Resumable: 1.0.0).")
        response.headers["Tus-Version"] = TUS_VERSION
        return _tus_headers(response)
    return None


def _expires(upload: Upload) -> str:
    return format_datetime(upload.expires_at, usegmt=True)


def options() -> Response:
    response = Response(status=204)
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = TUS_EXTENSIONS
    response.headers["Tus-Max-Size"] = str(current_app.config["TATTLETALE"].max_upload_bytes)
    response.headers["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
    return _tus_headers(response)


def create(user: User, upload_endpoint: str) -> Response:
    if (refused := _check_version()) is not None:
        return refused
    try:
        raw_length = request.headers.get("Upload-Length", "")
        if not raw_length.isdigit():
            raise ValidationFailed(
                "Upload-Length must be given as a whole number of bytes "
                "(deferred length is not supported).",
                field="Upload-Length",
            )
        metadata = parse_metadata(request.headers.get("Upload-Metadata"))
        case = get_case_for(user, metadata["case"]) if metadata.get("case") else None
        if not can(user, Permission.CLIP_UPLOAD, case):
            raise PermissionDenied("You may not upload footage to this case.")
        upload = create_upload(
            user,
            length=int(raw_length),
            max_bytes=current_app.config["TATTLETALE"].max_upload_bytes,
            filename=metadata.get("filename", ""),
            content_type=metadata.get("filetype", ""),
            case=case,
        )
    except DomainError as error:
        return _error(error)
    response = Response(status=201)
    response.headers["Location"] = url_for(upload_endpoint, upload_id=upload.public_id)
    response.headers["Upload-Expires"] = _expires(upload)
    return _tus_headers(response)


def head(user: User, upload_id: str) -> Response:
    try:
        upload = get_upload_for(user, upload_id)
    except DomainError as error:
        response = _error(error)
        response.set_data(b"")  # HEAD answers carry no body
        return response
    response = Response(status=200)
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Length"] = str(upload.length)
    response.headers["Upload-Expires"] = _expires(upload)
    return _tus_headers(response)


def patch(user: User, upload_id: str) -> Response:
    if (refused := _check_version()) is not None:
        return refused
    if request.mimetype != "application/offset+octet-stream":
        return _tus_headers(
            problem(415, "PATCH needs Content-Type: application/offset+octet-stream.")
        )
    raw_offset = request.headers.get("Upload-Offset", "")
    if not raw_offset.isdigit():
        return _tus_headers(problem(400, "Upload-Offset must be a whole number."))
    try:
        upload = get_upload_for(user, upload_id)
        # The upload's declared length bounds this body (the service refuses excess),
        # not the form-size limit.
        request.max_content_length = upload.length
        upload = append_to_upload(
            upload,
            offset=int(raw_offset),
            stream=_DisconnectAsOSError(request.stream),  # type: ignore[arg-type]
            checksum_header=request.headers.get("Upload-Checksum"),
        )
    except DomainError as error:
        return _error(error)
    response = Response(status=204)
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Expires"] = _expires(upload)
    return _tus_headers(response)


def delete(user: User, upload_id: str) -> Response:
    if (refused := _check_version()) is not None:
        return refused
    try:
        terminate_upload(get_upload_for(user, upload_id), user)
    except DomainError as error:
        return _error(error)
    return _tus_headers(Response(status=204))
