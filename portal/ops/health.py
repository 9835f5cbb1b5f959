"""What "ready" means: every service a request may need answers, quickly."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import text

from portal.extensions import db
from portal.services.storage import get_store

log = logging.getLogger(__name__)

PROBE_KEY = "readyz/probe"


def _database() -> None:
    db.session.execute(text("SELECT 1"))


def _broker() -> None:
    celery = current_app.extensions.get("celery")
    if celery is None:
        return
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def _storage() -> None:
    # A HEAD of a key that need not exist: proves the store answers and the
    # credentials are accepted, without writing anything.
    get_store().exists(PROBE_KEY)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "broker": _broker,
    "storage": _storage,
}


def check_readiness() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:
            # The reason goes to the log, not to the (unauthenticated) answer.
            log.warning("readiness check failed", extra={"check": name, "error": repr(exc)})
            results[name] = {"ok": False}
            if name == "database":
                db.session.rollback()
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return results
