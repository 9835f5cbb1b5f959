"""The second factor: TOTP (RFC 6238) from an authenticator app, and one-time
recovery codes for when the phone is lost.

A code is accepted once only. A TOTP code is good for its 30-second step and one
step either side (clock drift), so without a record of use it could be replayed for
up to 90 seconds by whoever saw it: over a shoulder, or from a phishing page that
relays it. Each account remembers the last step it accepted and takes only later
ones; recovery codes are marked used. Both are conditional UPDATEs, so two requests
racing with the same code cannot both win.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

import pyotp
import segno
from flask import current_app
from pyotp.utils import strings_equal
from sqlalchemy import delete, func, select, update

from portal.extensions import db
from portal.models import MfaRecoveryCode, Outcome, User
from portal.models.base import utcnow
from portal.services import throttle
from portal.services.audit import record_event
from portal.services.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from portal.services.sessions import end_all_sessions, end_other_sessions
from portal.services.users import record_sign_in

RECOVERY_CODE_COUNT = 10
# One step either side of now: authenticator clocks drift and people type slowly.
VALID_WINDOW = 1
ISSUER = "Tattletale"


class SecondFactorFailed(DomainError):
    status = 401

    def __init__(self, reason: str) -> None:
        super().__init__("That code is not correct, or it was already used.", field="code")
        self.reason = reason  # for the audit log: bad_code, replayed_code, not_enrolled


def mfa_required(user: User) -> bool:
    """Whether the user must have a second factor: TATTLETALE_REQUIRE_MFA when set,
    otherwise the agency's own setting."""
    override = current_app.config["TATTLETALE"].require_mfa
    return override if override is not None else user.agency.require_mfa


def _normalize(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _hash_recovery_code(code: str) -> str:
    return hashlib.sha256(_normalize(code).encode()).hexdigest()


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def enrolment_attempt(secret: str) -> str:
    """What the enrolling session remembers of its attempt: a digest, not the secret."""
    return hashlib.sha256(b"mfa-enrolment|" + secret.encode()).hexdigest()[:32]


def begin_enrolment(user: User, *, attempt: str | None) -> str:
    """The secret to show for enrolment: a new one for every attempt.

    A secret kept until enrolment completes would be shown to every session of the
    account: whoever holds a stolen session could read it and, once the owner
    enrols with it, make the owner's codes. So each page shown afresh makes a new
    secret (and any earlier one stops counting); only the session whose ``attempt``
    (see :func:`enrolment_attempt`) matches the current secret sees it again, when
    a mistyped code sends its page back."""
    if user.mfa_enabled:
        raise Conflict("Two-step sign-in is already on for this account.")
    current = user.totp_secret
    if current is None or attempt is None or attempt != enrolment_attempt(current):
        current = user.totp_secret = pyotp.random_base32()  # 160 bits, RFC 4226's advice
        user.totp_last_step = None
    return current


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(
        name=user.email, issuer_name=f"{ISSUER} ({user.agency.name})"
    )


def qr_code_data_uri(uri: str) -> str:
    """An SVG QR code as a data: URI: an <img> the CSP allows, with no script or style."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if strings_equal(totp.generate_otp(step), code):
            return step
    return None


def _accept_totp(user: User, code: str) -> str | None:
    """None when the code is accepted (and now used up), else the reason it is not."""
    if user.totp_secret is None:
        return "not_enrolled"
    step = _matching_step(user.totp_secret, code, utcnow())
    if step is None:
        return "bad_code"
    claimed = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(user, ["totp_last_step"])
    return None if claimed.rowcount == 1 else "replayed_code"  # type: ignore[attr-defined]


def _accept_recovery_code(user: User, code: str) -> str | None:
    used = db.session.execute(
        update(MfaRecoveryCode)
        .where(
            MfaRecoveryCode.user_id == user.id,
            MfaRecoveryCode.code_hash == _hash_recovery_code(code),
            MfaRecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return None if used.rowcount == 1 else "bad_code"  # type: ignore[attr-defined]


def remaining_recovery_codes(user: User) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(MfaRecoveryCode)
            .where(MfaRecoveryCode.user_id == user.id, MfaRecoveryCode.used_at.is_(None))
        )
        or 0
    )


def _issue_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    now = utcnow()
    db.session.add_all(
        MfaRecoveryCode(user_id=user.id, code_hash=_hash_recovery_code(c), created_at=now)
        for c in codes
    )
    return codes


def _require_current_code(
    user: User, code: str, action: str, message: str, *, client_addr: str | None
) -> None:
    """Accept a current TOTP code (once) or audit the refusal and raise."""
    code = _normalize(code)
    reason = _accept_totp(user, code) if len(code) == 6 and code.isdigit() else "bad_code"
    if reason is None:
        return
    record_event(
        action,
        agency_id=user.agency_id,
        actor=user,
        object_type="user",
        object_id=user.public_id,
        outcome=Outcome.DENIED,
        client_addr=client_addr,
        details={"reason": reason},
    )
    # Committed here, not by the request: it must outlive what follows (see
    # portal/http/transactions.py).
    db.session.commit()
    raise ValidationFailed(message, field="code")


def confirm_enrolment(
    user: User, code: str, *, attempt: str | None, client_addr: str | None
) -> list[str]:
    """Turn the factor on once the user proves their app has the secret that this
    attempt was shown; return the recovery codes, which are shown this once and
    stored only hashed. Every other session of the account ends: it may be one that
    was taken, and from now on a session needs both factors."""
    if user.mfa_enabled:
        raise Conflict("Two-step sign-in is already on for this account.")
    if user.totp_secret is None or attempt != enrolment_attempt(user.totp_secret):
        raise Conflict(
            "Two-step sign-in was started again elsewhere, so this code no longer "
            "counts. Scan the new code below and enter the code your app shows."
        )
    _require_current_code(
        user,
        code,
        "mfa.enrol",
        "That code does not match. Check the time on your phone and enter the "
        "code your app shows now.",
        client_addr=client_addr,
    )
    user.totp_enabled_at = utcnow()
    codes = _issue_recovery_codes(user)
    ended = end_other_sessions(user, "mfa_enabled")
    record_event(
        "mfa.enrol",
        agency_id=user.agency_id,
        actor=user,
        object_type="user",
        object_id=user.public_id,
        client_addr=client_addr,
        details={"other_sessions_ended": ended},
    )
    return codes


def verify_second_factor(user: User, code: str, *, client_addr: str | None) -> None:
    """The second step of sign-in. Throttled and audited like the password step:
    the two share the per-account and per-client counts."""
    keys = throttle.keys_for(user.email, client_addr)
    try:
        throttle.check(keys)
    except throttle.Throttled:
        record_event(
            "auth.login",
            agency_id=user.agency_id,
            actor=user,
            object_type="user",
            object_id=user.public_id,
            outcome=Outcome.DENIED,
            client_addr=client_addr,
            details={"reason": "throttled", "step": "mfa"},
        )
        # Committed here, not by the request: it must outlive what follows (see
        # portal/http/transactions.py).
        db.session.commit()
        raise
    code = _normalize(code)
    method = "totp" if len(code) == 6 and code.isdigit() else "recovery_code"
    if not user.mfa_enabled:
        reason: str | None = "not_enrolled"
    elif method == "totp":
        reason = _accept_totp(user, code)
    else:
        reason = _accept_recovery_code(user, code)
    if reason is not None or user.is_disabled:
        throttle.register_failure(keys)
        record_event(
            "auth.login",
            agency_id=user.agency_id,
            actor=user,
            object_type="user",
            object_id=user.public_id,
            outcome=Outcome.DENIED,
            client_addr=client_addr,
            details={"reason": reason or "disabled", "step": "mfa", "method": method},
        )
        # Committed here, not by the request: it must outlive what follows (see
        # portal/http/transactions.py).
        db.session.commit()
        raise SecondFactorFailed(reason or "disabled")
    if method == "recovery_code":
        record_event(
            "mfa.recovery_used",
            agency_id=user.agency_id,
            actor=user,
            object_type="user",
            object_id=user.public_id,
            client_addr=client_addr,
            details={"remaining": remaining_recovery_codes(user)},
        )
    record_sign_in(user, client_addr=client_addr, details={"mfa": method})


def disable_own_mfa(user: User, code: str, *, client_addr: str | None) -> None:
    """The user turns their own second factor off, proving it with a current code.
    Refused where the agency requires one."""
    if mfa_required(user):
        raise PermissionDenied("Your agency requires two-step sign-in; it cannot be turned off.")
    _require_current_code(
        user,
        code,
        "mfa.disable",
        "That code is not correct, or it was already used.",
        client_addr=client_addr,
    )
    disable_mfa(user, actor=user, reason="self", client_addr=client_addr)


def disable_mfa(
    user: User, *, actor: User | None, reason: str, client_addr: str | None = None
) -> None:
    """Remove the second factor (an operator's reset for a lost phone, or the user
    turning it off where the agency allows). A reset by someone else ends every
    session of the account: whoever holds one may be who took the phone."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    if actor is None or actor.id != user.id:
        end_all_sessions(user, "mfa_reset")
    record_event(
        "mfa.disable",
        agency_id=user.agency_id,
        actor=actor,
        object_type="user",
        object_id=user.public_id,
        client_addr=client_addr,
        details={"reason": reason},
    )
