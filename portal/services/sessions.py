"""Server-side staff sessions.

The browser's cookie holds a random secret; the database holds its hash and the
session's state. Signing out ends the row, so a copy of the cookie (stolen from a
shared terminal or a proxy log) stops working at that moment. Sessions also end
after a period without activity and after an absolute lifetime.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from portal.extensions import db
from portal.models import StaffSession, User
from portal.models.base import utcnow

# last_seen_at is written at most this often, not on every request.
TOUCH_INTERVAL = timedelta(seconds=60)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_session(user: User, *, client_addr: str | None) -> str:
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        StaffSession(
            user=user,
            token_hash=_hash(secret),
            created_at=now,
            last_seen_at=now,
            client_addr=client_addr,
        )
    )
    user.current_session_id = secret
    return secret


def load_session_user(secret: str, *, idle: timedelta, lifetime: timedelta) -> User | None:
    """The user of a live session, or None (ending the session if it just expired)."""
    if not secret or len(secret) > 128:
        return None
    row = db.session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(secret)))
    if row is None or row.ended_at is not None:
        return None
    now = utcnow()
    reason = None
    if now - row.last_seen_at > idle:
        reason = "idle"
    elif now - row.created_at > lifetime:
        reason = "lifetime"
    elif row.user.is_disabled:
        reason = "disabled"
    if reason:
        row.ended_at = now
        row.ended_reason = reason
        # Committed here, not by the request: it must outlive what follows (see
        # portal/http/transactions.py).
        db.session.commit()
        return None
    if now - row.last_seen_at > TOUCH_INTERVAL:
        row.last_seen_at = now
        # Committed here, not by the request: it must outlive what follows (see
        # portal/http/transactions.py).
        db.session.commit()
    user = row.user
    user.current_session_id = secret
    return user


def end_session(secret: str | None, reason: str = "signed_out") -> None:
    if not secret:
        return
    db.session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == _hash(secret), StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_reason=reason)
    )


def end_all_sessions(user: User, reason: str) -> int:
    """Sign the user out everywhere (password change, disabling, on request)."""
    result = db.session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_reason=reason)
    )
    return result.rowcount  # type: ignore[attr-defined]


def end_other_sessions(user: User, reason: str) -> int:
    """End every session of the user but the one this request runs in, if any."""
    query = update(StaffSession).where(
        StaffSession.user_id == user.id, StaffSession.ended_at.is_(None)
    )
    current = getattr(user, "current_session_id", None)
    if current:
        query = query.where(StaffSession.token_hash != _hash(current))
    result = db.session.execute(query.values(ended_at=utcnow(), ended_reason=reason))
    return result.rowcount  # type: ignore[attr-defined]
