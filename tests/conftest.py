"""Fixtures shared by every test: an app on a fresh database built by the migrations.

SQLite (the default): the migrations run once per test session into a template file,
and each test gets a copy of it. PostgreSQL (when TATTLETALE_TEST_DATABASE_URL is
set): each pytest worker gets its own database, migrated once, and every table is
emptied after each test.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from config import Settings, load_settings, normalise_database_url
from portal import create_app
from portal.extensions import db

TEST_PASSWORD = "correct horse battery staple"
PG_URL = normalise_database_url(os.environ.get("TATTLETALE_TEST_DATABASE_URL", ""))


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Put the process's logging back as it was on leaving.

    create_app configures logging for the whole process (a stderr handler on the root
    logger, the root and werkzeug levels). Left in place, the first test's app decides
    what every later test logs, and its handler keeps writing to a stream pytest has
    since closed. pytest's own capture handlers come and go by themselves.
    """
    root = logging.getLogger()
    logging.getLogger("werkzeug")  # configured by the app: make sure it is restored
    levels = {
        name: logger.level
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers and not type(handler).__module__.startswith("_pytest"):
                root.removeHandler(handler)
                handler.close()
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    with logging_restored():
        yield


def _migrate(database_url: str, instance_path: Path) -> None:
    from flask_migrate import upgrade

    settings = replace(
        load_settings({"TATTLETALE_ENV": "testing"}),
        database_url=database_url,
        instance_path=instance_path,
    )
    with logging_restored():
        app = create_app(settings)
        with app.app_context():
            upgrade()
            db.engine.dispose()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[str]:
    """A migrated database to start each test from: a file (SQLite) or a URL (PostgreSQL)."""
    instance = tmp_path_factory.mktemp("template-instance")
    if not PG_URL:
        path = instance / "template.db"
        _migrate(f"sqlite:///{path}", instance)
        yield str(path)
        return
    name = f"tt_test_{os.getpid()}_{worker_id}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    _migrate(url, instance)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        path = tmp_path / "tattletale.db"
        shutil.copyfile(template_database, path)
        yield f"sqlite:///{path}"
        return
    yield template_database
    engine = sa.create_engine(template_database)
    with engine.begin() as conn:
        tables = [
            name
            for (name,) in conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            if name != "alembic_version"
        ]
        # The audit log refuses TRUNCATE by trigger; replica mode skips triggers for
        # this cleanup connection only.
        conn.execute(sa.text("SET session_replication_role = replica"))
        conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    engine.dispose()


#: Obviously fake credentials, and no profile or config file from the developer's home.
_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto in server mode on loopback: a real S3 protocol endpoint, not an in-process
    mock. One per test session (and xdist worker); each test takes its own bucket."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in _FAKE_AWS_ENV}
    os.environ.update(_FAKE_AWS_ENV)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the test S3 server."""
    import boto3

    name = f"tt-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(TATTLETALE_STORAGE_URL, TATTLETALE_S3_ENDPOINT_URL) of the app under test.

    The local directory unless a test asks for S3 with
    ``@pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)``.
    """
    kind = getattr(request, "param", "local")
    if kind == "s3":
        bucket = request.getfixturevalue("bucket")
        return f"s3://{bucket}/media", request.getfixturevalue("s3_endpoint")
    assert kind == "local", kind
    return f"file://{tmp_path / 'instance' / 'media'}", None


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, storage_location: tuple[str, str | None]
) -> Settings:
    instance = tmp_path / "instance"
    instance.mkdir()
    storage_url, s3_endpoint_url = storage_location
    return replace(
        load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_LOG_FORMAT": "text"}),
        database_url=database_url,
        instance_path=instance,
        storage_url=storage_url,
        s3_endpoint_url=s3_endpoint_url,
    )


class IsolatedClient(FlaskClient):
    """A test client whose requests run as they do in production: in their own app
    context (own ``g``, own database session), not inside the test's.

    The test holds an app context for its own database work; Flask would otherwise
    reuse it for every request, sharing ``g`` and the session between requests.
    """

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        db.session.commit()  # what the test set up is visible to the request
        try:
            return contextvars.Context().run(super().open, *args, **kwargs)
        finally:
            db.session.commit()  # end the test's read snapshot; see what the request wrote
            db.session.expire_all()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cli(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One Argon2 hash for every test account: hashing is slow by design."""
    from portal.services.passwords import hash_password

    return hash_password(TEST_PASSWORD)
