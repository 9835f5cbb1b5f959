"""Endpoints for the operator's machines, not for people: liveness, readiness and
Prometheus metrics. Like the public pages they record nobody's address; unlike them
they never show anything about a case."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ops", __name__)

from portal.ops import views  # noqa: E402,F401
