from __future__ import annotations

import hmac

from flask import Response, abort, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from portal.extensions import db
from portal.ops import bp
from portal.ops.health import check_readiness
from portal.ops.metrics import registry


@bp.route("/healthz")
def health() -> Response:
    """Liveness: this process answers and reaches its database."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")


@bp.route("/readyz")
def ready() -> tuple[Response, int]:
    """Readiness for a load balancer: the database, the broker (scale-out) and the
    evidence store all answer. 503 takes the node out of rotation."""
    checks = check_readiness()
    ok = all(check["ok"] for check in checks.values())
    return jsonify(status="ready" if ok else "not ready", checks=checks), 200 if ok else 503


@bp.route("/metrics")
def metrics() -> Response:
    """Prometheus text format. Off (404) unless TATTLETALE_METRICS_TOKEN is set; the
    scraper sends it as a bearer token. Queue depth and job figures come from the
    job table, so every web process reports the same numbers."""
    token = current_app.config["TATTLETALE"].metrics_token
    if not token:
        abort(404)
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        abort(401)
    return Response(generate_latest(registry()), mimetype=CONTENT_TYPE_LATEST)
