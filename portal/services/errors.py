"""Domain errors. Services raise them; views and API handlers turn them into responses."""

from __future__ import annotations


class DomainError(Exception):
    """Something a user asked for that cannot be done, with a message for them."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        # A lazily translated constant (flask_babel.lazy_gettext) is fixed here, in
        # the language of the request that raised it.
        message = str(message)
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    status = 422


class NotFound(DomainError):
    status = 404


class PermissionDenied(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class AuthenticationFailed(DomainError):
    """Sign-in or token check failed. The message never says which part was wrong."""

    status = 401

    def __init__(self, reason: str) -> None:
        super().__init__("The e-mail address or password is not correct.")
        # For the audit log only: unknown_user, bad_password, disabled.
        self.reason = reason


class UploadTooLarge(DomainError):
    status = 413


class UploadQuotaExceeded(DomainError):
    """Too many unfinished uploads, or too many bytes declared by them, for one user."""

    status = 429


class InsufficientStorage(DomainError):
    """The staging store has no room for what was declared or sent (RFC 4918: 507)."""

    status = 507


class StorageFailed(DomainError):
    """Saving failed for a reason other than room (an I/O error); nothing is lost that
    was recorded, and the request may be repeated."""

    status = 500


class UploadGone(DomainError):
    status = 410


class UploadDamaged(DomainError):
    status = 409


class ChecksumMismatch(DomainError):
    # tus checksum extension: 460 Checksum Mismatch.
    status = 460
