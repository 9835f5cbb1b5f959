"""Structured logs: one JSON object per line on stderr.

Public requests are logged without client address or user agent (anonymous
tipsters leave no trace); werkzeug's own access log, which prints addresses, is
turned down to warnings for the same reason.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from portal.http.edge import Audience, request_audience

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(app: Flask) -> None:
    settings = app.config["TATTLETALE"]
    root = logging.getLogger()
    if not any(getattr(h, "_tattletale", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._tattletale = True  # type: ignore[attr-defined]
        if settings.log_format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    access_log = logging.getLogger("tattletale.access")

    @app.before_request
    def start_timer() -> None:
        g.request_id = uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        started = g.get("request_started")
        fields: dict[str, Any] = {
            "request_id": g.get("request_id"),
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        }
        if request_audience() is not Audience.PUBLIC:
            from flask_login import current_user

            fields["user"] = getattr(current_user, "public_id", None) or g.get("api_user_id")
            fields["client_addr"] = request.remote_addr
        access_log.info("request", extra=fields)
        return response
