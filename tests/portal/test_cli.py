from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, Case, Job, Role, User
from portal.services.demo import DEMO_CASE_NUMBER
from tests.portal.conftest import sign_in


def test_cli_users_create_with_prompted_password(cli: FlaskCliRunner, agency: Agency) -> None:
    result = cli.invoke(
        args=[
            "users",
            "create",
            "New.Officer@Springfield.example",
            "--role",
            "officer",
            "--role",
            "detective",
        ],
        input="a long enough passphrase\na long enough passphrase\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "new.officer@springfield.example"))
    assert user is not None and user.roles == {Role.OFFICER, Role.DETECTIVE}
    assert user.password_hash.startswith("$argon2id$")


def test_cli_users_create_generates_password_that_signs_in(
    cli: FlaskCliRunner, client: FlaskClient, agency: Agency
) -> None:
    result = cli.invoke(
        args=[
            "users",
            "create",
            "gen@springfield.example",
            "--role",
            "admin",
            "--generate-password",
        ]
    )
    assert result.exit_code == 0, result.output
    password = result.output.split("password: ")[1].strip()
    assert sign_in(client, "gen@springfield.example", password).status_code == 302


def test_cli_users_create_refuses_bad_input(cli: FlaskCliRunner, agency: Agency) -> None:
    bad_role = cli.invoke(
        args=["users", "create", "a@springfield.example", "--role", "chief", "--generate-password"]
    )
    assert bad_role.exit_code == 2 and "Unknown role 'chief'" in bad_role.output
    bad_email = cli.invoke(
        args=["users", "create", "not-an-address", "--role", "officer", "--generate-password"]
    )
    assert bad_email.exit_code == 2 and "Not a valid e-mail address" in bad_email.output
    short = cli.invoke(
        args=["users", "create", "b@springfield.example", "--role", "officer"],
        input="short\nshort\n",
    )
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    assert db.session.scalar(select(User)) is None


def test_cli_users_create_refuses_duplicate(cli: FlaskCliRunner, users: dict[Role, User]) -> None:
    result = cli.invoke(
        args=[
            "users",
            "create",
            "officer@springfield.example",
            "--role",
            "officer",
            "--generate-password",
        ]
    )
    assert result.exit_code == 2 and "already exists" in result.output


def test_cli_users_disable_and_list(cli: FlaskCliRunner, users: dict[Role, User]) -> None:
    assert cli.invoke(args=["users", "disable", "officer@springfield.example"]).exit_code == 0
    listing = cli.invoke(args=["users", "list"]).output
    assert "officer@springfield.example\tspringfield\tofficer\tdisabled" in listing
    assert "admin@springfield.example\tspringfield\tadmin\tactive" in listing
    missing = cli.invoke(args=["users", "disable", "ghost@springfield.example"])
    assert missing.exit_code == 2 and "No account" in missing.output


def test_cli_users_token_works_with_the_api(
    cli: FlaskCliRunner, client: FlaskClient, users: dict[Role, User]
) -> None:
    result = cli.invoke(args=["users", "token", "coordinator@springfield.example"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200 and response.json["roles"] == ["coordinator"]


def test_cli_demo_seed_is_idempotent(app: Flask, cli: FlaskCliRunner, client: FlaskClient) -> None:
    first = cli.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    lines = [line.split() for line in first.output.splitlines()[1:]]
    assert {line[0] for line in lines} == {r.value for r in Role}
    second = cli.invoke(args=["demo", "seed"])
    assert second.exit_code == 0 and "already exist" in second.output
    assert db.session.scalar(select(Case.number)) == DEMO_CASE_NUMBER
    assert len(db.session.scalars(select(User)).all()) == len(Role)
    role, email, password = lines[0]
    assert sign_in(client, email, password).status_code == 302
    assert DEMO_CASE_NUMBER in client.get("/staff/").get_data(as_text=True)


def test_cli_jobs_ping_times_out_without_runner(cli: FlaskCliRunner, app: Flask) -> None:
    class Silent:
        def dispatch(self, job_id: int, delay_s: float = 0.0) -> None:
            pass

    app.extensions["tattletale.runner"] = Silent()
    result = cli.invoke(args=["jobs", "ping", "--wait", "0.3"])
    assert result.exit_code == 2 and "no runner answered" in result.output
    assert db.session.scalar(select(Job.status)) == "queued"


def test_cli_serve_answers_http(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "TATTLETALE_ENV": "testing",
        "TATTLETALE_DATABASE_URL": settings.database_url,
        "TATTLETALE_INSTANCE_PATH": str(settings.instance_path),
        "TATTLETALE_PORT": str(port),
    }
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # a cold start on a loaded machine
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:  # noqa: S310
                    assert r.status == 200
                    # No "Server: Werkzeug/x Python/y" naming versions to attack:
                    # gunicorn always says its name, never its version.
                    assert r.headers.get("Server") in (None, "gunicorn")
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
