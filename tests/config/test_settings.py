from __future__ import annotations

import os
from pathlib import Path

import pytest

from config import ConfigError, load_settings

# A valid Fernet key (32 bytes, URL-safe base64) for the production settings tests.
PG_URL = os.environ.get("TATTLETALE_TEST_DATABASE_URL", "")
KEY = "7Ojv3ZJ6oYbZ0cW9r0W2F7cJ3sVZ6m8H1kq3n5p9u0E="


def test_settings_defaults_are_embedded(tmp_path: Path) -> None:
    settings = load_settings({"TATTLETALE_INSTANCE_PATH": str(tmp_path)})
    assert settings.env == "development"
    assert settings.database_url == f"sqlite:///{tmp_path / 'tattletale.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'media'}"
    assert settings.broker_url is None and not settings.uses_celery
    assert settings.port == 5000


def test_settings_development_secret_is_generated_once(tmp_path: Path) -> None:
    first = load_settings({"TATTLETALE_INSTANCE_PATH": str(tmp_path)}).secret_key
    second = load_settings({"TATTLETALE_INSTANCE_PATH": str(tmp_path)}).secret_key
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_settings_production_names_every_missing_setting() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({"TATTLETALE_ENV": "production"})
    message = str(excinfo.value)
    for name in (
        "TATTLETALE_SECRET_KEY",
        "TATTLETALE_DATABASE_URL",
        "TATTLETALE_STORAGE_URL",
        "TATTLETALE_ENCRYPTION_KEYS",
        "TATTLETALE_RECEIPT_KEY",
    ):
        assert name in message


def test_settings_production_refuses_sqlite() -> None:
    with pytest.raises(ConfigError, match="PostgreSQL"):
        load_settings(
            {
                "TATTLETALE_ENV": "production",
                "TATTLETALE_SECRET_KEY": "x" * 40,
                "TATTLETALE_DATABASE_URL": "sqlite:///prod.db",
                "TATTLETALE_STORAGE_URL": "s3://bucket/media",
                "TATTLETALE_ENCRYPTION_KEYS": KEY,
                "TATTLETALE_RECEIPT_KEY": "r" * 40,
            }
        )


def test_settings_production_refuses_short_secret() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings(
            {
                "TATTLETALE_ENV": "production",
                "TATTLETALE_SECRET_KEY": "short",
                "TATTLETALE_DATABASE_URL": "postgresql+psycopg://db/tattletale",
                "TATTLETALE_STORAGE_URL": "s3://bucket/media",
                "TATTLETALE_ENCRYPTION_KEYS": KEY,
                "TATTLETALE_RECEIPT_KEY": "r" * 40,
            }
        )


def test_settings_production_starts_with_everything_set() -> None:
    settings = load_settings(
        {
            "TATTLETALE_ENV": "production",
            "TATTLETALE_SECRET_KEY": "k" * 48,
            "TATTLETALE_DATABASE_URL": "postgresql+psycopg://db/tattletale",
            "TATTLETALE_STORAGE_URL": "s3://bucket/media",
            "TATTLETALE_ENCRYPTION_KEYS": KEY,
            "TATTLETALE_RECEIPT_KEY": "r" * 48,
            "TATTLETALE_BROKER_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert settings.is_production and settings.uses_celery
    assert settings.receipt_key == "r" * 48


def test_settings_production_refuses_a_short_receipt_key() -> None:
    with pytest.raises(ConfigError, match="TATTLETALE_RECEIPT_KEY must be at least 32"):
        load_settings(
            {
                "TATTLETALE_ENV": "production",
                "TATTLETALE_SECRET_KEY": "k" * 48,
                "TATTLETALE_DATABASE_URL": "postgresql+psycopg://db/tattletale",
                "TATTLETALE_STORAGE_URL": "s3://bucket/media",
                "TATTLETALE_ENCRYPTION_KEYS": KEY,
                "TATTLETALE_RECEIPT_KEY": "short",
            }
        )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TATTLETALE_ENV", "staging", "TATTLETALE_ENV must be one of"),
        ("TATTLETALE_PORT", "http", "whole number"),
        ("TATTLETALE_PORT", "0", "at least 1"),
        ("TATTLETALE_STORAGE_URL", "ftp://x", "file:// or s3://"),
        ("TATTLETALE_LOG_FORMAT", "xml", "json or text"),
    ],
)
def test_settings_bad_value_is_named(name: str, value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"TATTLETALE_INSTANCE_PATH": str(tmp_path), name: value})


def test_settings_development_encryption_key_is_generated_once(tmp_path: Path) -> None:
    first = load_settings({"TATTLETALE_INSTANCE_PATH": str(tmp_path)}).encryption_keys
    second = load_settings({"TATTLETALE_INSTANCE_PATH": str(tmp_path)}).encryption_keys
    assert first == second and len(first) == 1
    assert (tmp_path / "encryption_keys").stat().st_mode & 0o777 == 0o600


def test_settings_encryption_keys_are_read_in_order(tmp_path: Path) -> None:
    other = "A" * 43 + "="
    settings = load_settings(
        {"TATTLETALE_INSTANCE_PATH": str(tmp_path), "TATTLETALE_ENCRYPTION_KEYS": f"{KEY}, {other}"}
    )
    assert settings.encryption_keys == (KEY, other)


def test_settings_bad_encryption_key_is_named_but_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key 2 is not a Fernet key") as excinfo:
        load_settings(
            {
                "TATTLETALE_INSTANCE_PATH": str(tmp_path),
                "TATTLETALE_ENCRYPTION_KEYS": f"{KEY},not-a-key-secret-value",
            }
        )
    assert "not-a-key-secret-value" not in str(excinfo.value)


@pytest.mark.parametrize(("raw", "expected"), [("", None), ("true", True), ("0", False)])
def test_settings_require_mfa_override(tmp_path: Path, raw: str, expected: bool | None) -> None:
    settings = load_settings(
        {"TATTLETALE_INSTANCE_PATH": str(tmp_path), "TATTLETALE_REQUIRE_MFA": raw}
    )
    assert settings.require_mfa is expected


def test_settings_require_mfa_refuses_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TATTLETALE_REQUIRE_MFA must be true or false"):
        load_settings(
            {"TATTLETALE_INSTANCE_PATH": str(tmp_path), "TATTLETALE_REQUIRE_MFA": "maybe"}
        )


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://tt:pw@db:5432/tattletale", "postgresql+psycopg://tt:pw@db:5432/tattletale"),
        ("postgres://tt:pw@db/tattletale", "postgresql+psycopg://tt:pw@db/tattletale"),
        ("postgresql+psycopg://db/tattletale", "postgresql+psycopg://db/tattletale"),
        ("postgresql+psycopg2://db/tattletale", "postgresql+psycopg2://db/tattletale"),
        ("sqlite:////srv/tt.db", "sqlite:////srv/tt.db"),
    ],
)
def test_settings_database_url_uses_the_installed_postgres_driver(written: str, used: str) -> None:
    settings = load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_DATABASE_URL": written})
    assert settings.database_url == used


def test_settings_production_accepts_plain_postgresql_url() -> None:
    settings = load_settings(
        {
            "TATTLETALE_ENV": "production",
            "TATTLETALE_SECRET_KEY": "k" * 48,
            "TATTLETALE_DATABASE_URL": "postgresql://tattletale@db/tattletale",
            "TATTLETALE_STORAGE_URL": "s3://bucket/media",
            "TATTLETALE_ENCRYPTION_KEYS": KEY,
            "TATTLETALE_RECEIPT_KEY": "r" * 48,
        }
    )
    assert settings.database_url == "postgresql+psycopg://tattletale@db/tattletale"


@pytest.mark.skipif(not PG_URL, reason="TATTLETALE_TEST_DATABASE_URL is not set")
def test_settings_plain_postgresql_url_connects() -> None:
    """The form operators write reaches the real server through the installed driver."""
    import sqlalchemy as sa

    plain = "postgresql://" + PG_URL.partition("://")[2]
    url = load_settings(
        {"TATTLETALE_ENV": "testing", "TATTLETALE_DATABASE_URL": plain}
    ).database_url
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_settings_transcode_defaults_are_the_pipelines(tmp_path: Path) -> None:
    from media_pipeline import DEFAULT_LIMITS

    settings = load_settings({"TATTLETALE_INSTANCE_PATH": str(tmp_path)})
    assert (settings.transcode_nice, settings.transcode_threads) == (10, 0)
    assert settings.transcode_stall_after_s == 60
    assert settings.transcode_nice == DEFAULT_LIMITS.nice
    assert settings.transcode_threads == DEFAULT_LIMITS.threads
    assert settings.transcode_stall_after_s == DEFAULT_LIMITS.stall_timeout_s


def test_settings_transcode_can_hold_a_worker_to_one_core(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "TATTLETALE_INSTANCE_PATH": str(tmp_path),
            "TATTLETALE_TRANSCODE_THREADS": "1",
            "TATTLETALE_TRANSCODE_NICE": "19",
            "TATTLETALE_TRANSCODE_STALL_AFTER": "120",
        }
    )
    assert settings.transcode_threads == 1
    assert (settings.transcode_nice, settings.transcode_stall_after_s) == (19, 120)


def test_settings_transcode_nice_beyond_19_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TATTLETALE_TRANSCODE_NICE"):
        load_settings(
            {"TATTLETALE_INSTANCE_PATH": str(tmp_path), "TATTLETALE_TRANSCODE_NICE": "20"}
        )
