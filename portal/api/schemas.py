"""The request and response schemas of /api/v1: one declaration per body, from which
both the validation and the OpenAPI document are made (flask-smorest, apispec).

Every text field is a :class:`Text`, which calls :func:`portal.services.text.clean_text`:
the API and the staff forms refuse and normalise text the same way. Requests refuse
unknown keys (``additionalProperties: false``), so a misspelt field is an error and
not silently dropped.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from media_pipeline.plan import (
    AUDIO_EFFECTS,
    EFFECTS,
    MAX_AUDIO_RANGES,
    MAX_KEYFRAMES,
    MAX_REGIONS,
    MIN_BOX_PX,
    SOURCE_PATTERN,
)
from portal.models import Case, CaseStatus, Role, TipPriority, TipStatus
from portal.publishing.services.posts import CAPTION_MAX_CHARS
from portal.services.clips import APPROVAL_CHECKLIST
from portal.services.errors import ValidationFailed
from portal.services.text import clean_text

PROBLEM_JSON = "application/problem+json"

# The range a case's date may fall in. Outside it a date is a typo, and near year 1
# or 9999 turning an offset into UTC overflows Python's datetime.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

# Coordinates and times are JSON numbers; these bounds keep a client's 1e308 from
# reaching float arithmetic as inf.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_PIXELS = 100_000


class Text(fields.String):
    """A text field checked by :func:`clean_text` (the one text validation)."""

    def __init__(
        self,
        *,
        max_length: int,
        multiline: bool = False,
        blank: bool = True,
        **kwargs: Any,
    ) -> None:
        metadata = dict(kwargs.pop("metadata", {}))
        metadata.setdefault("maxLength", max_length)
        if not blank:
            # At least one character that is not white space (clean_text strips it).
            metadata.setdefault("minLength", 1)
            metadata.setdefault("pattern", r"\S")
        super().__init__(metadata=metadata, **kwargs)
        self.max_length = max_length
        self.multiline = multiline
        self.blank = blank

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return clean_text(
                value,
                field=attr or self.name or "value",
                max_length=self.max_length,
                multiline=self.multiline,
                required=not self.blank,
            )
        except ValidationFailed as exc:
            raise ma.ValidationError(exc.message) from None


def _column_length(column: str) -> int:
    """The length of a ``String`` column of ``cases``: the database decides it."""
    length = Case.__table__.c[column].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


class Number(fields.Float):
    """A finite JSON number (never a boolean, never NaN or infinity)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        try:
            number = float(value)
        except OverflowError:  # an integer of 400 digits
            raise ma.ValidationError("Not a valid number.") from None
        if not math.isfinite(number):
            raise ma.ValidationError("Not a valid number.")
        return super()._deserialize(number, attr, data, **kwargs)


class WholeNumber(fields.Integer):
    """A JSON integer (never a boolean, never 1.5)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Flag(fields.Boolean):
    """JSON true or false (never 1, "yes" or "on")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Moment(fields.Field):
    """An ISO 8601 date and time. Without an offset it is taken as UTC; it is stored
    in UTC and must fall between 1900 and 2100."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 64:
            raise ma.ValidationError("Not an ISO 8601 date and time.")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ma.ValidationError("Not an ISO 8601 date and time.") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError("Must be between 1900 and 2100.") from None
        if not EARLIEST <= parsed < LATEST:
            raise ma.ValidationError("Must be between 1900 and 2100.")
        return parsed

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return value


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


# -- problems -------------------------------------------------------------------------


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details; ``field`` names the offending input."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    field = fields.String()


# -- cases ----------------------------------------------------------------------------

STATUSES = [s.value for s in CaseStatus]


def _case_fields(*, creating: bool) -> dict[str, fields.Field]:
    return {
        "number": Text(max_length=_column_length("number"), blank=False, required=creating),
        "title": Text(max_length=_column_length("title"), blank=False, required=creating),
        "offense": Text(max_length=_column_length("offense")),
        "occurred_at": Moment(allow_none=True),
        "location_address": Text(max_length=_column_length("location_address")),
        "latitude": Number(allow_none=True, validate=validate.Range(-90, 90)),
        "longitude": Number(allow_none=True, validate=validate.Range(-180, 180)),
        "public_summary": Text(max_length=4000, multiline=True),
        "internal_notes": Text(max_length=20000, multiline=True),
        # A new case is open; a client may say so, but not open it as solved.
        "status": fields.String(validate=validate.OneOf(["open"] if creating else STATUSES)),
    }


class _CaseInput(Strict):
    #: Added to the schema's JSON Schema (see portal.api.SchemaExtras): the rule of
    #: coordinates_together, so that the document refuses what the validation refuses.
    OPENAPI_EXTRA = {"dependentRequired": {"latitude": ["longitude"], "longitude": ["latitude"]}}

    @ma.validates_schema
    def coordinates_together(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("latitude" in data) != ("longitude" in data):
            missing = "longitude" if "latitude" in data else "latitude"
            raise ma.ValidationError("Give latitude and longitude together.", missing)


CaseCreateSchema = _CaseInput.from_dict(_case_fields(creating=True), name="CaseCreate")
CaseUpdateSchema = _CaseInput.from_dict(_case_fields(creating=False), name="CaseUpdate")
CaseCreateSchema.__doc__ = "A new case (it is open; status may only say so)."
CaseUpdateSchema.__doc__ = "The fields to change; the others stay as they are."


class CaseQuerySchema(ma.Schema):
    q = Text(max_length=100, load_default="")
    status = fields.String(validate=validate.OneOf(STATUSES))
    after = Text(max_length=32, metadata={"description": "The `next` cursor of the previous page."})
    limit = fields.Integer(load_default=25, validate=validate.Range(1, 100))


class CaseSchema(ma.Schema):
    id = fields.String(required=True)
    number = fields.String(required=True)
    title = fields.String(required=True)
    offense = fields.String(required=True)
    occurred_at = Moment(allow_none=True, required=True)
    location_address = fields.String(required=True)
    latitude = fields.Float(allow_none=True, required=True)
    longitude = fields.Float(allow_none=True, required=True)
    public_summary = fields.String(required=True)
    internal_notes = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    detectives = fields.List(fields.String(), required=True)
    created_at = Moment(required=True)


class ClipLinkSchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True)
    url = fields.String(required=True)


class CaseDetailSchema(CaseSchema):
    clips = fields.List(fields.Nested(ClipLinkSchema), required=True)


class CaseListSchema(ma.Schema):
    cases = fields.List(fields.Nested(CaseSchema), required=True)
    next = fields.String(allow_none=True, required=True)


# -- clips, versions, approvals ---------------------------------------------------------


class ClipAttachSchema(Strict):
    upload_id = Text(max_length=32, blank=False, required=True)


class ClipFileSchema(ma.Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class BlurRegionSchema(Strict):
    x = WholeNumber(validate=validate.Range(0, MAX_PIXELS))
    y = WholeNumber(validate=validate.Range(0, MAX_PIXELS))
    width = WholeNumber(validate=validate.Range(4, MAX_PIXELS))
    height = WholeNumber(validate=validate.Range(4, MAX_PIXELS))
    start = Number(allow_none=True, validate=validate.Range(0, MAX_SECONDS))
    end = Number(allow_none=True, validate=validate.Range(0, MAX_SECONDS))
    whole_frame = Flag()


class KeyframeSchema(Strict):
    t = Number(required=True, validate=validate.Range(0, MAX_SECONDS))
    x = WholeNumber(required=True, validate=validate.Range(0, MAX_PIXELS))
    y = WholeNumber(required=True, validate=validate.Range(0, MAX_PIXELS))
    w = WholeNumber(required=True, validate=validate.Range(MIN_BOX_PX, MAX_PIXELS))
    h = WholeNumber(required=True, validate=validate.Range(MIN_BOX_PX, MAX_PIXELS))


class TrackSchema(Strict):
    """A region that moves: the box at each keyframe, linear in between (source
    seconds and pixels). One keyframe is a still box; ``whole_frame`` has none."""

    keyframes = fields.List(
        fields.Nested(KeyframeSchema), validate=validate.Length(max=MAX_KEYFRAMES)
    )
    start = Number(allow_none=True, validate=validate.Range(0, MAX_SECONDS))
    end = Number(allow_none=True, validate=validate.Range(0, MAX_SECONDS))
    effect = fields.String(validate=validate.OneOf(EFFECTS))
    source = Text(
        max_length=100,
        validate=validate.Regexp(SOURCE_PATTERN),
        metadata={
            "description": 'Who drew it: "manual", or an accepted proposal, '
            '"suggested:DETECTOR@VERSION" or "tracked:TRACKER@VERSION".'
        },
    )
    whole_frame = Flag()


class AudioRangeSchema(Strict):
    start = Number(required=True, validate=validate.Range(0, MAX_SECONDS))
    end = Number(required=True, validate=validate.Range(0, MAX_SECONDS))
    effect = fields.String(validate=validate.OneOf(AUDIO_EFFECTS))


class CaptionSchema(Strict):
    lines = fields.List(
        Text(max_length=80, blank=False), required=True, validate=validate.Length(1, 4)
    )


class EditPlanSchema(Strict):
    """Times in seconds on the source timeline (poster_time: into the edited clip);
    rectangles in source display pixels."""

    trim_start = Number(allow_none=True, validate=validate.Range(0, MAX_SECONDS))
    trim_end = Number(allow_none=True, validate=validate.Range(0, MAX_SECONDS))
    blur = fields.List(
        fields.Nested(BlurRegionSchema),
        validate=validate.Length(max=MAX_REGIONS),
        metadata={"description": "Still rectangles (version 1); see regions."},
    )
    regions = fields.List(fields.Nested(TrackSchema), validate=validate.Length(max=MAX_REGIONS))
    audio = fields.String(validate=validate.OneOf(["keep", "mute", "strip"]))
    audio_ranges = fields.List(
        fields.Nested(AudioRangeSchema), validate=validate.Length(max=MAX_AUDIO_RANGES)
    )
    caption = fields.Nested(CaptionSchema, allow_none=True)
    watermark = Flag(metadata={"description": "Add the agency's watermark."})
    poster_time = Number(allow_none=True, validate=validate.Range(0, MAX_SECONDS))


class VersionCreateSchema(Strict):
    plan = fields.Nested(EditPlanSchema, required=True)


ChecklistSchema = Strict.from_dict(
    {key: Flag(metadata={"description": label}) for key, label in APPROVAL_CHECKLIST.items()},
    name="Checklist",
)


class ApprovalCreateSchema(Strict):
    checklist = fields.Nested(ChecklistSchema, required=True)


class RevocationSchema(Strict):
    reason = Text(max_length=2000, multiline=True, blank=False, required=True)


class RenditionSchema(ma.Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)
    url = fields.String(required=True)
    width = fields.Integer(allow_none=True, required=True)
    height = fields.Integer(allow_none=True, required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    content_type = fields.String(required=True)


class VersionStatusSchema(ma.Schema):
    id = fields.String(required=True)
    number = fields.Integer(required=True)
    status = fields.String(required=True)
    error = fields.String(required=True)
    approved = fields.Boolean(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    created_by = fields.String(required=True)
    plan = fields.Dict(required=True)
    poster_url = fields.String(allow_none=True, required=True)
    renditions = fields.List(fields.Nested(RenditionSchema), required=True)


class JobStatusSchema(ma.Schema):
    kind = fields.String(required=True)
    version = fields.Integer(allow_none=True, required=True)
    status = fields.String(required=True)
    progress = fields.Float(required=True)
    stage = fields.String(allow_none=True, required=True)
    error = fields.String(required=True)
    attempts = fields.Integer(required=True)
    max_attempts = fields.Integer(required=True)


class ClipSchema(ma.Schema):
    id = fields.String(required=True)
    case = fields.String(required=True)
    status = fields.String(required=True)
    rejection_reason = fields.String(required=True)
    filename = fields.String(required=True)
    sha256 = fields.String(required=True)
    size = fields.Integer(required=True)
    duration_s = fields.Float(allow_none=True, required=True)
    width = fields.Integer(allow_none=True, required=True)
    height = fields.Integer(allow_none=True, required=True)
    frame_rate = fields.Float(allow_none=True, required=True)
    proxy_url = fields.String(allow_none=True, required=True)
    probe = fields.Dict(required=True)


class ClipStatusSchema(ma.Schema):
    clip = fields.Nested(ClipSchema, required=True)
    jobs = fields.List(fields.Nested(JobStatusSchema), required=True)
    versions = fields.List(fields.Nested(VersionStatusSchema), required=True)


class RetriedJobSchema(ma.Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "The job's name."})


class ClipRetriedSchema(ClipStatusSchema):
    retried = fields.List(fields.Nested(RetriedJobSchema), required=True)


class VersionCreatedSchema(ma.Schema):
    id = fields.String(required=True)
    number = fields.Integer(required=True)
    status = fields.String(required=True)
    clip = fields.String(required=True, metadata={"description": "The clip's address."})


class ApprovalSchema(ma.Schema):
    version = fields.String(required=True)
    approved_by = fields.String(required=True)
    approved_at = Moment(required=True)
    renditions_digest = fields.String(required=True)


# -- the caller, tokens, audit ----------------------------------------------------------

ROLES = [role.value for role in Role]


class MeSchema(ma.Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)
    agency = fields.String(required=True)


class TokenSchema(ma.Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    scopes = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)
    created_at = Moment(required=True)
    expires_at = Moment(allow_none=True, required=True)
    last_used_at = Moment(allow_none=True, required=True)
    state = fields.String(required=True, validate=validate.OneOf(["active", "expired", "revoked"]))


class TokenListSchema(ma.Schema):
    tokens = fields.List(fields.Nested(TokenSchema), required=True)


class AuditChainSchema(ma.Schema):
    ok = fields.Boolean(required=True)
    entries = fields.Integer(required=True)
    head = fields.String(required=True)
    broken_at = fields.Integer(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True)


# -- tips: the queue, triage, the conversation -----------------------------------------

TIP_STATUSES = [status.value for status in TipStatus]
TIP_PRIORITIES = [priority.name.lower() for priority in TipPriority]
TIP_SORTS = ["newest", "oldest", "priority", "waiting"]


class TipQuerySchema(ma.Schema):
    case = Text(max_length=64, metadata={"description": "A case's id."})
    appeal = Text(max_length=64, metadata={"description": "An appeal's id."})
    status = fields.String(validate=validate.OneOf(TIP_STATUSES))
    assignee = Text(
        max_length=64, metadata={"description": 'A user\'s id, "me", or "none" (nobody).'}
    )
    channel = Text(max_length=16, metadata={"description": "Where the tipster came from."})
    unanswered = fields.Boolean(
        metadata={"description": "Only tips whose tipster waits for a staff reply."}
    )
    overdue = fields.Boolean(
        metadata={"description": "Only tips with no staff reply within the agency's target."}
    )
    attachments = fields.Boolean(
        metadata={"description": "Only tips with a photo or video sent by the tipster."}
    )
    q = Text(max_length=200, metadata={"description": "Words that must all occur."})
    sort = fields.String(validate=validate.OneOf(TIP_SORTS), load_default="newest")
    after = Text(max_length=64, metadata={"description": "The `next` cursor of the previous page."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))


class TipSummarySchema(ma.Schema):
    id = fields.String(required=True)
    number = fields.String(required=True)
    case = fields.String(allow_none=True, required=True)
    appeal = fields.String(allow_none=True, required=True)
    channel = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(TIP_STATUSES))
    priority = fields.String(required=True, validate=validate.OneOf(TIP_PRIORITIES))
    assignee = fields.String(allow_none=True, required=True)
    version = fields.Integer(required=True)
    created_at = Moment(required=True)
    awaiting_since = Moment(allow_none=True, required=True)
    reply_waiting = fields.Boolean(required=True)
    overdue = fields.Boolean(required=True)
    unread = fields.Boolean(required=True)
    excerpt = fields.String(required=True)


class TipListSchema(ma.Schema):
    tips = fields.List(fields.Nested(TipSummarySchema), required=True)
    next = fields.String(allow_none=True, required=True)


# -- the public site: appeals, tips, receipts --------------------------------------------


class PublicAppealQuerySchema(ma.Schema):
    q = Text(max_length=100, load_default="", metadata={"description": "Place or offence."})
    agency = Text(max_length=64, load_default="", metadata={"description": "An agency's slug."})


class PublicAgencySchema(ma.Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)


class PublicVideoSchema(ma.Schema):
    name = fields.String(required=True)
    url = fields.String(required=True)
    width = fields.Integer(allow_none=True, required=True)
    height = fields.Integer(allow_none=True, required=True)
    content_type = fields.String(required=True)


class PublicClipSchema(ma.Schema):
    version = fields.String(required=True)
    duration_s = fields.Float(allow_none=True, required=True)
    poster_url = fields.String(allow_none=True, required=True)
    videos = fields.List(fields.Nested(PublicVideoSchema), required=True)


class PublicAppealSummarySchema(ma.Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    question = fields.String(required=True)
    case_number = fields.String(required=True)
    offense = fields.String(required=True)
    place = fields.String(required=True)
    agency = fields.Nested(PublicAgencySchema, required=True)
    published_at = Moment(allow_none=True, required=True)
    solved = fields.Boolean(required=True)
    url = fields.String(required=True, metadata={"description": "The appeal's page."})


class PublicAppealSchema(PublicAppealSummarySchema):
    summary = fields.String(required=True)
    occurred_at = Moment(allow_none=True, required=True)
    clips = fields.List(fields.Nested(PublicClipSchema), required=True)


class PublicAppealListSchema(ma.Schema):
    """This week's #TattletaleTuesday appeals, every other open one, solved ones."""

    this_week = fields.List(fields.Nested(PublicAppealSummarySchema), required=True)
    open = fields.List(fields.Nested(PublicAppealSummarySchema), required=True)
    solved = fields.List(fields.Nested(PublicAppealSummarySchema), required=True)


class TipCreateSchema(Strict):
    """A tip, with the same fields and limits as the site's tip form."""

    body = Text(max_length=10_000, multiline=True, blank=False, required=True)
    seen_when = Text(max_length=200)
    name = Text(max_length=200)
    phone = Text(max_length=30)
    email = Text(max_length=254)
    notify_by_email = Flag()
    via = Text(max_length=16, metadata={"description": "The channel of the link followed."})


class GeneralTipCreateSchema(TipCreateSchema):
    """A tip to an agency about no appeal in particular."""

    agency = Text(max_length=64, blank=False, required=True, metadata={"description": "Slug."})


class ChallengeQuerySchema(ma.Schema):
    purpose = fields.String(required=True, validate=validate.OneOf(["tip", "reply"]))


class ChallengeSchema(ma.Schema):
    """Solve by finding a decimal counter such that SHA-256 of
    `challenge + ":" + counter` (UTF-8) starts with `bits` zero bits; send
    `challenge:counter` in X-Proof-Of-Work. Each challenge is accepted once."""

    challenge = fields.String(required=True)
    bits = fields.Integer(required=True)
    algorithm = fields.String(required=True)
    expires_at = Moment(required=True)


class ReceiptSchema(ma.Schema):
    """Shown once: the passphrase is stored only as a keyed hash and cannot be
    recovered."""

    number = fields.String(required=True)
    passphrase = fields.String(required=True)
    messages = fields.String(required=True, metadata={"description": "The tip's thread."})


class TipMessageSchema(ma.Schema):
    author = fields.String(required=True, validate=validate.OneOf(["tipster", "staff"]))
    author_name = fields.String(allow_none=True, required=True)
    body = fields.String(required=True)
    created_at = Moment(required=True)


class PublicTipMessageSchema(ma.Schema):
    """A message of the tip's thread, as the tipster sees it: no staff names."""

    author = fields.String(required=True, validate=validate.OneOf(["tipster", "staff"]))
    body = fields.String(required=True)
    created_at = Moment(required=True)


class TipThreadSchema(ma.Schema):
    number = fields.String(required=True)
    messages = fields.List(fields.Nested(PublicTipMessageSchema), required=True)


# -- publication (staff) -------------------------------------------------------------------


class WithdrawalSchema(Strict):
    reason = Text(max_length=2000, multiline=True, blank=False, required=True)


class PublicationSchema(ma.Schema):
    appeal = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["published"]))
    published_at = Moment(required=True)
    url = fields.String(required=True, metadata={"description": "The public page."})


class TipNoteSchema(ma.Schema):
    author = fields.String(required=True)
    body = fields.String(required=True)
    created_at = Moment(required=True)


class TipDetailSchema(TipSummarySchema):
    body = fields.String(required=True)
    seen_when = fields.String(required=True)
    anonymous = fields.Boolean(required=True)
    tags = fields.List(fields.String(), required=True)
    linked_case = fields.String(allow_none=True, required=True)
    duplicate_of = fields.String(allow_none=True, required=True)
    messages = fields.List(fields.Nested(TipMessageSchema), required=True)
    notes = fields.List(fields.Nested(TipNoteSchema), required=True)


class TipPatchSchema(Strict):
    """The triage fields to change, made against ``version`` (the tip's version when
    it was read): a tip changed since answers 409 and nothing is written."""

    version = WholeNumber(required=True, validate=validate.Range(1, 2**31 - 1))
    status = fields.String(validate=validate.OneOf(TIP_STATUSES))
    priority = fields.String(validate=validate.OneOf(TIP_PRIORITIES))
    assignee = Text(max_length=64, allow_none=True, metadata={"description": "null: nobody."})
    tags = fields.List(Text(max_length=40), validate=validate.Length(max=10))
    linked_case = Text(max_length=64, allow_none=True)
    duplicate_of = Text(
        max_length=64,
        allow_none=True,
        metadata={"description": "The number or id of the tip this one repeats."},
    )
    note = Text(max_length=5000, multiline=True, metadata={"description": "An internal note."})


class TipMessageCreateSchema(Strict):
    body = Text(max_length=5000, multiline=True, blank=False, required=True)


# -- the case's life ---------------------------------------------------------------------


class CaseSolveSchema(Strict):
    """Solving a case: why, whether tips led to it, and which (tips of this case)."""

    reason = Text(max_length=2000, multiline=True, blank=False, required=True)
    tips_led = Flag(required=True)
    tips = fields.List(
        fields.String(validate=validate.Length(max=64)),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={"description": "Ids of the case's tips that led to it (only with tips_led)."},
    )
    seen_status = fields.String(
        validate=validate.OneOf(STATUSES),
        metadata={"description": "The status the client last saw: 409 if it changed since."},
    )


class CaseStatusChangeSchema(Strict):
    """Closing or reopening a case (solving has its own operation)."""

    status = fields.String(required=True, validate=validate.OneOf(["closed", "reopened"]))
    reason = Text(max_length=2000, multiline=True, blank=False, required=True)
    seen_status = fields.String(validate=validate.OneOf(STATUSES))


class StatusChangeSchema(ma.Schema):
    from_status = fields.String(required=True)
    to_status = fields.String(required=True)
    reason = fields.String(required=True)
    changed_by = fields.String(allow_none=True, required=True)
    changed_at = Moment(required=True)
    tips_led = fields.Boolean(allow_none=True, required=True)
    tips = fields.List(fields.String(), required=True)


class CaseLifeSchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    history = fields.List(fields.Nested(StatusChangeSchema), required=True)


# -- outcomes ---------------------------------------------------------------------------


class OutcomesQuerySchema(ma.Schema):
    quarter = Text(
        max_length=7,
        load_default="all",
        metadata={"description": "Appeals published in this quarter (`2026-Q4`), or `all`."},
    )


class AppealOutcomeSchema(ma.Schema):
    appeal = fields.String(required=True)
    title = fields.String(required=True)
    case_number = fields.String(required=True)
    published_at = Moment(allow_none=True, required=True)
    page_views = fields.Integer(required=True)
    tips = fields.Integer(required=True)
    tips_by_channel = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    leads = fields.Integer(required=True)
    solved = fields.Boolean(required=True)
    solved_with_tips = fields.Boolean(required=True)
    hours_to_first_tip = fields.Float(allow_none=True, required=True)
    hours_to_first_lead = fields.Float(allow_none=True, required=True)


class MonthOutcomeSchema(ma.Schema):
    month = fields.String(required=True)
    solved = fields.Integer(required=True)
    solved_with_tips = fields.Integer(required=True)


class PostOutcomeSchema(ma.Schema):
    post = fields.String(required=True)
    sent_at = Moment(required=True)
    appeals = fields.List(fields.String(), required=True)
    networks = fields.List(fields.String(), required=True)
    page_views = fields.Integer(required=True)
    tips = fields.Integer(required=True)
    tips_by_channel = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    leads = fields.Integer(required=True)
    solved = fields.Integer(required=True, metadata={"description": "Its appeals' cases solved."})
    hours_to_first_tip = fields.Float(allow_none=True, required=True)
    hours_to_first_lead = fields.Float(allow_none=True, required=True)


class OutcomesSchema(ma.Schema):
    """The agency's outcomes per appeal and per weekly post (what the post's appeals
    led to in the week after it first went out)."""

    period = fields.String(required=True)
    appeals = fields.List(fields.Nested(AppealOutcomeSchema), required=True)
    posts = fields.List(fields.Nested(PostOutcomeSchema), required=True)
    months = fields.List(fields.Nested(MonthOutcomeSchema), required=True)


# -- posts and channels (publishing) -------------------------------------------------------

POST_STATUSES = ["draft", "scheduled", "publishing", "done", "cancelled"]
DELIVERY_STATUSES = [
    "queued",
    "sending",
    "retrying",
    "sent",
    "failed",
    "needs_attention",
    "cancelled",
    "removed",
]


class PostQuerySchema(ma.Schema):
    status = fields.String(validate=validate.OneOf(POST_STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 100_000))


class PostCreateSchema(Strict):
    """A post of published appeals at a time, to channels (the portal's own page and
    feed are always added). ``schedule`` passes preflight at once; ``now`` sends it."""

    appeals = fields.List(
        Text(max_length=64, blank=False), required=True, validate=validate.Length(min=1, max=10)
    )
    slot_at = Moment(required=True)
    channels = fields.List(
        Text(max_length=64, blank=False), load_default=list, validate=validate.Length(max=20)
    )
    schedule = Flag(load_default=True)
    now = Flag(load_default=False)


class CaptionPatchSchema(Strict):
    """A caption a person wrote for one of the post's channels. Checked when saved as
    the staff post page's caption edit is: counted as that network counts it."""

    channel = fields.String(
        required=True,
        metadata={"description": "The channel's id, as in the post's ``deliveries[].channel``."},
    )
    text = Text(
        max_length=CAPTION_MAX_CHARS,
        multiline=True,
        blank=False,
        required=True,
        metadata={
            "description": "The whole caption, sent as written (never cut). Refused (422, "
            "``field`` ``captions.<n>.text``) when the network would not take it, with "
            "by how much.",
        },
    )


class PostPatchSchema(Strict):
    """Move a draft or scheduled post (``slot_at``), or ``action`` it: ``schedule``
    (pass preflight) or ``now`` (send at once); rewrite a scheduled post's caption on
    some of its channels (``captions``). Done in that order (``slot_at``, ``schedule``,
    ``captions``, ``now``) and all or nothing: a refusal saves none of it.

    A caption changes only while the post is scheduled and that channel's delivery
    has not started: once it is sending or sent, 409. The portal's own pages show the
    appeal itself and have no caption (409)."""

    slot_at = Moment()
    action = fields.String(validate=validate.OneOf(["schedule", "now"]))
    captions = fields.List(
        fields.Nested(CaptionPatchSchema), validate=validate.Length(min=1, max=20)
    )

    @ma.validates("captions")
    def _one_caption_per_channel(self, value: list[dict[str, str]], **kwargs: Any) -> None:
        channels = [item["channel"] for item in value]
        if len(set(channels)) != len(channels):
            raise ma.ValidationError("Give each channel at most one caption.")


class DeliverySchema(ma.Schema):
    id = fields.String(required=True)
    channel = fields.String(required=True)
    channel_name = fields.String(required=True)
    network = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATUSES))
    step = fields.String(required=True, metadata={"description": "Where sending is."})
    attempts = fields.Integer(required=True)
    next_attempt_at = Moment(allow_none=True, required=True)
    reason = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "The caption sent."})
    url = fields.String(required=True, metadata={"description": "Where the post landed."})
    sent_at = Moment(allow_none=True, required=True)
    solved_at = Moment(allow_none=True, required=True)
    removed_at = Moment(allow_none=True, required=True)


class PostSchema(ma.Schema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(POST_STATUSES))
    status_reason = fields.String(required=True)
    slot_at = Moment(required=True)
    appeals = fields.List(fields.String(), required=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)


class PostListSchema(ma.Schema):
    posts = fields.List(fields.Nested(PostSchema), required=True)
    total = fields.Integer(required=True)


class ScheduleSchema(ma.Schema):
    posts = fields.List(fields.Nested(PostSchema), required=True)


class ChannelSchema(ma.Schema):
    """A connected account. Never its credentials, nor its settings (a webhook's
    address can itself be a secret)."""

    id = fields.String(required=True)
    network = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(["connected", "needs_reconnect", "disconnected"])
    )
    status_reason = fields.String(required=True)


class ChannelListSchema(ma.Schema):
    channels = fields.List(fields.Nested(ChannelSchema), required=True)
