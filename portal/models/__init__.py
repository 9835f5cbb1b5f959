"""All models, imported here so that Alembic and the app see the whole schema."""

from portal.models.agencies import Agency
from portal.models.appeals import Appeal, AppealClip, AppealStatus, PublicState
from portal.models.attachments import PENDING_STATUSES, AttachmentStatus, TipAttachment
from portal.models.audit import AuditEvent, Outcome
from portal.models.base import Base
from portal.models.cases import Case, CaseAssignment, CaseStatus
from portal.models.clips import (
    Approval,
    Clip,
    ClipStatus,
    ClipVersion,
    ProposalKind,
    ProposalStatus,
    RedactionProposal,
    Rendition,
    Upload,
    UploadStatus,
    VersionStatus,
)
from portal.models.jobs import Job, JobStatus
from portal.models.outcomes import (
    AppealDailyViews,
    AppealTotals,
    CaseStatusChange,
    SolvingTip,
    TipLead,
)
from portal.models.security import MfaRecoveryCode, SignInThrottle, SpentChallenge
from portal.models.tips import MessageAuthor, Tip, TipMessage, TipPriority, TipStatus
from portal.models.triage import TipNote, TipRead, TipTag
from portal.models.users import ApiToken, Role, StaffSession, User, UserRole
from portal.publishing.caption_models import CaptionTemplate
from portal.publishing.models import (
    Channel,
    ChannelStatus,
    Delivery,
    DeliveryStatus,
    Post,
    PostAppeal,
    PostStatus,
)

__all__ = [
    "CaptionTemplate",
    "PostStatus",
    "PostAppeal",
    "Post",
    "DeliveryStatus",
    "Delivery",
    "ChannelStatus",
    "Channel",
    "Agency",
    "ApiToken",
    "Appeal",
    "AppealClip",
    "AppealDailyViews",
    "AppealTotals",
    "AppealStatus",
    "PublicState",
    "PENDING_STATUSES",
    "Approval",
    "AttachmentStatus",
    "AuditEvent",
    "Base",
    "Case",
    "CaseAssignment",
    "CaseStatusChange",
    "CaseStatus",
    "Clip",
    "ClipStatus",
    "ClipVersion",
    "ProposalKind",
    "ProposalStatus",
    "RedactionProposal",
    "Job",
    "JobStatus",
    "MessageAuthor",
    "MfaRecoveryCode",
    "Outcome",
    "Rendition",
    "Role",
    "SignInThrottle",
    "SolvingTip",
    "SpentChallenge",
    "StaffSession",
    "Tip",
    "TipLead",
    "TipAttachment",
    "TipMessage",
    "TipNote",
    "TipPriority",
    "TipRead",
    "TipStatus",
    "TipTag",
    "Upload",
    "UploadStatus",
    "User",
    "UserRole",
    "VersionStatus",
]
