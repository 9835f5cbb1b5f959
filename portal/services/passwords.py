"""Password hashing with Argon2id, a memory-hard KDF (RFC 9106)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from portal.services.errors import ValidationFailed

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256

# RFC 9106's second recommended option (64 MiB, 3 passes): resists GPU cracking and
# still verifies in well under a second on one core.
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)

# Verifying against this when the account does not exist keeps the response time the
# same, so timing does not reveal which e-mail addresses have accounts.
_DUMMY_HASH = _hasher.hash("tattletale-timing-equaliser")


def check_password_policy(password: str) -> None:
    """Length only (NIST SP 800-63B): no composition rules."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must be at most {MAX_PASSWORD_LENGTH} characters.", field="password"
        )


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
