"""Public pages, for anyone. Nothing here records who the visitor is: no address,
no user agent, no third-party request (fonts, analytics, embeds)."""

from __future__ import annotations

from flask import Blueprint

from portal.i18n import init_blueprint

bp = Blueprint("public", __name__, template_folder="../templates")
# Every public link keeps a language chosen with ?lang= (portal/i18n.py).
init_blueprint(bp)

from portal.public import views  # noqa: E402,F401
