"""All models, imported here so that Alembic and the app see the whole schema."""

from portal.models.agencies import Agency
from portal.models.audit import AuditEvent, Outcome
from portal.models.base import Base
from portal.models.cases import Case, CaseAssignment, CaseStatus
from portal.models.jobs import Job, JobStatus
from portal.models.users import ApiToken, Role, StaffSession, User, UserRole

__all__ = [
    "Agency",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Case",
    "CaseAssignment",
    "CaseStatus",
    "Job",
    "JobStatus",
    "Outcome",
    "Role",
    "StaffSession",
    "User",
    "UserRole",
]
