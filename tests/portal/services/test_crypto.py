"""Secrets at rest: encrypted columns, purposes kept apart, key rotation (the service
and its CLI)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from portal import keyring
from portal.extensions import db
from portal.models import AuditEvent, Role, User
from portal.services import crypto

OLD = crypto.generate_key()
NEW = crypto.generate_key()

# Four accounts with a secret; every encrypted column is visited, including those
# with nothing in them yet (a new encrypted column is rotated with no further code).
ROTATED = {
    "users.totp_secret": 4,
    "tips.contact_name": 0,
    "tips.contact_phone": 0,
    "tips.contact_email": 0,
    "channels.credentials": 0,
}


def use_keys(app: Flask, *keys: str) -> None:
    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], encryption_keys=keys)


def raw_secret_of(user_id: int) -> str:
    return db.session.execute(
        sa.text("SELECT totp_secret FROM users WHERE id = :id"), {"id": user_id}
    ).scalar_one()


def raw_secret(user: User) -> str:
    return raw_secret_of(user.id)


def test_crypto_round_trip_and_no_plaintext_in_the_token(app: Flask) -> None:
    token = crypto.encrypt("555-0100 ask for Marge", "tip.contact")
    assert "Marge" not in token and "555" not in token
    assert crypto.decrypt(token, "tip.contact") == "555-0100 ask for Marge"
    assert crypto.encrypt("same", "tip.contact") != crypto.encrypt("same", "tip.contact")


def test_crypto_purposes_do_not_decrypt_each_other(app: Flask) -> None:
    token = crypto.encrypt("JBSWY3DPEHPK3PXP", "user.totp_secret")
    with pytest.raises(crypto.DecryptionFailed, match="tip.contact"):
        crypto.decrypt(token, "tip.contact")


def test_crypto_encrypted_column_stores_only_ciphertext(
    app: Flask, users: dict[Role, User]
) -> None:
    user = users[Role.OFFICER]
    user.totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    db.session.commit()
    assert "JBSWY3DP" not in raw_secret(user)
    db.session.expire_all()
    assert db.session.get(User, user.id).totp_secret == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # type: ignore[union-attr]


def test_crypto_rotation_moves_every_value_to_the_new_key(
    app: Flask, cli: FlaskCliRunner, users: dict[Role, User]
) -> None:
    use_keys(app, OLD)
    for role, user in users.items():
        user.totp_secret = f"SECRET{role.value.upper()}"
    users[Role.ADMIN].totp_secret = None
    db.session.commit()
    before = raw_secret(users[Role.OFFICER])
    updated_at = users[Role.OFFICER].updated_at

    use_keys(app, NEW, OLD)
    result = cli.invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "users.totp_secret: 4 re-encrypted" in result.output
    after = raw_secret(users[Role.OFFICER])
    assert after != before

    use_keys(app, NEW)  # the old key removed
    db.session.expire_all()
    assert db.session.get(User, users[Role.OFFICER].id).totp_secret == "SECRETOFFICER"  # type: ignore[union-attr]
    assert db.session.get(User, users[Role.OFFICER].id).updated_at == updated_at  # type: ignore[union-attr]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "secrets.rotate"))
    assert event is not None and event.details == ROTATED


def test_crypto_wrong_key_gives_a_clear_error(
    app: Flask, cli: FlaskCliRunner, users: dict[Role, User]
) -> None:
    use_keys(app, OLD)
    users[Role.OFFICER].totp_secret = "JBSWY3DPEHPK3PXP"
    db.session.commit()
    use_keys(app, NEW)
    db.session.expire_all()
    with pytest.raises(crypto.DecryptionFailed, match="TATTLETALE_ENCRYPTION_KEYS"):
        db.session.get(User, users[Role.OFFICER].id).totp_secret  # type: ignore[union-attr]  # noqa: B018
    db.session.rollback()
    result = cli.invoke(args=["secrets", "rotate"])
    assert result.exit_code == 2 and "cannot be decrypted" in result.output
    use_keys(app, OLD)
    db.session.expire_all()
    assert db.session.get(User, users[Role.OFFICER].id).totp_secret == "JBSWY3DPEHPK3PXP"  # type: ignore[union-attr]


def test_crypto_rotation_finds_encrypted_columns_from_the_metadata() -> None:
    found = {(table.name, column.name) for table, column in crypto.encrypted_columns()}
    assert ("users", "totp_secret") in found


def test_cli_secrets_generate_key_prints_a_usable_key(app: Flask, cli: FlaskCliRunner) -> None:
    key = cli.invoke(args=["secrets", "generate-key"]).output.strip()
    assert crypto.decrypt(crypto.encrypt("x", "p", keys=[key]), "p", keys=[key]) == "x"


def test_crypto_rotate_secrets_moves_values_to_the_newest_key_and_audits(
    app: Flask, users: dict[Role, User]
) -> None:
    use_keys(app, OLD)
    for role, user in users.items():
        user.totp_secret = f"SECRET{role.value.upper()}"
    users[Role.ADMIN].totp_secret = None
    db.session.commit()

    use_keys(app, NEW, OLD)
    counts = crypto.rotate_secrets()
    db.session.commit()

    # Five accounts, one without a secret.
    assert counts == ROTATED
    stored = raw_secret(users[Role.DETECTIVE])
    assert crypto.decrypt(stored, "user.totp_secret", keys=[NEW]) == "SECRETDETECTIVE"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(stored, "user.totp_secret", keys=[OLD])
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "secrets.rotate"))
    assert event is not None and event.details == ROTATED


def test_crypto_rotate_secrets_fails_on_an_unknown_key_and_rolls_back_whole(
    app: Flask, users: dict[Role, User]
) -> None:
    use_keys(app, OLD)
    ordered = sorted(users.values(), key=lambda u: u.id)
    for user in ordered:
        user.totp_secret = f"SECRET{user.id}"
    db.session.commit()
    ids = [user.id for user in ordered]
    # The last row (rotated last) holds a value under a key nobody configured.
    stray = crypto.encrypt("STRAY", "user.totp_secret", keys=[crypto.generate_key()])
    db.session.execute(
        sa.text("UPDATE users SET totp_secret = :t WHERE id = :id"), {"t": stray, "id": ids[-1]}
    )
    db.session.commit()
    before = {user_id: raw_secret_of(user_id) for user_id in ids}

    use_keys(app, NEW, OLD)
    with pytest.raises(crypto.DecryptionFailed, match="cannot be rotated"):
        crypto.rotate_secrets()
    db.session.rollback()

    assert {user_id: raw_secret_of(user_id) for user_id in ids} == before
    assert crypto.decrypt(before[ids[0]], "user.totp_secret", keys=[OLD]) == f"SECRET{ids[0]}"
    rotations = sa.select(AuditEvent).where(AuditEvent.action == "secrets.rotate")
    assert db.session.scalar(rotations) is None


def test_keyring_without_a_key_source_names_the_missing_wiring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Outside an app the models have no keys; the error says why, not a KeyError.
    monkeypatch.setattr(keyring, "_key_source", keyring._no_key_source)
    with pytest.raises(keyring.DecryptionFailed, match="use_key_source"):
        keyring.encrypt("JBSWY3DPEHPK3PXP", "user.totp_secret")


def test_keyring_reads_the_keys_of_the_current_app_at_each_use(app: Flask) -> None:
    use_keys(app, OLD)
    token = keyring.encrypt("x", "p")
    use_keys(app, NEW)
    assert keyring.configured_keys() == (NEW,)
    assert keyring.decrypt(keyring.encrypt("x", "p"), "p", keys=[NEW]) == "x"
    with pytest.raises(keyring.DecryptionFailed):
        keyring.decrypt(token, "p")
