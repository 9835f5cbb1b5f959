"""Who may do what, decided in one place for pages and API alike. Deny by default.

A permission names an action; ``ROLE_PERMISSIONS`` says which roles hold it. Actions
on a case additionally need membership of that case (its creator or an assigned
detective), except for the permissions of the roles that oversee every case of their
agency (``AGENCY_WIDE_ROLES``).

The exemption belongs to the role, not to the user: an officer who is also a
supervisor oversees every case as a supervisor (views it, approves its versions)
but edits, uploads into and downloads the originals of only the cases they work on.
Otherwise holding a second role would quietly widen what the first one allows.
"""

from __future__ import annotations

import enum
from typing import Any

from portal.models import Case, Role, User


class Permission(enum.StrEnum):
    CASE_VIEW = "case.view"
    CASE_CREATE = "case.create"
    CASE_EDIT = "case.edit"
    CLIP_UPLOAD = "clip.upload"
    CLIP_EDIT = "clip.edit"
    EVIDENCE_DOWNLOAD = "evidence.download"
    VERSION_APPROVE = "version.approve"
    TIP_TRIAGE = "tip.triage"
    USER_MANAGE = "user.manage"
    AUDIT_VIEW = "audit.view"
    JOB_VIEW = "job.view"
    EVIDENCE_DELETE = "evidence.delete"
    APPEAL_PUBLISH = "appeal.publish"
    # Posts of appeals to the agency's channels: create, schedule, send now, cancel.
    POST_MANAGE = "post.manage"
    # The agency's outcomes: counts only, nothing that identifies a tipster.
    OUTCOME_VIEW = "outcome.view"
    # Connect, test and disconnect the agency's social-network channels (their tokens).
    CHANNEL_MANAGE = "channel.manage"
    # Hide, delete or answer a public comment under the agency's post, on the network
    # (together with tip.triage on the tip's case: the tip must be one's own to handle).
    COMMENT_MODERATE = "comment.moderate"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OFFICER: frozenset(
        {
            Permission.CASE_VIEW,
            Permission.CASE_CREATE,
            Permission.CASE_EDIT,
            Permission.CLIP_UPLOAD,
            Permission.CLIP_EDIT,
            Permission.EVIDENCE_DOWNLOAD,
            Permission.JOB_VIEW,
        }
    ),
    Role.DETECTIVE: frozenset(
        {
            Permission.CASE_VIEW,
            Permission.CASE_CREATE,
            Permission.CASE_EDIT,
            Permission.CLIP_UPLOAD,
            Permission.CLIP_EDIT,
            Permission.EVIDENCE_DOWNLOAD,
            Permission.TIP_TRIAGE,
            Permission.JOB_VIEW,
        }
    ),
    Role.SUPERVISOR: frozenset(
        {
            Permission.CASE_VIEW,
            Permission.VERSION_APPROVE,
            Permission.APPEAL_PUBLISH,
            Permission.POST_MANAGE,
            Permission.COMMENT_MODERATE,
            Permission.TIP_TRIAGE,
            Permission.JOB_VIEW,
            Permission.OUTCOME_VIEW,
        }
    ),
    Role.COORDINATOR: frozenset(
        {
            Permission.CASE_VIEW,
            Permission.APPEAL_PUBLISH,
            Permission.POST_MANAGE,
            Permission.COMMENT_MODERATE,
            Permission.OUTCOME_VIEW,
        }
    ),
    Role.ADMIN: frozenset(
        {
            Permission.CASE_VIEW,
            Permission.USER_MANAGE,
            Permission.AUDIT_VIEW,
            Permission.JOB_VIEW,
            Permission.EVIDENCE_DELETE,
            Permission.OUTCOME_VIEW,
            Permission.CHANNEL_MANAGE,
        }
    ),
}

# Roles whose permissions apply to every case of their agency, member or not.
AGENCY_WIDE_ROLES = frozenset({Role.SUPERVISOR, Role.COORDINATOR, Role.ADMIN})


def permissions_of(user: User) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for role in user.roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def is_case_member(user: User, case: Case) -> bool:
    if case.created_by_id == user.id:
        return True
    return any(a.user_id == user.id for a in case.assignments)


def can(user: Any, permission: Permission, obj: object | None = None) -> bool:
    """True when ``user`` may perform ``permission`` (on ``obj`` when given)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not isinstance(user, User) or user.is_disabled:
        return False
    if permission not in permissions_of(user):
        return False
    if obj is None:
        return True
    if isinstance(obj, Case):
        if obj.agency_id != user.agency_id:
            return False
        # Only the roles that grant this permission count, each on its own terms.
        granting = {role for role in user.roles if permission in ROLE_PERMISSIONS.get(role, ())}
        return bool(granting & AGENCY_WIDE_ROLES) or is_case_member(user, obj)
    # An object type this module does not know how to judge: deny.
    return False
