"""The keys for secrets at rest, and the Fernet work done with them.

Below both the models (the ``EncryptedText`` column type encrypts and decrypts with
it) and the services (:mod:`portal.services.crypto` rotates with it), and free of
Flask and of every other portal module, so that the models stay a plain description
of the schema.

Where the keys come from is not decided here: the app factory installs a *key
source* (:func:`use_key_source`), a function that returns the keys of the app
handling the current request or command. Reading them at each use, not copying them
in once, keeps several apps in one process (the tests, a worker) on their own keys.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a
:class:`~cryptography.fernet.MultiFernet`: the first key encrypts, every key
decrypts, so a new key can be put in front, everything re-encrypted with it, and the
old key then removed.

Each column encrypts under its own *purpose*: the Fernet key is derived from the
configured key with HKDF, the purpose as the ``info``. A ciphertext copied from one
column into another (a TOTP secret pasted into a field an attacker can read back
through another feature) then fails to decrypt instead of being revealed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_HKDF_SALT = b"tattletale secrets at rest v1"

KeySource = Callable[[], Sequence[str]]


class DecryptionFailed(RuntimeError):
    """A stored value cannot be decrypted with any configured key.

    A configuration fault, not a user error: the key that encrypted the value was
    removed from ``TATTLETALE_ENCRYPTION_KEYS`` before ``secrets rotate`` ran, or
    the value was changed behind the app's back.
    """


def _no_key_source() -> Sequence[str]:
    raise DecryptionFailed(
        "no encryption keys: the app factory installs the key source "
        "(portal.keyring.use_key_source) before encrypted columns are used"
    )


_key_source: KeySource = _no_key_source


def use_key_source(source: KeySource) -> None:
    """Take the keys from ``source`` (newest first) from now on."""
    global _key_source
    _key_source = source


def configured_keys() -> tuple[str, ...]:
    return tuple(_key_source())


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


def _fernet(purpose: str, keys: Sequence[str] | None) -> MultiFernet:
    return _multifernet(tuple(keys) if keys is not None else configured_keys(), purpose)


def encrypt(plaintext: str, purpose: str, *, keys: Sequence[str] | None = None) -> str:
    """Encrypt with the newest key. The result is ASCII, safe for a text column."""
    return _fernet(purpose, keys).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str, purpose: str, *, keys: Sequence[str] | None = None) -> str:
    fernet = _fernet(purpose, keys)
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
    fernet = _fernet(purpose, keys)
    try:
        return fernet.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise DecryptionFailed(
            f"a stored {purpose} value cannot be decrypted with any key in "
            "TATTLETALE_ENCRYPTION_KEYS, so it cannot be rotated"
        ) from None
