"""The production WSGI server, for the embedded mode (``make run``, ``flask serve``)
and for each web machine of the scale-out (``gunicorn -c config/gunicorn.py wsgi:app``).

gunicorn with the ``gthread`` worker: a request holds a thread, not a process, so a
clip upload at 1 MB/s from a patrol car holds one of many threads while the others
keep answering tips and staff pages. gunicorn writes no access log unless asked
(its format prints client addresses); the portal logs requests itself, without any
address on public paths.

Staff pages get workers of their own: a second pool (``TATTLETALE_WEB_POOL=staff``
with config/gunicorn.py, or ``TATTLETALE_STAFF_PORT`` with ``flask serve``) to which
the load balancer sends ``/staff/`` and ``/api/``. Threads of one process share one
interpreter lock, so a detective's page answered by a process that is also taking a
flood of tips waits behind them (measured by bench/tip_load_bench.py: a p95 of 1.6 s
at 80 tips/s); in a pool of its own it waits for nothing but the database.
"""

from __future__ import annotations

import contextlib
import os
import signal
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


#: The pools a web machine may run: every path, or the staff pool (what the load
#: balancer sends to it: :func:`pool_for`).
POOLS = ("all", "staff")
#: The paths of the staff pool: staff pages and the API (detectives, officers' tools)...
STAFF_PATHS = ("/staff/", "/api/")
#: ...but for clip uploads (a slow upload holds a thread for minutes, and the pool for
#: every path has the threads for that: TATTLETALE_WEB_THREADS) and the API's public
#: operations (tipsters', like the public site). docs/deploy/nginx.conf has this rule.
NOT_STAFF_PATHS = ("/staff/uploads/", "/api/v1/uploads", "/api/v1/public/")


def pool_for(path: str) -> str:
    """Which pool the load balancer sends ``path`` to (README, "Scale-out")."""
    if path.startswith(STAFF_PATHS) and not path.startswith(NOT_STAFF_PATHS):
        return "staff"
    return "all"


def server_options(
    environ: Mapping[str, str] | None = None,
    *,
    bind: str | None = None,
    pool: str | None = None,
) -> dict[str, Any]:
    """gunicorn settings from ``TATTLETALE_WEB_*`` variables; shared by ``flask serve``
    and ``config/gunicorn.py`` so both run the same server. ``pool`` (default:
    ``TATTLETALE_WEB_POOL``, else ``all``) ``staff`` gives the staff pool's settings,
    from ``TATTLETALE_STAFF_*``."""
    env = os.environ if environ is None else environ
    pool = pool or (env.get("TATTLETALE_WEB_POOL") or "all").strip().lower()
    if pool not in POOLS:
        raise ValueError(f"TATTLETALE_WEB_POOL must be one of {', '.join(POOLS)}, not {pool!r}")
    port = _int(env, "TATTLETALE_PORT", 5000)
    if pool == "staff":
        staff_port = _int(env, "TATTLETALE_STAFF_PORT", port + 1)
        bind = bind or env.get("TATTLETALE_STAFF_BIND") or f"127.0.0.1:{staff_port}"
        # A detective's page is short work: a few threads per process are plenty.
        workers = _int(env, "TATTLETALE_STAFF_WORKERS", 1)
        threads = _int(env, "TATTLETALE_STAFF_THREADS", 8)
    else:
        bind = bind or env.get("TATTLETALE_BIND") or f"127.0.0.1:{port}"
        workers = _int(env, "TATTLETALE_WEB_WORKERS", 1)
        threads = _int(env, "TATTLETALE_WEB_THREADS", 32)
    return {
        "bind": bind,
        "worker_class": "gthread",
        "workers": workers,
        "threads": threads,
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
        "proc_name": "tattletale-staff" if pool == "staff" else "tattletale-web",
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


def serve(app: Flask, *, host: str, port: int, staff_port: int | None = None) -> None:
    """Serve every path on ``port``; with ``staff_port``, also a staff pool there (its
    own gunicorn, forked before either starts, stopped with this one)."""
    if staff_port is None:
        PortalServer(app, server_options(bind=f"{host}:{port}")).run()
        return
    staff = os.fork()
    if staff == 0:  # pragma: no cover (the child's coverage is not collected)
        try:
            PortalServer(app, server_options(bind=f"{host}:{staff_port}", pool="staff")).run()
        finally:
            os._exit(0)
    try:
        PortalServer(app, server_options(bind=f"{host}:{port}")).run()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(staff, signal.SIGTERM)
        os.waitpid(staff, 0)
