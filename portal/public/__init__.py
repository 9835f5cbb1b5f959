"""Public pages, for anyone. Nothing here records who the visitor is: no address,
no user agent, no third-party request (fonts, analytics, embeds)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__, template_folder="../templates")

from portal.public import views  # noqa: E402,F401
