from __future__ import annotations

from flask import render_template

from portal.public import bp


@bp.route("/")
def index():
    # Published appeals arrive with the publishing feature; until then the page says so.
    return render_template("public/index.html", appeals=[])
