"""Staff accounts: creation, sign-in, disabling, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, ApiToken, Outcome, Role, User, UserRole
from portal.models.base import utcnow
from portal.services import throttle
from portal.services.audit import record_event
from portal.services.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    ValidationFailed,
)
from portal.services.passwords import hash_password, needs_rehash, verify_password
from portal.services.sessions import end_all_sessions, end_session
from portal.services.text import clean_text

# A marker that makes leaked tokens easy to find with secret scanners; not a secret.
TOKEN_PREFIX = "tt_"  # noqa: S105


def normalize_email(email: str) -> str:
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"Not a valid e-mail address: {exc}", field="email") from None
    return result.normalized.lower()


def parse_roles(names: Iterable[str]) -> set[Role]:
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise ValidationFailed(
                f"Unknown role {name!r}; roles are: {valid}", field="roles"
            ) from None
    if not roles:
        raise ValidationFailed("A staff account needs at least one role.", field="roles")
    return roles


def get_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def create_user(
    agency: Agency,
    email: str,
    password: str,
    roles: Iterable[Role],
    *,
    display_name: str = "",
    created_by: User | None = None,
) -> User:
    email = normalize_email(email)
    if get_user_by_email(email) is not None:
        raise Conflict(f"An account for {email} already exists.", field="email")
    role_set = set(roles)
    if not role_set:
        raise ValidationFailed("A staff account needs at least one role.", field="roles")
    user = User(
        agency=agency,
        email=email,
        display_name=display_name or email.split("@")[0],
        password_hash=hash_password(password, user_inputs=(email, display_name)),
        role_rows=[UserRole(role=role.value) for role in sorted(role_set)],
    )
    db.session.add(user)
    db.session.flush()
    record_event(
        "user.create",
        agency_id=user.agency_id,
        actor=created_by,
        object_type="user",
        object_id=user.public_id,
        details={"email": email, "roles": sorted(r.value for r in role_set)},
    )
    return user


def authenticate(email: str, password: str, *, client_addr: str | None) -> User:
    """Check a sign-in attempt, audit it either way, and return the user or raise.

    The message is the same for every failure so that it does not reveal which
    addresses have accounts; the audit log records the real reason.
    """
    try:
        normalized = normalize_email(email)
    except ValidationFailed:
        normalized = email.strip().lower()[:254]
    user = get_user_by_email(normalized)
    keys = throttle.keys_for(normalized, client_addr)
    try:
        # Before the password is even looked at: a locked key learns nothing.
        throttle.check(keys)
    except throttle.Throttled:
        record_event(
            "auth.login",
            agency_id=user.agency_id if user else None,
            actor=user,
            actor_label=normalized or "(empty)",
            object_type="user",
            object_id=user.public_id if user else "",
            outcome=Outcome.DENIED,
            client_addr=client_addr,
            details={"reason": "throttled"},
        )
        # Committed here, not by the request: it must outlive what follows (see
        # portal/http/transactions.py).
        db.session.commit()
        raise
    ok = verify_password(user.password_hash if user else None, password)
    reason = None
    if user is None:
        reason = "unknown_user"
    elif not ok:
        reason = "bad_password"
    elif user.is_disabled:
        reason = "disabled"
    if reason is not None:
        record_event(
            "auth.login",
            agency_id=user.agency_id if user else None,
            actor=user,
            actor_label=normalized or "(empty)",
            object_type="user",
            object_id=user.public_id if user else "",
            outcome=Outcome.DENIED,
            client_addr=client_addr,
            details={"reason": reason},
        )
        throttle.register_failure(keys)
        # Committed here, not by the request: it must outlive what follows (see
        # portal/http/transactions.py).
        db.session.commit()
        raise AuthenticationFailed(reason)
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if user.mfa_enabled:
        # Half-way: the sign-in completes, and is logged as auth.login, only after
        # the second factor (services.mfa.verify_second_factor). The account's
        # failure count stays until then, so it also limits guessing the code.
        record_event(
            "auth.password",
            agency_id=user.agency_id,
            actor=user,
            object_type="user",
            object_id=user.public_id,
            client_addr=client_addr,
            details={"next": "mfa"},
        )
        db.session.flush()
        return user
    record_sign_in(user, client_addr=client_addr)
    return user


def record_sign_in(
    user: User, *, client_addr: str | None, details: dict[str, str] | None = None
) -> None:
    """A completed sign-in (after the second factor, when there is one)."""
    throttle.clear_account(user.email)
    user.last_login_at = utcnow()
    record_event(
        "auth.login",
        agency_id=user.agency_id,
        actor=user,
        object_type="user",
        object_id=user.public_id,
        client_addr=client_addr,
        details=details,
    )
    db.session.flush()


def record_logout(user: User, *, client_addr: str | None) -> None:
    end_session(user.current_session_id)
    record_event(
        "auth.logout",
        agency_id=user.agency_id,
        actor=user,
        object_type="user",
        object_id=user.public_id,
        client_addr=client_addr,
    )
    db.session.flush()


def set_password(user: User, password: str, *, actor: User | None = None) -> None:
    user.password_hash = hash_password(password, user_inputs=(user.email, user.display_name))
    # A new password ends every session that was signed in with the old one.
    end_all_sessions(user, "password_changed")
    record_event(
        "user.password_change",
        agency_id=user.agency_id,
        actor=actor,
        object_type="user",
        object_id=user.public_id,
    )


def disable_user(user: User, *, actor: User | None = None) -> None:
    user.is_disabled = True
    end_all_sessions(user, "disabled")
    for token in db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = utcnow()
    record_event(
        "user.disable",
        agency_id=user.agency_id,
        actor=actor,
        object_type="user",
        object_id=user.public_id,
    )


def enable_user(user: User, *, actor: User | None = None) -> None:
    user.is_disabled = False
    record_event(
        "user.enable",
        agency_id=user.agency_id,
        actor=actor,
        object_type="user",
        object_id=user.public_id,
    )


def _hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


MAX_TOKEN_DAYS = 366
MAX_TOKEN_NAME_LENGTH = 100


def create_api_token(
    user: User,
    *,
    name: str = "",
    expires_in: timedelta | None = timedelta(days=90),
    scopes: Iterable[Role] | None = None,
    client_addr: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and never stored.

    ``scopes`` are the roles the token may act as, a subset of those the user holds
    (all of them when not given).
    """
    held = user.held_roles
    scope_set = set(held if scopes is None else scopes)
    if not scope_set:
        raise ValidationFailed("A token needs at least one role to act as.", field="scopes")
    if not scope_set <= held:
        extra = ", ".join(sorted(r.value for r in scope_set - held))
        raise ValidationFailed(f"You do not hold the role(s) {extra}.", field="scopes")
    if expires_in is not None and not timedelta(0) < expires_in <= timedelta(days=MAX_TOKEN_DAYS):
        raise ValidationFailed(
            f"A token expires after 1 to {MAX_TOKEN_DAYS} days.", field="expires_in_days"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at: datetime | None = utcnow() + expires_in if expires_in else None
    token = ApiToken(
        user=user,
        name=clean_text(name, field="name", max_length=MAX_TOKEN_NAME_LENGTH, label="Name"),
        token_hash=_hash_token(secret),
        expires_at=expires_at,
        scopes=sorted(r.value for r in scope_set),
    )
    db.session.add(token)
    db.session.flush()
    record_event(
        "token.create",
        agency_id=user.agency_id,
        actor=user,
        object_type="api_token",
        object_id=token.public_id,
        client_addr=client_addr,
        details={
            "name": token.name,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "scopes": token.scopes,
        },
    )
    return token, secret


def authenticate_token(secret: str) -> User:
    """The token's user, acting with the token's scopes and the roles the user still
    holds (``user.roles``); every permission check then sees only those."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        raise AuthenticationFailed("malformed_token")
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
    now = utcnow()
    if token is None:
        raise AuthenticationFailed("unknown_token")
    if token.revoked_at is not None:
        raise AuthenticationFailed("revoked_token")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationFailed("expired_token")
    if token.user.is_disabled:
        raise AuthenticationFailed("disabled")
    token.last_used_at = now
    user = token.user
    known = {role.value for role in Role}
    # A scope naming a role that no longer exists grants nothing.
    user.act_as(frozenset(Role(scope) for scope in token.scopes if scope in known))
    return user


def list_api_tokens(user: User) -> list[ApiToken]:
    """The user's tokens, newest first, revoked and expired ones included."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def revoke_api_token(user: User, public_id: str, *, client_addr: str | None = None) -> ApiToken:
    """Revoke one of the user's own tokens. Another user's token is NotFound."""
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.public_id == public_id, ApiToken.user_id == user.id)
    )
    if token is None:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event(
            "token.revoke",
            agency_id=user.agency_id,
            actor=user,
            object_type="api_token",
            object_id=token.public_id,
            client_addr=client_addr,
            details={"name": token.name},
        )
    return token


def set_roles(user: User, roles: Iterable[Role], *, actor: User | None = None) -> None:
    """Replace the user's roles. A permission change: audited with before and after."""
    new = set(roles)
    if not new:
        raise ValidationFailed("A staff account needs at least one role.", field="roles")
    before = sorted(r.value for r in user.held_roles)
    after = sorted(r.value for r in new)
    if before == after:
        return
    user.role_rows = [row for row in user.role_rows if Role(row.role) in new]
    kept = user.held_roles
    user.role_rows.extend(UserRole(role=r.value) for r in sorted(new - kept))
    record_event(
        "user.roles_change",
        agency_id=user.agency_id,
        actor=actor,
        object_type="user",
        object_id=user.public_id,
        details={"before": before, "after": after},
    )


def sign_out_everywhere(
    user: User, *, actor: User | None = None, client_addr: str | None = None
) -> int:
    """End every session of the user, this one included. Returns how many ended."""
    ended = end_all_sessions(user, "signed_out_everywhere")
    record_event(
        "auth.sign_out_everywhere",
        agency_id=user.agency_id,
        actor=actor,
        object_type="user",
        object_id=user.public_id,
        client_addr=client_addr,
        details={"sessions": ended},
    )
    return ended


def require_user(email: str) -> User:
    user = get_user_by_email(email)
    if user is None:
        raise NotFound(f"No account for {email}.")
    return user
