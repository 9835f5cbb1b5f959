"""A column type whose values are encrypted before they reach the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

from portal import keyring


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token under a key from the configuration.

    ``purpose`` names the column ("user.totp_secret"); it separates the keys of
    different columns (see :mod:`portal.keyring`) and must never change for a column
    that holds data. ``flask --app wsgi secrets rotate`` finds every column of this
    type in the metadata, so a new encrypted column is rotated with no further code.
    """

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring.encrypt(value, self.purpose)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring.decrypt(value, self.purpose)
