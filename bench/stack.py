"""The real stack the portal benchmarks run against, and what they share.

:class:`Stack` makes a private PostgreSQL database on 127.0.0.1:5432 (dropped after
the run), an instance directory, private Redis key prefixes (rate limits and the
Celery queue, as the README's scale-out configures them; deleted after), seeds it
(bench/portal_seed.py, its own process), and serves it with gunicorn under
config/gunicorn.py (bench/portal_wsgi.py adds only the bare baselines) as the
README's scale-out has a web machine run it: the pool for every path on ``port``,
and the staff pool (``TATTLETALE_WEB_POOL=staff``) on ``staff_port``, where the
benchmarks send ``/staff/`` and ``/api/`` as the load balancer's rule does. The load
comes from bench/load.py processes: none of it shares a GIL with the server.

The machine is shared, so every figure is a ratio against a baseline measured in the
same run, interleaved, and each window records the load average it saw.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import redis
from targets import report as targets_report

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from portal.http.server import pool_for  # noqa: E402  (this checkout's, not an installed one)

BENCH = REPO / "bench"
VENV_BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379"
# One gunicorn process per core, config/gunicorn.py's threads: what sizing starts from.
WEB_WORKERS = "2"
# The staff pool: one process (config/gunicorn.py's staff threads).
STAFF_WORKERS = "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(process: subprocess.Popen[Any]) -> None:
    """SIGKILL a process and everything it started (ffmpeg runs in its own group)."""
    for pid in [*descendants(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(30)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


class Stack:
    def __init__(self, *, appeals: int = 500, clip_seconds: int = 0) -> None:
        self.run_id = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.appeals = appeals
        self.clip_seconds = clip_seconds
        self.tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
        self.port = free_port()
        self.staff_port = free_port()
        self.database = self.run_id
        self.redis_db = 14
        self.server: subprocess.Popen[bytes] | None = None
        self.staff_server: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TATTLETALE_")},
            "PYTHONPATH": str(REPO),
            "TATTLETALE_ENV": "production",
            "TATTLETALE_SECRET_KEY": secrets.token_urlsafe(48),
            "TATTLETALE_ENCRYPTION_KEYS": fernet,
            "TATTLETALE_RECEIPT_KEY": secrets.token_urlsafe(48),
            "TATTLETALE_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}",
            "TATTLETALE_STORAGE_URL": f"file://{self.tmp / 'media'}",
            "TATTLETALE_INSTANCE_PATH": str(self.tmp / "instance"),
            # The scale-out: rate limits counted in Redis, jobs through a broker (no
            # embedded runner in the web processes), one trusted load balancer.
            "TATTLETALE_REDIS_URL": f"{REDIS_URL}/{self.redis_db}",
            "TATTLETALE_RATELIMIT_KEY_PREFIX": self.run_id,
            "TATTLETALE_BROKER_URL": f"{REDIS_URL}/{self.redis_db}",
            "TATTLETALE_CELERY_QUEUE": self.run_id,
            "TATTLETALE_TRUSTED_PROXIES": "1",
            "TATTLETALE_REQUIRE_MFA": "false",  # the detective signs in with a password
            # The tip form's proof of work off, as the tip intake benchmarks are
            # defined: no puzzle for the load to solve, no stricter limit for forms
            # sent without one (each is the browser's work, or an abuse control).
            "TATTLETALE_POW_BITS": "0",
            "TATTLETALE_LOG_LEVEL": "WARNING",
            "TATTLETALE_BIND": f"127.0.0.1:{self.port}",
            "TATTLETALE_WEB_WORKERS": WEB_WORKERS,
            "TATTLETALE_STAFF_BIND": f"127.0.0.1:{self.staff_port}",
            "TATTLETALE_STAFF_WORKERS": STAFF_WORKERS,
        }

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        command = [sys.executable, str(BENCH / "portal_seed.py"), str(self.appeals)]
        if self.clip_seconds:
            command += ["--clip", str(self.clip_seconds)]
        seeded = subprocess.run(
            command, env=self.env, cwd=REPO, stdout=subprocess.PIPE, check=True, timeout=1800
        )
        self.info = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
        self.start_server()
        self.warm_up()

    def warm_up(self) -> None:
        """Every worker process and thread has compiled its templates and opened its
        connections before anything is measured: the first window of a run measured
        the server's start otherwise (tip windows with no tip answered in time)."""
        appeals = [f"/appeals/{public_id}" for public_id in self.info["appeals"][:50]]
        for scenario, cfg in [
            ("tips", {"appeal": self.info["viral"]}),
            ("bare_insert", {}),
            ("get", {"paths": ["/", "/bench/bare-page", *appeals]}),
        ]:
            self.measure(scenario, concurrency=16, duration=4.0, **cfg)

    def gunicorn(self, pool: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "-c",
                str(REPO / "config" / "gunicorn.py"),
                "--pythonpath",
                str(BENCH),
                "portal_wsgi:app",
            ],  # fmt: skip
            env={**self.env, "TATTLETALE_WEB_POOL": pool},
            cwd=REPO,
        )

    def start_server(self) -> None:
        self.server = self.gunicorn("all")
        self.staff_server = self.gunicorn("staff")
        for server, port in [(self.server, self.port), (self.staff_server, self.staff_port)]:
            self.wait_for(server, port)

    def wait_for(self, server: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}")
            try:
                with urllib.request.urlopen(  # noqa: S310
                    f"http://127.0.0.1:{port}/bench/bare-page", timeout=5
                ) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer within 240 s")

    def close(self) -> None:
        for server in (self.server, self.staff_server):
            if server is not None and server.poll() is None:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    kill_tree(server)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        client = redis.Redis.from_url(f"{REDIS_URL}/{self.redis_db}")
        keys = [k for k in client.scan_iter(f"*{self.run_id}*", count=1000)]
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- use -----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def port_for(self, path: str) -> int:
        """The load balancer's rule (README, "Scale-out"): staff paths to the staff pool."""
        return self.staff_port if pool_for(path) == "staff" else self.port

    def sql(self, query: str) -> Any:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{self.database}") as conn:
            row = conn.execute(query).fetchone()
            return row[0] if row else None

    def python(self, script: str, *args: str) -> subprocess.Popen[str]:
        """A process of the portal's own (a job, like a worker on this machine)."""
        return subprocess.Popen(
            [sys.executable, str(BENCH / script), *args],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )

    def load(self, scenario: str, **cfg: Any) -> Load:
        return Load(self, scenario, cfg)

    def measure(self, scenario: str, **cfg: Any) -> dict[str, Any]:
        return self.load(scenario, **cfg).result()


class Load:
    """One bench/load.py process; with ``duration`` it stops by itself, without it
    it runs until :meth:`result` (background load)."""

    def __init__(self, stack: Stack, scenario: str, cfg: dict[str, Any]) -> None:
        self.load_before = loadavg()
        self.background = not cfg.get("duration")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "load.py"),
                json.dumps({"scenario": scenario, "port": stack.port, **cfg}),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        started = self.process.stdout.readline()
        if not started:
            raise RuntimeError(f"load {scenario} did not start")

    def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        if self.process.poll() is None and self.background:
            self.process.send_signal(signal.SIGTERM)
        line = self.process.stdout.readline()
        self.process.wait(60)
        if not line:
            raise RuntimeError("the load generator printed no result")
        out: dict[str, Any] = json.loads(line)
        if out["errors"]:
            raise RuntimeError(f"load generator errors: {out['errors']}")
        out["rate"] = out["ok"] / out["seconds"]
        out["p50_ms"] = percentile(out["latencies_ms"], 50)
        out["p95_ms"] = percentile(out["latencies_ms"], 95)
        out["p99_ms"] = percentile(out["latencies_ms"], 99)
        out["load"] = max(self.load_before, loadavg())
        return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(results: dict[str, float], targets: dict[str, tuple[str, float]]) -> int:
    """Print ``name: figure`` lines, then each target and whether it is met; 1 on a miss."""
    return targets_report(targets, results)
