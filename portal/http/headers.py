"""Security headers, set by the app itself so tests can see them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response
from werkzeug.serving import WSGIRequestHandler

from portal.http.edge import Audience, request_audience
from portal.services.public_media import public_media_origin


def content_security_policy(media_origin: str = "") -> str:
    """No inline scripts or styles anywhere: every script is a file under /static, so
    an injected <script> or on* attribute does not run. Media and images may be blob:
    for the upload previews and the editor, and may come from exactly the public
    media origin when one is configured (TATTLETALE_PUBLIC_MEDIA_URL), nowhere else."""
    extra = f" {media_origin}" if media_origin else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob:{extra}",
            f"media-src 'self' blob:{extra}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()

PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)


def init_app(app: Flask) -> None:
    production = app.config["TATTLETALE"].is_production
    media_base = app.config["TATTLETALE"].public_media_url
    policy = content_security_policy(public_media_origin(media_base) if media_base else "")

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # Public pages send no referrer at all: a tipster's click to another site must
        # not tell it which appeal they were reading.
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if production:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if request_audience() is not Audience.PUBLIC:
            # Staff pages show evidence: never keep them in a shared cache or history.
            headers.setdefault("Cache-Control", "no-store")
        return response


class DropServerHeader:
    """WSGI middleware: no ``Server`` header leaves the app, whatever sets one.

    A ``Server: Werkzeug/3.1 Python/3.11`` tells an attacker which versions to look
    up vulnerabilities for. The header a WSGI server adds itself is out of the app's
    reach: the embedded server is run with :class:`QuietRequestHandler`; gunicorn
    always sends ``Server: gunicorn`` (no version), which the reverse proxy in front
    of it should drop (nginx: ``proxy_hide_header Server;``; see the README).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() != "server"]
            return start_response(status, kept, exc_info)

        return self.app(environ, start)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler without its ``Server`` header (see DropServerHeader)
    and without client addresses in its own log lines (a malformed request is logged
    as an error before the app could tell whether it was a tipster's)."""

    def log(self, type: str, message: str, *args: Any) -> None:
        # Werkzeug's own line, less the address it starts with. (Not address_string:
        # that is also where the request's REMOTE_ADDR comes from.)
        level = logging.getLevelNamesMapping().get(type.upper(), logging.INFO)
        logging.getLogger("werkzeug").log(
            level, f"- - - [{self.log_date_time_string()}] {message}", *args
        )

    def send_response(self, code: int, message: str | None = None) -> None:
        # http.server's send_response, less the Server header it always adds.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())
