"""A column type whose values are encrypted before they reach the database."""

from __future__ import annotations

from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from portal.services import crypto


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token under a key from the configuration.

    ``purpose`` names the column ("user.totp_secret"); it separates the keys of
    different columns (see :mod:`portal.services.crypto`) and must never change for
    a column that holds data. ``flask --app wsgi secrets rotate`` finds every column
    of this type in the metadata, so a new encrypted column is rotated with no
    further code.
    """

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return crypto.encrypt(value, self.purpose)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return crypto.decrypt(value, self.purpose)
