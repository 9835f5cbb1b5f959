"""API operations about the caller's own tokens, and the audit chain's state."""

from __future__ import annotations

from typing import Any

from flask import g

from portal.api import bp
from portal.api.authz import api_requires
from portal.api.schemas import AuditChainSchema, TokenListSchema
from portal.extensions import db
from portal.models import ApiToken
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.audit_chain import verify_chain
from portal.services.authz import Permission
from portal.services.users import list_api_tokens


def _token_json(token: ApiToken) -> dict[str, Any]:
    now = utcnow()
    expired = token.expires_at is not None and token.expires_at <= now
    return {
        "id": token.public_id,
        "name": token.name,
        "scopes": token.scopes,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "state": "revoked" if token.revoked_at else "expired" if expired else "active",
    }


@bp.route("/tokens")
@bp.doc(operationId="listTokens")
@bp.response(200, TokenListSchema, description="The tokens (their secrets are never stored).")
def list_tokens():
    """The caller's own API tokens, with scopes, expiry and last use."""
    return {"tokens": [_token_json(t) for t in list_api_tokens(g.api_user)]}


@bp.route("/audit/verify")
@bp.doc(operationId="verifyAuditChain")
@api_requires(Permission.AUDIT_VIEW)
@bp.response(200, AuditChainSchema, description="The chain's state.")
def audit_verify():
    """Check the audit log's hash chain (admins; audited)."""
    report = verify_chain(db.engine)
    record_event(
        "audit.verify",
        agency_id=g.api_user.agency_id,
        actor=g.api_user,
        object_type="audit_log",
        details={"ok": report.ok, "entries": report.entries},
    )
    db.session.commit()
    return {
        "ok": report.ok,
        "entries": report.entries,
        "head": report.head,
        "broken_at": report.broken_at,
        "reason": report.reason or None,
    }
