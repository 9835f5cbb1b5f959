"""Password policy and hashing with Argon2id, a memory-hard KDF (RFC 9106)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

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
@functools.cache
def _dummy_hash() -> str:
    # Made on first use, not at import: hashing allocates the KDF's 64 MiB, which every
    # process (workers, CLI) would otherwise carry as peak memory from the start.
    return _hasher.hash("tattletale-timing-equaliser")


COMMON_PASSWORDS_RESOURCE = "common-passwords.txt"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lowercased (see portal/data/README.md)."""
    text = resources.files("portal.data").joinpath(COMMON_PASSWORDS_RESOURCE).read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def _is_repetitive_or_sequential(password: str) -> bool:
    """ "aaaaaaaaaaaa", "abcabcabcabc", "123456789012", "zyxwvutsrqpo": NIST SP 800-63B
    names repetitive and sequential characters among what a verifier refuses."""
    if len(set(password)) <= 2:
        return True
    for unit in range(1, 5):
        if len(password) % unit == 0 and password == password[:unit] * (len(password) // unit):
            return True
    steps = {
        (ord(b) - ord(a)) % 10 if a.isdigit() and b.isdigit() else ord(b) - ord(a)
        for a, b in zip(password, password[1:], strict=False)
    }
    return len(steps) == 1 and steps.pop() in (1, -1, 9)


def check_password_policy(password: str, *, user_inputs: Iterable[str] = ()) -> None:
    """NIST SP 800-63B: a minimum length, no composition rules, and refusal of
    passwords that attackers try first: common ones (compared case-insensitively),
    repetitive or sequential ones, and ones built from the account's own name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must be at most {MAX_PASSWORD_LENGTH} characters.", field="password"
        )
    folded = password.strip().lower()
    if folded in common_passwords():
        raise ValidationFailed(
            "That password is on a list of commonly used passwords that attackers try "
            "first. Please choose another; a few unrelated words make a good one.",
            field="password",
        )
    if _is_repetitive_or_sequential(folded):
        raise ValidationFailed(
            "That password is a repeated or sequential run of characters. Please choose "
            "another; a few unrelated words make a good one.",
            field="password",
        )
    for value in user_inputs:
        for part in {value.strip().lower(), value.strip().lower().split("@")[0]}:
            if len(part) >= 4 and part in folded and len(folded.replace(part, "")) < 8:
                raise ValidationFailed(
                    "That password is mostly your e-mail address or name. Please choose another.",
                    field="password",
                )


def hash_password(password: str, *, user_inputs: Iterable[str] = ()) -> str:
    check_password_policy(password, user_inputs=user_inputs)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
