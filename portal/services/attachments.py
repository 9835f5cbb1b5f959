"""Photos and videos tipsters attach: receiving them, holding them as drafts, giving
them to a tip, processing them into stripped derivatives, and showing them to staff.

Threats this answers:

* A flood of uploads filling the disk. Every file part of a request is written to
  the staging disk as it arrives, never whole in memory, and is cut off at the size
  limit; parts past the count limit are not written at all. Bytes waiting on the
  staging disk (drafts and files not yet processed) are bounded by
  ``tip_attachments_pending_bytes``: past it the oldest unsent drafts are removed,
  and if that is not enough the new file is refused. A sent tip's files are never
  dropped to make room.
* A file that gives its sender away or attacks a decoder: see
  :mod:`media_pipeline.attachments`. What a file is comes from its first bytes.
* A file staff cannot trust: the original is kept, unchanged and hashed, as evidence,
  downloadable only by staff who may handle the tip, every download audited.

Nothing about the sender is stored: no file name (a phone's ``IMG_2041.HEIC`` says
little, a desktop's ``jane-doe-statement.jpg`` a lot), no client content type, no
address. Storage keys are made of public ids.

A draft belongs to whoever holds its form's draft secret (random, 192 bits, stored
only as a SHA-256). Services flush; the few commits here that must outlive a refused
form (its files are kept for the next try) say so.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Table, and_, bindparam, case, delete, func, or_, select, update

from media_pipeline import Limits, MediaPipelineError, ObjectNotFound, Rejected, StorageError
from media_pipeline.attachments import KIND_OF_FORMAT, sniff_format, strip_image, strip_video
from media_pipeline.staging import Checkpoint, LocalStaging, StagedBytesMissing
from media_pipeline.storage import read_into
from portal.extensions import db
from portal.models import (
    PENDING_STATUSES,
    Agency,
    AttachmentStatus,
    Tip,
    TipAttachment,
    TipMessage,
    User,
)
from portal.models.base import new_public_id, utcnow
from portal.services.audit import record_event
from portal.services.errors import (
    Conflict,
    InsufficientStorage,
    NotFound,
    PermissionDenied,
    StorageFailed,
    UploadGone,
    UploadTooLarge,
    ValidationFailed,
)
from portal.services.receiving import (
    BodyTooLong,
    NoRoomWhileWriting,
    StagedBytesLost,
    StagedTable,
    WriterBusy,
    WriterDisplaced,
    receive,
)
from portal.services.refusals import refusal_code, refusal_text
from portal.services.storage import get_staging, get_store, work_dir
from portal.services.tips import get_tip_for, may_handle

log = logging.getLogger(__name__)

#: An unsent draft is removed this long after it arrived.
DRAFT_LIFETIME = timedelta(hours=24)
_PART_PREFIX = "tip-"
_PART_SUFFIX = ".part"
_SNIFF_BYTES = 64
# Part of the staging filesystem never promised to tip files (the database, logs and
# the clip pipeline may share it).
_STAGING_RESERVE_FRACTION = 0.05
ORIGINAL_TYPE = "application/octet-stream"


def _settings() -> Any:
    return current_app.config["TATTLETALE"]


def form_body_limit(settings: Any) -> int:
    """The body limit of a form that may carry attachments: every file at its
    largest, plus a MiB for the text fields and the multipart framing."""
    return int(settings.tip_attachments_max * settings.tip_attachment_max_bytes + 1024**2)


# -- drafts' secret ---------------------------------------------------------------------


def new_draft_secret() -> str:
    return secrets.token_urlsafe(24)


def draft_hash(secret: str) -> str | None:
    secret = (secret or "").strip()
    if not 16 <= len(secret) <= 64:
        return None
    return hashlib.sha256(secret.encode()).hexdigest()


def reply_draft_secret(tip: Tip, draft_secret: str) -> str:
    """The draft secret of the files of an answer to ``tip``: the reply form's own
    secret bound to the tip. The page sends both the form's secret and the tip's
    receipt session (its thread token, which names the tip); only with that session
    do they reach, add to or send these files: the same secret under another tip's
    session, or without one, finds nothing (and the tip form's files are never an
    answer's). "" for a secret that is no draft secret at all."""
    if draft_hash(draft_secret) is None:
        return ""
    bound = f"reply\0{tip.public_id}\0{draft_secret.strip()}"
    return hashlib.sha256(bound.encode()).hexdigest()


# -- receiving file parts ---------------------------------------------------------------


class _Reservations:
    """Bytes promised to file parts being received by this process right now (they
    are on disk, not yet in the database)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.total += count

    def release(self, count: int) -> None:
        with self._lock:
            self.total -= count


_reserved = _Reservations()


class ReceivedPart(io.RawIOBase):
    """One file part of a request, written to the staging disk as it arrives.

    Past ``cap`` bytes nothing more is kept (the file is emptied and ``too_large``
    set); a part refused before its first byte (``refusal``) keeps nothing at all.
    Unless :meth:`keep` is called, closing it removes its file: whatever the view
    does, an unclaimed part never outlives its request.
    """

    def __init__(self, public_id: str, cap: int, refusal: str = "") -> None:
        super().__init__()
        self.public_id = public_id
        self.cap = cap
        self.refusal = refusal
        self.size = 0
        self.too_large = False
        self.head = b""
        self._kept = False
        self._reserved = 0
        self.path = staging_path(public_id)
        self._file: io.FileIO | None = None
        if not refusal:
            self._reserved = cap
            _reserved.add(cap)
            # O_EXCL: a fresh random name, never someone else's file.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            self._file = io.FileIO(fd, "r+")

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        count = len(view)
        self.size += count
        if len(self.head) < _SNIFF_BYTES:
            self.head += bytes(view[: _SNIFF_BYTES - len(self.head)])
        if self._file is None or self.too_large:
            return count
        if self.size > self.cap:
            self.too_large = True
            self._file.truncate(0)  # nothing of an oversized file stays on disk
            return count
        written = 0
        while written < count:
            written += self._file.write(view[written:]) or 0
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence) if self._file is not None else 0

    def tell(self) -> int:
        return self._file.tell() if self._file is not None else 0

    def readinto(self, buffer: Any) -> int:
        return self._file.readinto(buffer) or 0 if self._file is not None else 0

    @property
    def is_empty_field(self) -> bool:
        """An ``<input type=file>`` left empty still sends a part, of no bytes."""
        return self.size == 0 and not self.refusal

    def keep(self) -> None:
        self._kept = True

    def close(self) -> None:
        if self.closed:
            return
        if self._file is not None:
            self._file.close()
        if self._reserved:
            _reserved.release(self._reserved)
            self._reserved = 0
        if not self._kept:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        super().close()


def parts_dir() -> Path:
    """Where tip files are received: beside the clip uploads in the local store's root
    (so machines sharing the store's filesystem share them), or, with a store that
    holds no files (S3), this machine's instance directory for the length of the
    request only: :func:`stage_parts` moves each kept file into the store at once."""
    staging = get_staging()
    if _parts_are_shared():
        assert isinstance(staging, LocalStaging)
        path = Path(staging.directory)
    else:
        path = current_app.config["TATTLETALE"].instance_path / "tip-uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _parts_are_shared() -> bool:
    """Whether every machine sees the received parts where they are written."""
    return isinstance(get_staging(), LocalStaging)


#: Where a kept draft's bytes wait in the store when the parts are not shared: any
#: worker can then process the tip's files, whichever web machine received them.
DRAFT_PREFIX = "tip-drafts/"


def draft_key(public_id: str) -> str:
    return f"{DRAFT_PREFIX}{public_id}"


def staging_path(public_id: str) -> Path:
    return parts_dir() / f"{_PART_PREFIX}{public_id}{_PART_SUFFIX}"


def pending_bytes() -> int:
    """Bytes of tip files on the staging disk: drafts, files waiting for their job,
    and failed ones whose bytes wait for a retry."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(TipAttachment.size), 0)).where(
            or_(
                TipAttachment.status.in_(PENDING_STATUSES),
                and_(
                    TipAttachment.status == AttachmentStatus.FAILED.value,
                    TipAttachment.original_key == "",
                ),
            )
        )
    )
    return int(total or 0)


def _room_left(needed: int) -> bool:
    settings = _settings()
    in_use = pending_bytes() + _reserved.total
    if in_use + needed > settings.tip_attachments_pending_bytes:
        return False
    usage = shutil.disk_usage(parts_dir())
    return usage.free - needed > usage.total * _STAGING_RESERVE_FRACTION


def _make_room(needed: int) -> bool:
    """Remove the oldest unsent drafts until ``needed`` bytes fit. Committed at once:
    the room must be there for the part about to be written, whatever the request
    answers."""
    if _room_left(needed):
        return True
    if needed > _settings().tip_attachments_pending_bytes:
        return False  # would not fit even alone: nobody's draft goes for it
    removed = False
    # Files still arriving by a resumable upload are unsent drafts too: a flood of
    # upload starts that never send a byte must not hold the room.
    unsent = (AttachmentStatus.DRAFT.value, AttachmentStatus.RECEIVING.value)
    oldest_first = (
        select(TipAttachment)
        .where(TipAttachment.status.in_(unsent), TipAttachment.tip_id.is_(None))
        .order_by(TipAttachment.created_at, TipAttachment.id)
    )
    for draft in db.session.scalars(oldest_first.limit(200)).all():
        _remove_draft(draft)
        removed = True
        db.session.flush()
        if _room_left(needed):
            break
    if removed:
        db.session.commit()
    return _room_left(needed)


# Said to the tipster with the form: translated when shown (portal/i18n.py).
NO_ROOM = _l(
    "The server is receiving too many files right now, so this one was not kept. "
    "Please try it again later."
)
TOO_MANY = _l("You can attach at most %(count)s files at once; the others were not kept.")

# Why a file was refused is stored in English (the media pipeline knows no Flask, and
# staff read the same row); the tipster's page translates it when it shows it
# (portal/services/refusals.py, which also gives each of the pipeline's reasons a
# stable code and reads the values out of the parameterised ones: a codec, a
# duration). Listed here, by their exact text, the reasons a tipster meets most: the
# file's type told from its first bytes, and the portal's own.
# tests/portal/public/test_i18n.py checks each is one the pipeline gives.
REFUSAL_REASONS = (
    _l("the file is empty"),
    _l("this is a GIF image; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    _l("this is a PDF document; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    _l(
        "this is a ZIP archive or office document; we accept photos (JPEG, PNG, HEIC) "
        "and videos (MP4, MOV)"
    ),
    _l("this is a bitmap image; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    _l(
        "this is a TIFF or raw camera image; we accept photos (JPEG, PNG, HEIC) and "
        "videos (MP4, MOV)"
    ),
    _l("this is a WebM or MKV video; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    _l(
        "this is a RIFF file (AVI, WAV or WebP); we accept photos (JPEG, PNG, HEIC) and "
        "videos (MP4, MOV)"
    ),
    _l("this is a program; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    _l("this is an AVIF image; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    _l("this is a text file; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    _l(
        "this is not a file type we accept; we accept photos (JPEG, PNG, HEIC) and "
        "videos (MP4, MOV)"
    ),
    _l("The file was lost before it was processed."),
)


def open_part(index: int) -> ReceivedPart:
    """Where the ``index``-th file part of a request goes (called by the form parser
    before the part's first byte is read)."""
    settings = _settings()
    cap = settings.tip_attachment_max_bytes
    public_id = new_public_id()
    if index >= settings.tip_attachments_max:
        return ReceivedPart(public_id, cap, refusal=str(TOO_MANY))
    if not _make_room(cap):
        return ReceivedPart(public_id, cap, refusal=str(NO_ROOM))
    return ReceivedPart(public_id, cap)


# -- drafts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Staged:
    """What became of a request's files: the messages to show with the form."""

    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _human(count: int) -> str:
    return f"{count / 1e6:,.1f} MB" if count >= 100_000 else f"{count / 1e3:,.0f} kB"


def stage_parts(parts: list[ReceivedPart], *, agency_id: int, draft_secret: str) -> Staged:
    """Keep the request's acceptable parts as drafts of ``draft_secret``; say what
    happened to the others. A file whose bytes are not a photo or video we accept
    becomes a refused draft (kept as a row, without its bytes), so the tipster is
    told on the receipt too."""
    digest = draft_hash(draft_secret)
    settings = _settings()
    problems: list[str] = []
    existing = (
        db.session.scalar(
            select(func.count(TipAttachment.id)).where(TipAttachment.draft_hash == digest)
        )
        if digest
        else 0
    ) or 0
    too_many = False
    for number, part in enumerate(parts, start=1):
        if part.is_empty_field:
            continue
        if part.refusal == str(TOO_MANY) or (existing >= settings.tip_attachments_max):
            too_many = True
            continue
        if part.refusal:
            problems.append(_("File %(number)s: %(problem)s", number=number, problem=part.refusal))
            continue
        if part.too_large:
            problems.append(
                _(
                    "File %(number)s is %(size)s; the largest accepted is %(largest)s. "
                    "It was not kept.",
                    number=number,
                    size=_human(part.size),
                    largest=_human(part.cap),
                )
            )
            continue
        if digest is None:
            continue
        row = TipAttachment(
            public_id=part.public_id,
            agency_id=agency_id,
            draft_hash=digest,
            size=part.size,
        )
        try:
            row.format = sniff_format(part.head)
            row.kind = KIND_OF_FORMAT[row.format]
            row.status = AttachmentStatus.DRAFT.value
            row.sha256 = _hash_path(part.path)
            part.keep()
            if not _parts_are_shared():
                # Into the store now: the machine that will process it may be another.
                get_store().adopt_file(draft_key(part.public_id), part.path, row.sha256, part.size)
        except Rejected as exc:
            # Not kept: a file we would never open is no use to anyone as evidence.
            row.status = AttachmentStatus.REFUSED.value
            row.reason = exc.reason
            row.size = part.size
            row.draft_hash = digest
        db.session.add(row)
        existing += 1
    if too_many:
        problems.append(
            str(TOO_MANY) % {"count": settings.tip_attachments_max}
            if settings.tip_attachments_max
            else _("This site takes no files with tips; yours were not kept.")
        )
    db.session.flush()
    return Staged(problems)


def _hash_path(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            hasher.update(block)
    return hasher.hexdigest()


def list_drafts(draft_secret: str) -> list[TipAttachment]:
    digest = draft_hash(draft_secret)
    if digest is None:
        return []
    return list(
        db.session.scalars(
            select(TipAttachment)
            .where(
                TipAttachment.draft_hash == digest,
                TipAttachment.tip_id.is_(None),
                TipAttachment.status != AttachmentStatus.RECEIVING.value,
            )
            .order_by(TipAttachment.id)
        )
    )


def keep_drafts() -> None:
    """Commit the drafts staged for a form that is shown again (a refused or expired
    form answers 4xx, and the request would roll them back)."""
    db.session.commit()


# Built once: every tip sent runs it, most of them with no file to take.
_attachments = cast(Table, TipAttachment.__table__)
_TAKE_DRAFTS = (
    update(_attachments)
    .where(
        _attachments.c.draft_hash == bindparam("digest"),
        _attachments.c.tip_id.is_(None),
        # A file whose upload never finished stays behind, swept with the drafts.
        _attachments.c.status != AttachmentStatus.RECEIVING.value,
    )
    .values(
        tip_id=bindparam("tip_id"),
        message_id=bindparam("message_id"),
        draft_hash=None,
        status=case(
            (_attachments.c.status == AttachmentStatus.DRAFT.value, AttachmentStatus.QUEUED.value),
            else_=_attachments.c.status,
        ),
    )
    .returning(_attachments.c.id)
)


def take_drafts(
    tip: Tip, draft_secret: str, message: TipMessage | None = None
) -> list[TipAttachment]:
    """Give the drafts of ``draft_secret`` to ``tip`` (and its answer ``message``) and
    start processing them after commit. Single use: a taken draft has no secret.

    One conditional UPDATE, so a draft removed for room at the same moment is simply
    not taken (and a draft being taken is not removed: see :func:`_remove_draft`)."""
    from portal.jobs import enqueue  # the jobs package imports services

    digest = draft_hash(draft_secret)
    if digest is None:
        return []
    db.session.flush()
    taken_ids = db.session.scalars(
        _TAKE_DRAFTS,
        {
            "digest": digest,
            "tip_id": tip.id,
            "message_id": message.id if message is not None else None,
        },
    ).all()
    db.session.expire(tip, ["attachments"])
    if not taken_ids:
        return []
    taken = list(
        db.session.scalars(
            select(TipAttachment)
            .where(TipAttachment.id.in_(taken_ids))
            .order_by(TipAttachment.id)
            .execution_options(populate_existing=True)
        )
    )
    for row in taken:
        if row.status == AttachmentStatus.QUEUED.value:
            enqueue("tips.attachment", attachment_id=row.id)
    return taken


def discard_drafts(draft_secret: str) -> None:
    digest = draft_hash(draft_secret)
    if digest is None:
        return
    unsent = select(TipAttachment).where(
        TipAttachment.draft_hash == digest, TipAttachment.tip_id.is_(None)
    )
    for row in db.session.scalars(unsent).all():
        _remove_draft(row)
    db.session.flush()


# -- resumable files (tus) --------------------------------------------------------------
#
# With JavaScript, the tip form's files come one by one through the tus protocol
# (portal/http/tus.py) before the form is sent, so a connection cut in the middle of
# a large video resumes from what the server has instead of starting over. Each file
# is a RECEIVING row of the form's draft, whose ``size`` is the declared length (the
# whole of it counted against the pending quota from the first request). Its bytes are
# received as a clip upload's are (portal/services/receiving.py), into the store's
# staging: a partial file inside the local store (the very part file a multipart part
# is written to), or an S3 multipart upload. The row holds the offset, the staging's
# state and the SHA-256 state, and one request writes at a time (a lease on the row):
# any web machine takes any request of a file, and any worker processes it, reading
# the bytes from the staging. Nothing about the sender is kept (no name, no type, no
# address, not even the machine that received the bytes). When the last byte is in,
# the file is a draft like any other, taken by the tip that sends the form.

#: The page's chunk size: each PATCH carries at most this much (tip-upload.js reads it
#: from the page), so a dropped connection loses at most one chunk's progress.
RESUMABLE_CHUNK_BYTES = 8 * 1024**2

#: Tip files, as portal/services/receiving.py writes them.
TIP_FILES = StagedTable(TipAttachment, AttachmentStatus.RECEIVING.value, "size")


#: Where :class:`media_pipeline.staging.S3Staging` keeps what it stages, by name.
STAGED_PREFIX = "uploads/"


def staged_name(public_id: str) -> str:
    """The name a file is staged under. With a local store the staging's partial file
    is then :func:`staging_path` itself, where a multipart part is kept too."""
    return f"{_PART_PREFIX}{public_id}"


def resumable_files_offered() -> bool:
    return _settings().tip_attachments_max > 0


def start_file(agency: Agency, draft_secret: str, length: int) -> TipAttachment:
    """A file of ``length`` bytes about to arrive for the form of ``draft_secret``.
    Refused, with a message for the tipster, when it is empty or too large, when the
    form has its files already, or when there is no room (oldest unsent drafts go
    first, as for a multipart part)."""
    digest = draft_hash(draft_secret)
    if digest is None or not resumable_files_offered():
        raise NotFound(_("This form has expired. Load the page again to attach files."))
    settings = _settings()
    if length <= 0:
        raise ValidationFailed(_("the file is empty"), field="Upload-Length")
    if length > settings.tip_attachment_max_bytes:
        raise UploadTooLarge(
            _(
                "This file is %(size)s; the largest accepted is %(largest)s.",
                size=_human(length),
                largest=_human(settings.tip_attachment_max_bytes),
            )
        )
    existing = db.session.scalar(
        select(func.count(TipAttachment.id)).where(TipAttachment.draft_hash == digest)
    )
    if (existing or 0) >= settings.tip_attachments_max:
        raise ValidationFailed(str(TOO_MANY) % {"count": settings.tip_attachments_max})
    if not _make_room(length):
        raise InsufficientStorage(str(NO_ROOM))
    row = TipAttachment(
        public_id=new_public_id(),
        agency_id=agency.id,
        draft_hash=digest,
        size=length,
        status=AttachmentStatus.RECEIVING.value,
    )
    try:
        row.staging = get_staging().create(staged_name(row.public_id), length)
    except StorageError as exc:
        log.warning("staging a tip file failed", extra={"error": str(exc)})
        raise StorageFailed(_("The server could not save this file. Try again later.")) from None
    db.session.add(row)
    db.session.flush()
    return row


def get_file(draft_secret: str, public_id: str) -> TipAttachment:
    """A file of the form of ``draft_secret`` not yet sent with a tip; NotFound for
    any other (whether it exists or not)."""
    digest = draft_hash(draft_secret)
    row = (
        db.session.scalar(
            select(TipAttachment).where(
                TipAttachment.public_id == public_id,
                TipAttachment.draft_hash == digest,
                TipAttachment.tip_id.is_(None),
            )
        )
        if digest
        else None
    )
    if row is None:
        raise NotFound(_("This file is not on the server (any more). Choose it again."))
    return row


class FileRefused(ValidationFailed):
    """The file's bytes are not a photo or video we accept; ``code`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(refusal_text(reason), field="file")
        self.code = refusal_code(reason)


def file_offset(row: TipAttachment) -> int:
    """How many bytes of the file the server has."""
    if row.status == AttachmentStatus.REFUSED.value:
        raise FileRefused(row.reason)
    if row.status != AttachmentStatus.RECEIVING.value:
        return row.size
    return row.offset


class _Start(io.RawIOBase):
    """The request body, keeping a copy of the file's first bytes as they pass (what
    the file is told by), after ``before``: those an earlier request stored."""

    def __init__(self, stream: Any, before: bytes, wanted: int) -> None:
        super().__init__()
        self._stream = stream
        self.head = bytearray(before)
        self._wanted = wanted

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = read_into(self._stream, buffer)
        if len(self.head) < self._wanted:
            self.head += bytes(memoryview(buffer)[: min(count, self._wanted - len(self.head))])
        return count


def append_to_file(row: TipAttachment, *, offset: int, stream: Any) -> int:
    """Write what ``stream`` yields at ``offset`` of a receiving file; returns the new
    offset. A dropped connection keeps every byte that arrived. Once the first bytes
    are in, the file is told by them: one that is not a photo or video we accept is
    refused there (:class:`FileRefused`, its bytes removed), not after the whole of it
    arrived. The last byte makes it a draft, hashed, that the tip will take."""
    if row.status == AttachmentStatus.REFUSED.value:
        raise FileRefused(row.reason)
    if row.status != AttachmentStatus.RECEIVING.value:
        raise Conflict(_("This file has arrived already."))
    if offset != row.offset:
        raise Conflict(
            _(
                "Upload-Offset is %(offset)s, but the server has %(at)s bytes of this file.",
                offset=offset,
                at=row.offset,
            )
        )
    name, row_id = staged_name(row.public_id), row.id
    body = _Start(stream, b"", _SNIFF_BYTES)

    def told(point: Checkpoint, complete: bool) -> dict[str, Any]:
        """What the file is, once enough of it is in (under the lease)."""
        values: dict[str, Any] = {}
        if complete:
            values["status"] = AttachmentStatus.DRAFT.value
        if row.format or not (point.offset >= _SNIFF_BYTES or complete):
            return values
        before = get_staging().read_start(name, row.staging, offset) if offset else b""
        try:
            values["format"] = sniff_format((before + bytes(body.head))[:_SNIFF_BYTES])
        except Rejected as exc:
            return {"status": AttachmentStatus.REFUSED.value, "reason": exc.reason}
        values["kind"] = KIND_OF_FORMAT[values["format"]]
        return values

    try:
        receive(
            TIP_FILES,
            row,
            name=name,
            offset=offset,
            stream=body,  # type: ignore[arg-type]
            # fsynced at every request's end: a tip file is small, and its offset is
            # then one the tipster can always resume from.
            durable=lambda new_offset, complete: True,
            extra_values=told,
        )
    except (WriterBusy, WriterDisplaced):
        still_here = select(TipAttachment.id).where(TipAttachment.id == row_id)
        if db.session.scalar(still_here) is None:
            # Removed meanwhile to make room for newer files (oldest unsent first).
            raise UploadGone(
                _("This file is not on the server (any more). Choose it again.")
            ) from None
        raise Conflict(_("This file is being received in another request.")) from None
    except BodyTooLong:
        raise UploadTooLarge(_("More bytes were sent than the file's declared length.")) from None
    except StagedBytesLost:
        raise UploadGone(_("This file is not on the server (any more). Choose it again.")) from None
    except NoRoomWhileWriting:
        raise InsufficientStorage(str(NO_ROOM)) from None
    except StorageFailed:
        raise InsufficientStorage(
            _("The server could not save this file. Try again later.")
        ) from None
    if row.status == AttachmentStatus.REFUSED.value:
        _discard_staged(row.public_id, row.staging)
        row.offset, row.staging = 0, {}
        # Committed here: the refusal is answered 422 (which rolls back), and the
        # receipt must still say why this file was not kept.
        db.session.commit()
        raise FileRefused(row.reason)
    return row.offset


def _discard_staged(public_id: str, state: dict[str, Any]) -> None:
    """Remove a file's staged bytes, wherever they are. Best effort with S3: what the
    store refuses now is aborted when the file's row goes (sweep, or by its job)."""
    with contextlib.suppress(FileNotFoundError):
        staging_path(public_id).unlink()
    if state:
        try:
            get_staging().discard(staged_name(public_id), state)
        except StorageError as exc:
            log.warning("removing a staged tip file failed", extra={"error": str(exc)})


def cancel_file(row: TipAttachment) -> None:
    """The tipster removed the file before sending the form."""
    _remove_draft(row)
    db.session.flush()


def _remove_draft(row: TipAttachment) -> None:
    """Remove a draft and its bytes, only if it is still a draft: a conditional
    DELETE, so one taken by a tip meanwhile stays (on PostgreSQL the DELETE waits for
    the taking transaction and then finds nothing to remove)."""
    public_id, state = row.public_id, dict(row.staging or {})
    result = db.session.execute(
        delete(TipAttachment)
        .where(
            TipAttachment.id == row.id,
            TipAttachment.tip_id.is_(None),
            # Not while a request writes to it: its bytes would be staged again.
            or_(TipAttachment.writer_token == "", TipAttachment.writer_until < utcnow()),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        db.session.expunge(row)
        _discard_staged(public_id, state)
        if not _parts_are_shared():
            get_store().delete(draft_key(public_id))


def sweep_drafts(now_s: float | None = None) -> int:
    """Remove drafts never sent within their lifetime, and staged part files no row
    claims (a process killed mid-request). Returns how many drafts went."""
    cutoff = utcnow() - DRAFT_LIFETIME
    stale = db.session.scalars(
        select(TipAttachment).where(
            TipAttachment.tip_id.is_(None), TipAttachment.created_at <= cutoff
        )
    ).all()
    for row in stale:
        _remove_draft(row)
    db.session.flush()
    known = set(
        db.session.scalars(
            select(TipAttachment.public_id).where(TipAttachment.status.in_(PENDING_STATUSES))
        )
    )
    failed = set(
        db.session.scalars(
            select(TipAttachment.public_id).where(
                TipAttachment.status == AttachmentStatus.FAILED.value
            )
        )
    )
    oldest = (now_s or time.time()) - DRAFT_LIFETIME.total_seconds()
    for path in parts_dir().glob(f"{_PART_PREFIX}*{_PART_SUFFIX}"):
        public_id = path.name[len(_PART_PREFIX) : -len(_PART_SUFFIX)]
        if public_id in known or public_id in failed:
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < oldest:
                path.unlink()
    if not _parts_are_shared():
        store = get_store()
        for key in list(store.iter_keys(DRAFT_PREFIX)):
            public_id = key[len(DRAFT_PREFIX) :]
            if public_id in known or public_id in failed:
                continue
            with contextlib.suppress(ObjectNotFound):
                if store.stat(key).last_modified.timestamp() < oldest:
                    store.delete(key)
        # Objects of resumable files no row claims (the store refused their removal
        # when their draft went); their unfinished multipart uploads are aborted by
        # the bucket's lifecycle rule (docs/operations.md).
        staged_prefix = f"{STAGED_PREFIX}{_PART_PREFIX}"
        for key in list(store.iter_keys(staged_prefix)):
            public_id = key[len(staged_prefix) :].split("/", 1)[0]
            if public_id in known or public_id in failed:
                continue
            with contextlib.suppress(ObjectNotFound):
                if store.stat(key).last_modified.timestamp() < oldest:
                    store.delete(key)
    return len(stale)


# -- processing -------------------------------------------------------------------------


def attachment_limits() -> Limits:
    settings = _settings()
    return Limits(
        max_file_bytes=settings.tip_attachment_max_bytes,
        max_duration_s=float(settings.tip_video_max_seconds),
        nice=settings.transcode_nice,
        threads=settings.transcode_threads,
        stall_timeout_s=settings.transcode_stall_after_s,
    )


def original_key(row: TipAttachment, tip: Tip) -> str:
    return f"tips/{tip.public_id}/attachments/{row.public_id}/original"


def _derivative_key(row: TipAttachment, tip: Tip, suffix: str) -> str:
    return f"tips/{tip.public_id}/attachments/{row.public_id}/view{suffix}"


def process_attachment(
    row: TipAttachment, heartbeat: Callable[[float], None] | None = None
) -> None:
    """Make the stripped derivative of a queued attachment and store it with the
    original. A file the pipeline refuses is marked refused with its reason and its
    bytes removed. Safe to run again: a stored original is picked up where the staged
    file is gone. Raises :class:`MediaPipelineError` for failures worth retrying."""
    if row.status != AttachmentStatus.QUEUED.value or row.tip is None:
        return
    tip = row.tip
    store = get_store()
    staged = staging_path(row.public_id)
    key = original_key(row, tip)
    in_drafts = not _parts_are_shared() and store.exists(draft_key(row.public_id))
    with contextlib.ExitStack() as stack:
        if row.staging:
            # Sent resumably to a store that holds no files (S3): the staged upload
            # becomes the original at once (idempotent: a repeat finds it there), and
            # the job reads it from there like any stored original.
            try:
                get_staging().adopt(
                    staged_name(row.public_id), row.staging, key, row.sha256, row.size
                )
            except StagedBytesMissing:
                row.status = AttachmentStatus.FAILED.value
                row.reason = "The file was lost before it was processed."
                db.session.flush()
                return
            row.staging = {}
            row.original_key = key
            db.session.flush()
            source = stack.enter_context(store.local_path_or_copy(key, work_dir()))
        elif staged.exists():
            source = str(staged)
        elif in_drafts:
            scratch = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="tipfile-", dir=work_dir())
            )
            source = os.path.join(scratch, "original")
            store.get_to_path(draft_key(row.public_id), source)
        else:
            try:
                source = stack.enter_context(store.local_path_or_copy(key, work_dir()))
            except ObjectNotFound:
                row.status = AttachmentStatus.FAILED.value
                row.reason = "The file was lost before it was processed."
                db.session.flush()
                return
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tipfile-", dir=work_dir()))
        base = os.path.join(tmp, "view")
        try:
            if row.kind == "image":
                made = strip_image(
                    source,
                    base,
                    row.format,
                    max_pixels=_settings().tip_image_max_pixels,
                    limits=attachment_limits(),
                )
            else:
                made = strip_video(source, base, limits=attachment_limits(), heartbeat=heartbeat)
        except Rejected as exc:
            row.status = AttachmentStatus.REFUSED.value
            row.reason = exc.reason
            row.processed_at = utcnow()
            staged.unlink(missing_ok=True)
            if in_drafts:
                store.delete(draft_key(row.public_id))
            if store.exists(key):
                store.delete(key)
            db.session.flush()
            return
        suffix = os.path.splitext(made.path)[1]
        derivative = _derivative_key(row, tip, suffix)
        store.put_file(derivative, made.path, made.content_type)
        if staged.exists():
            store.adopt_file(key, str(staged), row.sha256, row.size)
        elif in_drafts:
            # The copy fetched above becomes the original (its hash checked on the way),
            # then the draft object goes.
            store.adopt_file(key, source, row.sha256, row.size)
            store.delete(draft_key(row.public_id))
    row.original_key = key
    row.derivative_key = derivative
    row.derivative_type = made.content_type
    row.derivative_size = made.size
    row.derivative_sha256 = made.sha256
    row.width, row.height, row.duration_s = made.width, made.height, made.duration_s
    row.status = AttachmentStatus.READY.value
    row.reason = ""
    row.processed_at = utcnow()
    db.session.flush()


def fail_attachment(row: TipAttachment, error: str) -> None:
    if row.status != AttachmentStatus.QUEUED.value:
        return
    row.status = AttachmentStatus.FAILED.value
    row.reason = error[:2000]


# -- staff ------------------------------------------------------------------------------


def get_attachment_for(user: User, tip_public_id: str, public_id: str) -> TipAttachment:
    """An attachment of a tip ``user`` may handle; NotFound otherwise."""
    tip = get_tip_for(user, tip_public_id)
    row = db.session.scalar(
        select(TipAttachment).where(
            TipAttachment.public_id == public_id, TipAttachment.tip_id == tip.id
        )
    )
    if row is None:
        raise NotFound("No such attachment.")
    return row


def record_original_download(row: TipAttachment, user: User) -> None:
    """The original is evidence: who downloaded which, and its hash, in the audit log."""
    assert row.tip is not None
    if not may_handle(user, row.tip):
        raise PermissionDenied("You may not download this file.")
    if not row.original_key:
        raise NotFound("The original of this file is not stored.")
    record_event(
        "tip.attachment_download",
        agency_id=row.agency_id,
        actor=user,
        object_type="tip_attachment",
        object_id=row.public_id,
        details={"tip": row.tip.public_id, "sha256": row.sha256, "size": row.size},
    )


def retry_attachment(row: TipAttachment, user: User) -> None:
    """Process a failed attachment again (after an outage, or a fixed bug)."""
    from portal.jobs import enqueue

    if row.status != AttachmentStatus.FAILED.value:
        raise Conflict("Only a file whose processing failed can be retried.")
    assert row.tip is not None
    row.status = AttachmentStatus.QUEUED.value
    row.reason = ""
    record_event(
        "tip.attachment_retry",
        agency_id=row.agency_id,
        actor=user,
        object_type="tip_attachment",
        object_id=row.public_id,
        details={"tip": row.tip.public_id},
    )
    db.session.flush()
    enqueue("tips.attachment", attachment_id=row.id)


__all__ = [
    "DRAFT_LIFETIME",
    "RESUMABLE_CHUNK_BYTES",
    "FileRefused",
    "MediaPipelineError",
    "ReceivedPart",
    "Staged",
    "discard_drafts",
    "fail_attachment",
    "form_body_limit",
    "get_attachment_for",
    "keep_drafts",
    "list_drafts",
    "new_draft_secret",
    "open_part",
    "process_attachment",
    "reply_draft_secret",
    "append_to_file",
    "cancel_file",
    "file_offset",
    "get_file",
    "resumable_files_offered",
    "start_file",
    "record_original_download",
    "retry_attachment",
    "stage_parts",
    "sweep_drafts",
    "take_drafts",
]
