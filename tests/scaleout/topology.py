"""The README's scale-out, started for real on loopback: a private PostgreSQL, a private
Redis (the broker and the rate limits), moto's S3 server behind a TCP proxy that can be
cut, two gunicorn web processes, two Celery workers and Celery beat, each on its own
port and instance directory, each stoppable and restartable, all torn down after.

Every process is started with the commands and variables of the README's scale-out
block; what differs is said where it is set (ports, one gunicorn process per web
machine, one pool process per worker, an agency without two-step sign-in).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: One account per role the tests act as; the admin connects the agency's channels.
ROLES = ("officer", "supervisor", "detective", "admin")
PASSWORD_LINE = re.compile(r"password[^:]*:\s*(\S+)", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], Any], *, timeout_s: float, what: str, interval_s: float = 0.2
) -> Any:
    """Poll ``check`` until it returns something truthy; its value is returned."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the last one is reported
            last = exc
        else:
            if value:
                return value
        time.sleep(interval_s)
    raise TimeoutError(f"{what} did not happen within {timeout_s:g} s (last error: {last!r})")


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries are not installed")
    return Path(found[-1]).parent


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(stat).read_text()
            ppid = int(text[text.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(stat.split("/")[2]))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def processes_named(name: str) -> list[int]:
    """Live (not zombie) processes whose executable is ``name``."""
    found = []
    for comm in glob.glob("/proc/[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if Path(comm).read_text().strip() != name:
                continue
            state = Path(comm).with_name("stat").read_text()
            if state[state.rindex(")") + 2] != "Z":
                found.append(int(comm.split("/")[2]))
    return found


def process_env(pid: int) -> dict[str, str]:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/environ").read_bytes()
        return dict(
            item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
        )
    return {}


@dataclass
class Service:
    """One process of the topology, started in a session of its own (so a stop reaches
    its children) with its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = REPO
    ready: Callable[[Service], bool] | None = None
    ready_timeout_s: float = 180.0
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    # Where this start's output begins in the log (appended to across restarts).
    log_start: int = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True) -> Service:
        if self.running:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept by the child
        self.log_start = log.tell()
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        if self.ready is not None:
            wait_for(
                self._check_ready, timeout_s=self.ready_timeout_s, what=f"{self.name} starting"
            )

    def _check_ready(self) -> bool:
        if not self.running:
            raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
        assert self.ready is not None
        return self.ready(self)

    def stop(self, sig: int | None = None, timeout_s: float = 30.0) -> None:
        """Stop the process (and its session); SIGKILL what is left after the timeout."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig or self.stop_signal)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Children that outlived the leader (still in its session).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the process and everything in its session, as a crash would."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self) -> str:
        """What the process wrote since it was last started: a restarted process is
        ready when it says so again, not when its previous run's line is found."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_start)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class CuttableProxy:
    """A TCP proxy a test can cut (new connections refused, open ones dropped) and
    restore, on the same port: the storage network going away and coming back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def cut_now(self) -> bool:
        return self._listener is None

    def start(self) -> None:
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
                with self._lock:
                    self._connections.discard(s)

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections = list(self._connections)
        for s in connections:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def restore(self) -> None:
        if self._listener is None:
            self._listen()

    @contextlib.contextmanager
    def cut_for(self, seconds: float) -> Iterator[None]:
        self.cut()
        try:
            yield
            time.sleep(seconds)
        finally:
            self.restore()

    def stop(self) -> None:
        self.cut()


@dataclass
class Account:
    email: str
    password: str
    token: str


@dataclass
class Topology:
    root: Path
    web_count: int = 2
    worker_count: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Hold worker N (and the ffmpeg it starts) to core N-1 with taskset.
    worker_affinity: bool = False
    services: dict[str, Service] = field(default_factory=dict)
    proxy: CuttableProxy | None = None
    accounts: dict[str, Account] = field(default_factory=dict)
    agency_slug: str = "springfield"

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs = self.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.s3_port = free_port()
        self.web_ports = [free_port() for _ in range(self.web_count)]
        self.bucket = f"tt-{secrets.token_hex(4)}"

    # -- the settings of the README's block ----------------------------------------

    def env(self, instance: str) -> dict[str, str]:
        assert self.proxy is not None
        from cryptography.fernet import Fernet

        if not hasattr(self, "_secrets"):
            self._secrets = {
                "TATTLETALE_SECRET_KEY": secrets.token_urlsafe(48),
                "TATTLETALE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "TATTLETALE_RECEIPT_KEY": secrets.token_urlsafe(48),
            }
        instance_path = self.root / instance
        instance_path.mkdir(exist_ok=True)
        env = {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            # Each machine has its own home (gunicorn keeps its control socket there).
            "HOME": str(instance_path),
            "PYTHONPATH": str(REPO),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "TATTLETALE_ENV": "production",
            **self._secrets,
            "TATTLETALE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{self.pg_port}/tattletale",
            "TATTLETALE_STORAGE_URL": f"s3://{self.bucket}/tattletale",
            "TATTLETALE_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "TATTLETALE_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/1",
            "TATTLETALE_TRUSTED_PROXIES": "1",
            # Storage through the proxy a test may cut.
            "TATTLETALE_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.proxy.port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            # One directory per machine: nothing may rely on a file another wrote.
            "TATTLETALE_INSTANCE_PATH": str(instance_path),
            "TATTLETALE_LOG_LEVEL": "INFO",
        }
        env.update(self.extra_env)
        return env

    # -- the services --------------------------------------------------------------

    def _service(self, name: str, argv: list[str], env: dict[str, str], **kw: Any) -> Service:
        service = Service(name, argv, env, self.logs / f"{name}.log", **kw)
        self.services[name] = service
        return service

    def start(self) -> Topology:
        # Independent services start together: the machine is small and shared.
        for service in (self._postgres(), self._redis(), self._s3()):
            service.start(wait=False)
        for name in ("postgres", "redis", "s3"):
            self.services[name].wait_ready()
        self._create_database()
        self._create_bucket()
        setup = self._setup()
        starting = [self._web(i) for i in range(self.web_count)]
        starting += [self.worker(i) for i in range(self.worker_count)]
        for service in starting:
            service.start(wait=False)
        self._read_setup(setup)
        # Beat once the schema exists (its first control pass reads the jobs).
        starting.append(self._beat().start(wait=False))
        for service in starting:
            service.wait_ready()
        return self

    def _postgres(self) -> Service:
        # Outside the test's own directory, which only root may enter: the server
        # runs as the postgres account (it refuses to run as root).
        data = Path(tempfile.mkdtemp(prefix="tattletale-pg-"))
        self._pg_data = data
        shutil.chown(data, "postgres", "postgres")
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        bindir = postgres_bin()
        subprocess.run(  # noqa: S603
            [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres"]
            + ["--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        argv = [*as_postgres, str(bindir / "postgres"), "-D", str(data), "-p", str(self.pg_port)]
        # Its socket in its own directory, TCP on loopback only.
        argv += ["-k", str(data), "-c", "listen_addresses=127.0.0.1"]
        return self._service(
            "postgres",
            argv,
            {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            ready=lambda s: _port_open(self.pg_port) and _pg_accepts(self.pg_port),
            # Fast shutdown: sessions are ended, committed work is kept.
            stop_signal=signal.SIGINT,
        )

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE tattletale")

    def _redis(self) -> Service:
        data = self.root / "redis"
        data.mkdir()
        # No persistence: a restart comes back empty, as a lost broker machine would.
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(data)]
        return self._service(
            "redis", argv, {"PATH": "/usr/bin:/bin"}, ready=lambda s: _port_open(self.redis_port)
        )

    def _s3(self) -> Service:
        env = {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": str(self.root),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.proxy = CuttableProxy(self.s3_port)
        self.proxy.start()
        return self._service(
            "s3",
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)],
            env,
            ready=lambda s: _port_open(self.s3_port),
        )

    def _create_bucket(self) -> None:
        # The bucket must exist before anything else (README).
        self.s3_client().create_bucket(Bucket=self.bucket)

    def s3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.s3_port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def flask(self, *args: str, instance: str = "admin") -> str:
        result = subprocess.run(  # noqa: S603
            [str(BIN / "flask"), "--app", "wsgi", *args],
            env=self.env(instance),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def _setup(self) -> subprocess.Popen[str]:
        """The README's operator commands (``db upgrade``, an agency, one account per
        role and its API token), run through the same click commands in one process:
        each ``flask`` invocation would import the whole app again."""
        emails = [f"{role}@springfield.example" for role in ROLES]
        commands = [["db", "upgrade"]]
        # Without two-step sign-in, which the browser journeys cover, so a test signs in
        # with a password alone.
        commands.append(
            ["agencies", "create", "Springfield PD", "--slug", self.agency_slug, "--no-require-mfa"]
        )
        for role, email in zip(ROLES, emails, strict=True):
            commands.append(
                ["users", "create", email, "--role", role, "--agency", self.agency_slug]
            )
            commands[-1].append("--generate-password")
            commands.append(["users", "token", email])
        script = (
            "import json, sys\n"
            "from wsgi import app\n"
            "runner = app.test_cli_runner()\n"
            "for args in json.loads(sys.argv[1]):\n"
            "    with app.app_context():\n"
            "        result = runner.invoke(args=args)\n"
            "    out = result.output + (repr(result.exception) if result.exit_code else '')\n"
            "    print(json.dumps([args, result.exit_code, out]), flush=True)\n"
            "    if result.exit_code:\n"
            "        sys.exit(1)\n"
        )
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", script, json.dumps(commands)],
            env=self.env("admin"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _read_setup(self, setup: subprocess.Popen[str]) -> None:
        output, _ = setup.communicate(timeout=300)
        if setup.returncode != 0:
            raise RuntimeError(f"setting up the topology failed:\n{output}")
        results = [json.loads(line) for line in output.splitlines() if line.startswith("[[")]
        passwords: dict[str, str] = {}
        for args, _, text in results:
            if args[:2] == ["users", "create"]:
                match = PASSWORD_LINE.search(text)
                assert match, text
                passwords[args[2]] = match.group(1)
            elif args[:2] == ["users", "token"]:
                role = args[2].split("@")[0]
                self.accounts[role] = Account(args[2], passwords[args[2]], text.strip())

    def _web(self, index: int) -> Service:
        port = self.web_ports[index]
        env = self.env(f"web{index + 1}")
        env["TATTLETALE_BIND"] = f"127.0.0.1:{port}"
        # One process per web machine: the two machines are what is under test.
        env["TATTLETALE_WEB_WORKERS"] = "1"
        argv = [str(BIN / "gunicorn"), "-c", str(REPO / "config" / "gunicorn.py"), "wsgi:app"]
        return self._service(
            f"web{index + 1}",
            argv,
            env,
            ready=lambda s: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok,
        )

    def worker(self, index: int) -> Service:
        name = f"worker{index + 1}"
        if name in self.services:
            return self.services[name]
        cores = (
            ["taskset", "-c", str(index % (os.cpu_count() or 1))] if self.worker_affinity else []
        )
        argv = [*cores, str(BIN / "celery"), "-A", "portal.celery_worker", "worker"]
        argv += ["--hostname", f"{name}@%h", "--queues", "tattletale", "--loglevel", "INFO"]
        # One pool process per worker: one job at a time each, as on a one-core machine.
        argv += ["--concurrency", "1"]
        return self._service(
            name,
            argv,
            self.env(name),
            ready=lambda s: " ready." in s.log_since_start(),
            # Warm shutdown would wait for a render to finish.
            stop_signal=signal.SIGQUIT,
        )

    def _beat(self) -> Service:
        instance = self.root / "beat"
        argv = [str(BIN / "celery"), "-A", "portal.celery_worker", "beat"]
        argv += ["--schedule", str(instance / "celerybeat-schedule"), "--loglevel", "INFO"]
        return self._service(
            "beat",
            argv,
            self.env("beat"),
            ready=lambda s: "maxinterval" in s.log_since_start(),
        )

    def stop(self) -> None:
        for name in reversed(list(self.services)):
            with contextlib.suppress(Exception):
                self.services[name].stop(timeout_s=15)
        if self.proxy is not None:
            self.proxy.stop()
        if getattr(self, "_pg_data", None) is not None:
            shutil.rmtree(self._pg_data, ignore_errors=True)

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    # -- what the tests look at --------------------------------------------------------

    def url(self, index: int, path: str) -> str:
        return f"http://127.0.0.1:{self.web_ports[index]}{path}"

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.pg_port}/tattletale", autocommit=True
        ) as conn:
            return list(conn.execute(query, params or None).fetchall())

    def work_leftovers(self) -> list[str]:
        found = []
        for instance in self.root.iterdir():
            for sub in ("work", "uploads"):
                path = instance / sub
                if path.is_dir():
                    found += [str(p) for p in path.iterdir()]
        return found

    def incomplete_multipart(self) -> list[str]:
        answer = self.s3_client().list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in answer.get("Uploads", [])]

    def ffmpeg_of_topology(self) -> list[int]:
        """ffmpeg processes started by this topology's workers (their environment is
        empty but PATH, so they are told apart by their parents or arguments)."""
        found = []
        for pid in processes_named("ffmpeg"):
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                if str(self.root) in cmdline:
                    found.append(pid)
        return found


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pg_accepts(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True
