"""Security headers, set by the app itself so tests can see them."""

from __future__ import annotations

from flask import Flask, Response

from portal.http.edge import Audience, request_audience

# No inline scripts or styles anywhere: every script is a file under /static, so an
# injected <script> or on* attribute does not run. Media and images may be blob: for
# the upload previews and the editor.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)


def init_app(app: Flask) -> None:
    production = app.config["TATTLETALE"].is_production

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
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
