"""The production WSGI server, for the embedded mode (``make run``, ``flask serve``)
and for each web machine of the scale-out (``gunicorn -c config/gunicorn.py wsgi:app``).

gunicorn with the ``gthread`` worker: a request holds a thread, not a process, so a
clip upload at 1 MB/s from a patrol car holds one of many threads while the others
keep answering tips and staff pages. gunicorn writes no access log unless asked
(its format prints client addresses); the portal logs requests itself, without any
address on public paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or ""
    if not raw.strip():
        return default
    if not raw.strip().isascii() or not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def server_options(
    environ: Mapping[str, str] | None = None, *, bind: str | None = None
) -> dict[str, Any]:
    """gunicorn settings from ``TATTLETALE_WEB_*`` variables; shared by ``flask serve``
    and ``config/gunicorn.py`` so both run the same server."""
    env = os.environ if environ is None else environ
    port = _int(env, "TATTLETALE_PORT", 5000)
    return {
        "bind": bind or env.get("TATTLETALE_BIND") or f"127.0.0.1:{port}",
        "worker_class": "gthread",
        "workers": _int(env, "TATTLETALE_WEB_WORKERS", 1),
        "threads": _int(env, "TATTLETALE_WEB_THREADS", 32),
        # A worker that stops answering its arbiter for this long is restarted; it
        # does not bound a request (a 4 GB upload streams for many minutes).
        "timeout": _int(env, "TATTLETALE_WEB_TIMEOUT", 60),
        "graceful_timeout": 30,
        "keepalive": 5,
        # Request line and header limits: a hostile client gets 400, not our memory.
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": (env.get("TATTLETALE_LOG_LEVEL") or "info").lower(),
        "post_worker_init": post_worker_init,
        "proc_name": "tattletale-web",
    }


def post_worker_init(worker: Any) -> None:
    """In every web process: the embedded job runner starts in exactly one of them."""
    from portal.extensions import db
    from portal.jobs.lease import start_embedded_runner

    app = worker.wsgi
    if isinstance(app, Flask):
        with app.app_context():
            # Connections opened before the fork belong to the arbiter: never share
            # them (SQLAlchemy's advice for forking servers).
            db.engine.dispose(close=False)
        start_embedded_runner(app)


class PortalServer(BaseApplication):
    """gunicorn serving an app object this process already built."""

    def __init__(self, app: Flask, options: Mapping[str, Any]) -> None:
        self.application = app
        self.options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve(app: Flask, *, host: str, port: int) -> None:
    PortalServer(app, server_options(bind=f"{host}:{port}")).run()
