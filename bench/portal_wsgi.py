"""The portal as the benchmarks serve it: ``gunicorn -c config/gunicorn.py
--pythonpath bench portal_wsgi:app``, i.e. the product's app and server settings,
plus two bench-only baselines that are not part of the product:

- ``POST /bench/bare-insert``: a bare Flask endpoint inserting one row (the tip
  intake's baseline): no form, no CSRF, no validation, one INSERT and a commit.
- ``GET /bench/bare-page``: a bare Flask endpoint rendering a constant page (the
  appeal page's baseline).

Both go through the same app, so through the same hooks every request pays (the
edge, logging, the transaction, security headers): what the ratios measure is what
the real views add on top.
"""

from __future__ import annotations

import secrets

from flask import render_template_string
from sqlalchemy import text

from portal import create_app
from portal.extensions import csrf, db

app = create_app()

_BARE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title></head><body><main><h1>{{ title }}</h1>
<p>{{ body }}</p></main></body></html>"""


@app.route("/bench/bare-insert", methods=["POST"])
@csrf.exempt
def bare_insert() -> tuple[str, int]:
    db.session.execute(
        text("INSERT INTO bench_rows (body) VALUES (:body)"), {"body": secrets.token_hex(32)}
    )
    db.session.commit()
    return "ok", 200


@app.route("/bench/bare-page")
def bare_page() -> str:
    return render_template_string(_BARE_PAGE, title="A constant page", body="Nothing here. " * 40)
