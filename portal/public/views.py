from __future__ import annotations

from flask import jsonify, render_template
from sqlalchemy import text

from portal.extensions import db
from portal.public import bp


@bp.route("/")
def index():
    # Published appeals arrive with the publishing feature; until then the page says so.
    return render_template("public/index.html", appeals=[])


@bp.route("/healthz")
def health():
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")
