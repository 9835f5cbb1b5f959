"""Secrets at rest: values that would hurt if a database dump leaked (TOTP secrets,
tipster contact details, channel credentials) are encrypted with keys that live in
the configuration, never in the database.

The cipher and the keys are :mod:`portal.keyring`, which the ``EncryptedText`` column
type uses too; this module gives it the app's ``TATTLETALE_ENCRYPTION_KEYS`` and
re-encrypts everything stored with the newest key (``flask --app wsgi secrets
rotate``): put a new key first, keep the old ones after it, rotate, then remove the
old keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from flask import Flask, current_app

from portal.extensions import db
from portal.keyring import (
    DecryptionFailed,
    decrypt,
    encrypt,
    generate_key,
    rotate,
    use_key_source,
)
from portal.models import Base
from portal.models.encrypted import EncryptedText
from portal.services.audit import record_event

__all__ = [
    "DecryptionFailed",
    "decrypt",
    "encrypt",
    "encrypted_columns",
    "generate_key",
    "init_app",
    "rotate",
    "rotate_column",
    "rotate_secrets",
]


def _app_keys() -> Sequence[str]:
    # Read at each use: the keys of the app handling this request or command.
    return current_app.config["TATTLETALE"].encryption_keys


def init_app(app: Flask) -> None:
    """Encrypted columns take their keys from the current app's configuration."""
    use_key_source(_app_keys)


def encrypted_columns() -> list[tuple[sa.Table, sa.Column]]:
    """Every column of type EncryptedText in the schema, found from the metadata, so
    a column added later is rotated with no further code."""
    return [
        (table, column)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedText)
    ]


def rotate_column(table: sa.Table, column: sa.Column, *, batch: int = 500) -> int:
    """Re-encrypt every value of one column with the newest key; returns the count."""
    (pk,) = table.primary_key.columns
    raw = sa.type_coerce(column, sa.Text())  # the stored token, not decrypted
    assert isinstance(column.type, EncryptedText)
    purpose = column.type.purpose
    rotated = 0
    last = None
    while True:
        query = sa.select(pk, raw).where(column.isnot(None)).order_by(pk).limit(batch)
        if last is not None:
            query = query.where(pk > last)
        rows = db.session.execute(query).all()
        if not rows:
            return rotated
        for key, token in rows:
            values: dict[sa.Column, object] = {
                column: sa.type_coerce(rotate(token, purpose), sa.Text())
            }
            if "updated_at" in table.c:
                # A new ciphertext of the same value is not a change to the record.
                values[table.c.updated_at] = table.c.updated_at
            db.session.execute(sa.update(table).where(pk == key).values(values))
            rotated += 1
        last = rows[-1][0]


def rotate_secrets() -> dict[str, int]:
    """Re-encrypt every secret at rest with the newest key, in the current
    transaction, and audit it; returns the count per ``table.column``.

    The caller commits, or rolls back on :class:`DecryptionFailed` (a value no
    configured key opens), so it all moves to the new key or none of it does.
    """
    counts = {
        f"{table.name}.{column.name}": rotate_column(table, column)
        for table, column in encrypted_columns()
    }
    record_event("secrets.rotate", agency_id=None, object_type="encryption_keys", details=counts)
    return counts
