"""The tus 1.0.0 resumable-upload protocol over HTTP (https://tus.io/protocols/resumable-upload).

Core, creation, termination, checksum and expiration. The staff pages (session and
CSRF header) and the API (bearer token) mount the same handlers; the work is done
by :mod:`portal.services.uploads`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from email.utils import format_datetime
from typing import BinaryIO

from flask import Response, current_app, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from portal.http import ratelimit
from portal.http.edge import problem
from portal.models import Agency, Upload, User
from portal.services.attachments import (
    append_to_file,
    cancel_file,
    file_offset,
    get_file,
    start_file,
)
from portal.services.authz import Permission, can
from portal.services.cases import get_case_for
from portal.services.errors import DomainError, PermissionDenied
from portal.services.receiving import CHECKSUM_ALGORITHMS, Checksum
from portal.services.text import clean_text
from portal.services.uploads import (
    append_to_upload,
    create_upload,
    get_upload_for,
    terminate_upload,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"

# Header values are parsed by what HTTP allows, not by what Python's int() accepts:
# str.isdigit() is true for "²" and int() takes "١٢" (Arabic-Indic digits), " 1_0 ",
# "+5". Only ASCII digits, and few enough of them that the number fits the database
# (a signed 64-bit column).
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
_MAX_BYTE_COUNT = 2**63 - 1
_METADATA_KEY = re.compile(r"[!-+\--~]{1,64}")  # visible ASCII without the comma
_MAX_METADATA = 4096


class MalformedHeader(DomainError):
    """A tus header that is not what the protocol says it is (400)."""

    status = 400


def parse_byte_count(name: str, raw: str | None) -> int:
    """A header holding a count of bytes: ASCII digits only, at most 2**63 - 1."""
    if raw is None or raw == "":
        raise MalformedHeader(f"{name} is missing.", field=name)
    value = raw.strip(" \t")
    if not _ASCII_DIGITS.fullmatch(value) or int(value) > _MAX_BYTE_COUNT:
        raise MalformedHeader(
            f"{name} must be a whole number of bytes in ASCII digits.", field=name
        )
    return int(value)


def parse_metadata(header: str | None) -> dict[str, str]:
    """tus ``Upload-Metadata``: comma-separated ``key base64value`` pairs; keys are
    visible ASCII without commas, unique; values strict base64 of UTF-8."""
    result: dict[str, str] = {}
    if not header:
        return result
    if len(header) > _MAX_METADATA:
        raise MalformedHeader("Upload-Metadata is too long.", field="Upload-Metadata")
    for pair in header.split(","):
        pair = pair.strip(" \t")
        key, _, value = pair.partition(" ")
        if not _METADATA_KEY.fullmatch(key) or " " in value:
            raise MalformedHeader(
                "Upload-Metadata must be comma-separated 'key base64value' pairs.",
                field="Upload-Metadata",
            )
        if key in result:
            raise MalformedHeader(f"Upload-Metadata names {key!r} twice.", field="Upload-Metadata")
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise MalformedHeader(
                f"Upload-Metadata value for {key!r} is not base64 UTF-8.", field="Upload-Metadata"
            ) from None
        result[key] = decoded
    return result


def parse_checksum(header: str | None) -> Checksum | None:
    """tus checksum extension: ``Upload-Checksum: <algorithm> <base64 digest>``. An
    unsupported algorithm is a 400, as the extension says."""
    if header is None:
        return None
    algorithm, _, value = header.strip(" \t").partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise MalformedHeader(
            f"Checksum algorithm {algorithm!r} is not supported "
            f"(use one of {', '.join(CHECKSUM_ALGORITHMS)}).",
            field="Upload-Checksum",
        )
    try:
        digest = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise MalformedHeader("Upload-Checksum is not base64.", field="Upload-Checksum") from None
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise MalformedHeader(
            f"Upload-Checksum is not a {algorithm} digest (wrong length).",
            field="Upload-Checksum",
        )
    return Checksum(algorithm, digest)


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
        if request.headers.get("Upload-Defer-Length") is not None:
            raise MalformedHeader(
                "Deferred length is not supported: send Upload-Length.",
                field="Upload-Defer-Length",
            )
        length = parse_byte_count("Upload-Length", request.headers.get("Upload-Length"))
        metadata = parse_metadata(request.headers.get("Upload-Metadata"))
        # The file name is the client's, for display (cleaned by the service); the
        # case id and the type are text like any field, so they are checked as such.
        case_id = clean_text(metadata.get("case"), field="Upload-Metadata", max_length=64)
        filetype = clean_text(metadata.get("filetype"), field="Upload-Metadata", max_length=100)
        case = get_case_for(user, case_id) if case_id else None
        if not can(user, Permission.CLIP_UPLOAD, case):
            raise PermissionDenied("You may not upload footage to this case.")
        upload = create_upload(
            user,
            length=length,
            max_bytes=current_app.config["TATTLETALE"].max_upload_bytes,
            filename=metadata.get("filename", ""),
            content_type=filetype,
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
    try:
        offset = parse_byte_count("Upload-Offset", request.headers.get("Upload-Offset"))
        if (content_length := request.headers.get("Content-Length")) is not None:
            # Werkzeug reads a malformed Content-Length as 0, an empty body: refuse it.
            parse_byte_count("Content-Length", content_length)
        checksum = parse_checksum(request.headers.get("Upload-Checksum"))
        upload = get_upload_for(user, upload_id)
        # No body is longer than the whole upload (the service refuses any byte past
        # the declared length, with or without a Content-Length).
        request.max_content_length = upload.length
        upload = append_to_upload(
            upload,
            offset=offset,
            stream=_DisconnectAsOSError(request.stream),  # type: ignore[arg-type]
            checksum=checksum,
        )
    except DomainError as error:
        return _error(error)
    except RequestEntityTooLarge:
        return _tus_headers(problem(413, "More bytes were sent than the declared Upload-Length."))
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


# -- a tip's files (public, anonymous) ---------------------------------------------------
#
# The same protocol for the tip form's files (portal/services/attachments.py:
# "resumable files"). No account: a file belongs to the form whose draft secret the
# page sends in ``Tip-Draft`` with every request, as the form itself does when it is
# sent; another secret, or none, finds no file. Nothing about the client is read or
# kept: no address, no user agent, and no file name or type (Upload-Metadata is
# ignored). Starting a file is counted against the client's limit of tip uploads
# (keyed on the daily keyed hash of its address, portal/http/ratelimit.py); the bytes
# count against the pending-files quota from the first request; the tip that takes the
# files is sent with the form and its proof of work.
#
# An answer's files (the reply form of a tip's thread) go the same way, with the tip's
# receipt session (the reply form's thread token) in ``Tip-Thread`` beside the form's
# draft secret: the view resolves the session to its tip and passes the draft secret
# bound to that tip (``reply_draft_secret``) as ``draft``.

TIP_DRAFT_HEADER = "Tip-Draft"
TIP_THREAD_HEADER = "Tip-Thread"
TIP_EXTENSIONS = "creation,termination"


def _tip_draft() -> str:
    return request.headers.get(TIP_DRAFT_HEADER, "")


def tip_refused(error: DomainError, *, head: bool = False) -> Response:
    """A tip file request refused before it reached the file (a receipt session that
    expired): a problem with the tus headers, without a body for HEAD."""
    response = _tip_error(error)
    if head:
        response.set_data(b"")
    return response


def _tip_error(error: DomainError) -> Response:
    response = _error(error)
    if (code := getattr(error, "code", None)) is not None:
        data = response.get_json()
        data["code"] = code
        response.set_data(json.dumps(data))
    return response


def tip_options() -> Response:
    response = Response(status=204)
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = TIP_EXTENSIONS
    response.headers["Tus-Max-Size"] = str(
        current_app.config["TATTLETALE"].tip_attachment_max_bytes
    )
    return _tus_headers(response)


def tip_create(agency: Agency, file_endpoint: str, draft: str | None = None) -> Response:
    if (refused := _check_version()) is not None:
        return refused
    if (wait := ratelimit.count_public("tip_uploads")) is not None:
        response = _tus_headers(
            problem(
                429, _("Too many files from here. Please wait %(seconds)s seconds.", seconds=wait)
            )
        )
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        if request.headers.get("Upload-Defer-Length") is not None:
            raise MalformedHeader(
                "Deferred length is not supported: send Upload-Length.",
                field="Upload-Defer-Length",
            )
        length = parse_byte_count("Upload-Length", request.headers.get("Upload-Length"))
        row = start_file(agency, _tip_draft() if draft is None else draft, length)
    except DomainError as error:
        return _tip_error(error)
    response = Response(status=201)
    response.headers["Location"] = url_for(file_endpoint, file_id=row.public_id)
    return _tus_headers(response)


def tip_head(file_id: str, draft: str | None = None) -> Response:
    try:
        row = get_file(_tip_draft() if draft is None else draft, file_id)
        offset = file_offset(row)
    except DomainError as error:
        response = _tip_error(error)
        response.set_data(b"")  # HEAD answers carry no body
        return response
    response = Response(status=200)
    response.headers["Upload-Offset"] = str(offset)
    response.headers["Upload-Length"] = str(row.size)
    return _tus_headers(response)


def tip_patch(file_id: str, draft: str | None = None) -> Response:
    if (refused := _check_version()) is not None:
        return refused
    if request.mimetype != "application/offset+octet-stream":
        return _tus_headers(
            problem(415, "PATCH needs Content-Type: application/offset+octet-stream.")
        )
    try:
        offset = parse_byte_count("Upload-Offset", request.headers.get("Upload-Offset"))
        if (content_length := request.headers.get("Content-Length")) is not None:
            parse_byte_count("Content-Length", content_length)
        row = get_file(_tip_draft() if draft is None else draft, file_id)
        request.max_content_length = row.size
        new_offset = append_to_file(
            row,
            offset=offset,
            stream=_DisconnectAsOSError(request.stream),  # type: ignore[arg-type]
        )
    except DomainError as error:
        return _tip_error(error)
    except RequestEntityTooLarge:
        return _tus_headers(
            problem(413, _("More bytes were sent than the file's declared length."))
        )
    response = Response(status=204)
    response.headers["Upload-Offset"] = str(new_offset)
    return _tus_headers(response)


def tip_delete(file_id: str, draft: str | None = None) -> Response:
    if (refused := _check_version()) is not None:
        return refused
    try:
        cancel_file(get_file(_tip_draft() if draft is None else draft, file_id))
    except DomainError as error:
        return _tip_error(error)
    return _tus_headers(Response(status=204))
