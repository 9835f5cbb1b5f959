"""Error pages, security headers and what public pages record."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Role, User


def test_public_index_renders(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "Do you recognize someone?" in response.get_data(as_text=True)


def test_health_checks_the_database(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_security_headers_on_every_response(client: FlaskClient) -> None:
    for path in ("/", "/staff/login", "/api/v1/openapi.json", "/missing"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "camera=()" in headers["Permissions-Policy"]
        assert "Strict-Transport-Security" not in headers  # only in production


def test_staff_pages_are_not_cached(client: FlaskClient) -> None:
    assert client.get("/staff/login").headers["Cache-Control"] == "no-store"


def test_production_sets_hsts_and_host_cookie(settings) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from portal import create_app

    app = create_app(replace(settings, env="production"))
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = app.test_client().get("/", base_url="https://portal.example")
    assert "max-age=" in response.headers["Strict-Transport-Security"]


@pytest.mark.parametrize(("path", "status"), [("/nowhere", 404), ("/healthz", 405)])
def test_error_pages_are_friendly(client: FlaskClient, path: str, status: int) -> None:
    response = client.post(path) if status == 405 else client.get(path)
    assert response.status_code == status
    assert "<h1>" in response.get_data(as_text=True)


def test_request_too_large_is_413(client: FlaskClient) -> None:
    response = client.post(
        "/staff/login", data=b"x" * (33 * 1024 * 1024), content_type="application/octet-stream"
    )
    assert response.status_code == 413
    assert "larger than this site accepts" in response.get_data(as_text=True)


def test_internal_error_shows_no_stack_trace(app: Flask, client: FlaskClient) -> None:
    @app.route("/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in body and "Traceback" not in body
    assert "Reference:" in body


def test_public_requests_record_no_address(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tattletale.access"):
        client.get(
            "/",
            environ_base={"REMOTE_ADDR": "203.0.113.77"},
            headers={"User-Agent": "TipsterBrowser/1.0"},
        )
    records = [r for r in caplog.records if r.name == "tattletale.access"]
    assert records, "the request was not logged at all"
    for record in records:
        text = str(vars(record))
        assert "203.0.113.77" not in text and "TipsterBrowser" not in text
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_staff_requests_record_the_address(
    client: FlaskClient, users: dict[Role, User], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tattletale.access"):
        client.get("/staff/login", environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert any(getattr(r, "client_addr", None) == "198.51.100.9" for r in caplog.records)


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [("/healthz", "text/html"), ("/api/v1/openapi.json", "application/problem+json")],
)
def test_method_not_allowed_says_which_methods_are(
    client: FlaskClient, path: str, mimetype: str
) -> None:
    response = client.delete(path)
    assert response.status_code == 405
    assert response.mimetype == mimetype
    # RFC 9110 15.5.6: a 405 carries Allow, the methods the resource supports.
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


TIPSTER_ADDR = "203.0.113.201"


def _everything_stored() -> str:
    """Every row of every table, as text."""
    dump = []
    for table in db.metadata.sorted_tables:
        dump.extend(str(tuple(row)) for row in db.session.execute(table.select()))
    return "\n".join(dump)


def test_public_requests_leave_no_address_anywhere(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    from portal.services.audit import record_event

    @app.route("/public-audit-probe")
    def probe():  # type: ignore[no-untyped-def]
        # A service that audits something while serving a public page.
        record_event("probe.public", agency_id=None)
        db.session.commit()
        return "ok"

    @app.route("/public-boom")
    def public_boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("broken")

    environ = {"REMOTE_ADDR": TIPSTER_ADDR}
    with caplog.at_level(logging.DEBUG):
        assert client.get("/", environ_base=environ).status_code == 200
        assert client.get("/no/such/page", environ_base=environ).status_code == 404
        assert client.post("/", environ_base=environ).status_code == 405
        assert client.get("/public-audit-probe", environ_base=environ).status_code == 200
        assert client.get("/public-boom", environ_base=environ).status_code == 500
    assert caplog.records, "nothing was logged at all"
    for record in caplog.records:
        assert TIPSTER_ADDR not in str(vars(record)), record
    probe_event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "probe.public"))
    assert probe_event is not None and probe_event.client_addr is None
    assert TIPSTER_ADDR not in _everything_stored()


def test_audience_is_decided_by_where_the_request_enters(client: FlaskClient) -> None:
    # An unknown path under /staff/ or /api/ is still a staff or API request ...
    staff_missing = client.get("/staff/no-such-page")
    assert staff_missing.headers.get("Cache-Control") == "no-store"
    api_missing = client.get("/api/v1/no-such-operation")
    assert api_missing.mimetype == "application/problem+json"
    # ... and anything else is public, including paths that only look alike.
    for path in ("/no-such-page", "/staffroom", "/apiary"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.mimetype == "text/html" and "Cache-Control" not in response.headers


def test_services_never_import_the_http_edge() -> None:
    import ast
    from pathlib import Path

    import portal

    offenders = []
    for path in (Path(portal.__file__).parent / "services").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                names += [f"{node.module}.{alias.name}" for alias in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("portal.http")]
    assert offenders == []


def test_no_server_header_leaves_the_app(app: Flask, client: FlaskClient) -> None:
    @app.route("/sets-server")
    def sets_server():  # type: ignore[no-untyped-def]
        return "x", 200, {"Server": "Werkzeug/3.1 Python/3.11"}

    for path in ("/", "/sets-server", "/nowhere", "/staff/login"):
        assert "Server" not in client.get(path).headers, path


def test_embedded_server_sends_no_server_header(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    import threading
    import urllib.request

    from werkzeug.serving import make_server

    from portal.http.headers import QuietRequestHandler

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with (
            caplog.at_level(logging.INFO, logger="werkzeug"),
            urllib.request.urlopen(f"{base}/healthz", timeout=5) as response,  # noqa: S310
        ):
            assert response.status == 200
            assert response.headers.get("Server") is None
            assert response.headers.get("Date")
        # The server's own log line names no client ...
        lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
        assert any("/healthz" in line for line in lines)
        assert not any("127.0.0.1" in line for line in lines)
        # ... while the app still sees a staff client's address.
        with caplog.at_level(logging.INFO, logger="tattletale.access"):
            urllib.request.urlopen(f"{base}/staff/login", timeout=5).close()  # noqa: S310
        assert any(getattr(r, "client_addr", None) == "127.0.0.1" for r in caplog.records)
    finally:
        server.shutdown()
        thread.join(5)
