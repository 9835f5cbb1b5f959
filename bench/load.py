"""The load generator of the portal benchmarks, in a process of its own (it shares no
GIL with the server): ``python bench/load.py JSON``, JSON naming a scenario and its
parameters. Threads with one keep-alive http.client connection each. Prints one JSON
line of results when done (after ``duration`` seconds, or on SIGTERM for background
load).

Scenarios:
- ``tips``: the real tip form. Each thread opens the form once (its session cookie and
  CSRF token, as a browser would) and then sends tips with it; every tip is checked
  (CSRF, text validation) and answered with a receipt, which is what counts as
  accepted. Each tip comes from its own address (``X-Forwarded-For``; the server
  trusts one proxy, as the scale-out runs behind a load balancer), so the per-client
  rate limits stay at their defaults and are counted in Redis for every tip, and
  none of them is limited.
- ``bare_insert``: POST to the bench-only endpoint inserting one row.
- ``get``: GET one of ``paths`` (round robin), optionally signed in as staff.
- ``stream``: ``clients`` viewers of a video, each fetching it with Range requests of
  ``chunk`` bytes, the first ``burst`` bytes at once and the rest at ``pace`` bytes/s
  (a player buffering ahead of playback), starting again at the end.
- ``uploads``: ``clients`` tus uploads, each PATCH streamed at ``pace`` bytes/s.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

RECEIPT = re.compile(rb"T-[0-9A-Z]{5}-[0-9A-Z]{5}")
CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
stop = threading.Event()
_addresses = itertools.count(1)
_address_lock = threading.Lock()


def next_address() -> str:
    with _address_lock:
        n = next(_addresses) + (os.getpid() % 200) * 70_000
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Client:
    def __init__(self, port: int, timeout: float = 60) -> None:
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError, TimeoutError):
                # A keep-alive connection the server closed: reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return response.status, data, response

    def csrf(self, path: str) -> str:
        status, page, _ = self.request("GET", path)
        match = CSRF.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"no CSRF token on {path} ({status})")
        return match.group(1).decode()


class Recorder:
    def __init__(self, warmup: float) -> None:
        self.lock = threading.Lock()
        self.measure_from = time.monotonic() + warmup
        self.measure_to: float | None = None
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.accepted_total = 0  # including warm-up: what the database must hold

    def record(self, started: float, ok: bool, status: str) -> None:
        now = time.monotonic()
        with self.lock:
            if ok:
                self.accepted_total += 1
            if now < self.measure_from or (self.measure_to is not None and now > self.measure_to):
                return
            self.statuses[status] += 1
            if ok:
                self.latencies.append((now - started) * 1000)

    def result(self) -> dict[str, Any]:
        end = self.measure_to or time.monotonic()
        return {
            "ok": len(self.latencies),
            "seconds": max(1e-9, end - self.measure_from),
            "statuses": dict(self.statuses),
            "latencies_ms": self.latencies,
            "accepted_total": self.accepted_total,
        }


def paced(rate_per_thread: float | None) -> Any:
    """A generator that sleeps to keep one thread at its share of the rate."""
    start = time.monotonic()
    for n in itertools.count():
        if rate_per_thread:
            delay = start + n / rate_per_thread - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield n


def tips_worker(cfg: dict[str, Any], rec: Recorder) -> None:
    client = Client(cfg["port"])
    path = f"/appeals/{cfg['appeal']}/tip?via=facebook"
    token = client.csrf(path)
    rate = cfg.get("rate")
    for n in paced(rate / cfg["concurrency"] if rate else None):
        if stop.is_set():
            return
        body = urllib.parse.urlencode(
            {
                "csrf_token": token,
                "body": f"I saw him outside the bakery on Main Street, tip {n}. "
                "He had a red jacket and drove a grey hatchback.",
                "seen_when": "last Friday around 6 pm",
                "via": "facebook",
                "website": "",
            }
        )
        started = time.monotonic()
        try:
            status, page, _ = client.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Forwarded-For": next_address(),
                },
            )
        except (OSError, http.client.HTTPException) as exc:
            rec.record(started, False, type(exc).__name__)
            continue
        rec.record(started, status == 200 and RECEIPT.search(page) is not None, str(status))


def bare_insert_worker(cfg: dict[str, Any], rec: Recorder) -> None:
    client = Client(cfg["port"])
    rate = cfg.get("rate")
    for _ in paced(rate / cfg["concurrency"] if rate else None):
        if stop.is_set():
            return
        started = time.monotonic()
        try:
            status, _, _ = client.request(
                "POST", "/bench/bare-insert", headers={"X-Forwarded-For": next_address()}
            )
        except (OSError, http.client.HTTPException) as exc:
            rec.record(started, False, type(exc).__name__)
            continue
        rec.record(started, status == 200, str(status))


def sign_in(client: Client, email: str, password: str) -> None:
    token = client.csrf("/staff/login")
    body = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token})
    status, page, _ = client.request(
        "POST",
        "/staff/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 302:
        raise RuntimeError(f"sign-in answered {status}: {page[:300]!r}")


def get_worker(cfg: dict[str, Any], rec: Recorder) -> None:
    client = Client(cfg["port"])
    if cfg.get("staff"):
        sign_in(client, cfg["staff"]["email"], cfg["staff"]["password"])
    paths = cfg["paths"]
    rate = cfg.get("rate")
    offset = threading.get_ident() % len(paths)
    for n in paced(rate / cfg["concurrency"] if rate else None):
        if stop.is_set():
            return
        started = time.monotonic()
        try:
            status, _, _ = client.request("GET", paths[(n + offset) % len(paths)])
        except (OSError, http.client.HTTPException) as exc:
            rec.record(started, False, type(exc).__name__)
            continue
        rec.record(started, status == 200, str(status))


def stream_worker(cfg: dict[str, Any], rec: Recorder) -> None:
    client = Client(cfg["port"], timeout=120)
    size, chunk, burst, pace = cfg["size"], cfg["chunk"], cfg["burst"], cfg["pace"]
    while not stop.is_set():
        position = 0
        paced_from: float | None = None  # when the burst ended and playback pacing began
        paced_base = 0
        while position < size and not stop.is_set():
            if position >= burst:
                if paced_from is None:
                    paced_from, paced_base = time.monotonic(), position
                due = paced_from + (position - paced_base) / pace
                if (delay := due - time.monotonic()) > 0:
                    stop.wait(delay)
                    continue
            end = min(size, position + chunk) - 1
            started = time.monotonic()
            try:
                status, data, _ = client.request(
                    "GET", cfg["path"], headers={"Range": f"bytes={position}-{end}"}
                )
            except (OSError, http.client.HTTPException) as exc:
                rec.record(started, False, type(exc).__name__)
                stop.wait(0.5)
                continue
            ok = status == 206 and len(data) == end - position + 1
            rec.record(started, ok, str(status))
            if ok:
                position = end + 1


def upload_worker(cfg: dict[str, Any], rec: Recorder) -> None:
    tus = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {cfg['token']}"}
    client = Client(cfg["port"], timeout=600)
    length, pace = cfg["length"], cfg["pace"]
    status, data, response = client.request(
        "POST", "/api/v1/uploads", headers={**tus, "Upload-Length": str(length)}
    )
    if status != 201:
        raise RuntimeError(f"tus create answered {status}: {data[:300]!r}")
    location = response.getheader("Location")
    assert location is not None
    conn = http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=600)
    conn.putrequest("PATCH", location)
    for name, value in {
        **tus,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(length),
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    piece = os.urandom(64 * 1024)
    sent, began = 0, time.monotonic()
    started = began
    try:
        while sent < length and not stop.is_set():
            due = began + sent / pace
            if (delay := due - time.monotonic()) > 0:
                stop.wait(delay)
                continue
            block = piece[: min(len(piece), length - sent)]
            conn.send(block)
            sent += len(block)
            rec.record(started, True, "chunk")
            started = time.monotonic()
    except OSError as exc:
        rec.record(started, False, type(exc).__name__)
    finally:
        conn.close()


WORKERS = {
    "tips": tips_worker,
    "bare_insert": bare_insert_worker,
    "get": get_worker,
    "stream": stream_worker,
    "uploads": upload_worker,
}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    worker = WORKERS[cfg["scenario"]]
    rec = Recorder(cfg.get("warmup", 0.0))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    errors: list[str] = []

    def run() -> None:
        try:
            worker(cfg, rec)
        except Exception as exc:  # reported, and the benchmark fails on it
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, daemon=True) for _ in range(cfg.get("concurrency", 1))]
    for thread in threads:
        thread.start()
    print(json.dumps({"started": True}), flush=True)
    if cfg.get("duration"):
        stop.wait(cfg.get("warmup", 0.0) + cfg["duration"])
    else:
        stop.wait()
    rec.measure_to = time.monotonic()
    stop.set()
    for thread in threads:
        thread.join(30)
    print(json.dumps({**rec.result(), "errors": errors[:5]}), flush=True)
    os._exit(0)  # threads still blocked in a read are not waited for


if __name__ == "__main__":
    main()
