"""Secrets at rest: values that would hurt if a database dump leaked (TOTP secrets,
tipster contact details, channel credentials) are encrypted with keys that live in
the configuration, never in the database.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a
:class:`~cryptography.fernet.MultiFernet`: the first key of
``TATTLETALE_ENCRYPTION_KEYS`` encrypts, every key decrypts, so a new key can be put
in front, ``flask --app wsgi secrets rotate`` re-encrypts everything with it, and
the old key is then removed.

Each column encrypts under its own *purpose*: the Fernet key is derived from the
configured key with HKDF, the purpose as the ``info``. A ciphertext copied from one
column into another (a TOTP secret pasted into a field an attacker can read back
through another feature) then fails to decrypt instead of being revealed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_HKDF_SALT = b"tattletale secrets at rest v1"


class DecryptionFailed(RuntimeError):
    """A stored value cannot be decrypted with any configured key.

    A configuration fault, not a user error: the key that encrypted the value was
    removed from ``TATTLETALE_ENCRYPTION_KEYS`` before ``secrets rotate`` ran, or
    the value was changed behind the app's back.
    """


def generate_key() -> str:
    """A new random key for ``TATTLETALE_ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode()


def _derive(key: str, purpose: str) -> Fernet:
    raw = base64.urlsafe_b64decode(key.encode())
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=purpose.encode()
    ).derive(raw)
    return Fernet(base64.urlsafe_b64encode(derived))


@lru_cache(maxsize=64)
def _multifernet(keys: tuple[str, ...], purpose: str) -> MultiFernet:
    if not keys:
        raise DecryptionFailed("no encryption key is configured (TATTLETALE_ENCRYPTION_KEYS)")
    return MultiFernet([_derive(key, purpose) for key in keys])


def _configured_keys() -> tuple[str, ...]:
    return tuple(current_app.config["TATTLETALE"].encryption_keys)


def encrypt(plaintext: str, purpose: str, *, keys: Sequence[str] | None = None) -> str:
    """Encrypt with the newest key. The result is ASCII, safe for a text column."""
    fernet = _multifernet(tuple(keys) if keys is not None else _configured_keys(), purpose)
    return fernet.encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str, purpose: str, *, keys: Sequence[str] | None = None) -> str:
    fernet = _multifernet(tuple(keys) if keys is not None else _configured_keys(), purpose)
    try:
        return fernet.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed(
            f"a stored {purpose} value cannot be decrypted with any key in "
            "TATTLETALE_ENCRYPTION_KEYS; was a key removed before "
            "'flask --app wsgi secrets rotate' re-encrypted everything?"
        ) from None


def rotate(token: str, purpose: str, *, keys: Sequence[str] | None = None) -> str:
    """The same plaintext, encrypted again with the newest key."""
    fernet = _multifernet(tuple(keys) if keys is not None else _configured_keys(), purpose)
    try:
        return fernet.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed(
            f"a stored {purpose} value cannot be decrypted with any key in "
            "TATTLETALE_ENCRYPTION_KEYS, so it cannot be rotated"
        ) from None
