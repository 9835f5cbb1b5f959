"""Fakes of the social networks for the channel adapters' tests.

Each module follows one network's documented API (the section of
/work/shared/networks.md and the primary documentation it names, said at its top) and
is served by :class:`FakeServer`: a real HTTP server on 127.0.0.1 in a thread, with its
state in memory, the requests it received, and switches to fail the ways the network
documents.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

#: Faults every fake understands (``FakeServer.fail(endpoint, fault)``):
#: the network's answer for bad credentials, for a rate limit (with its reset headers),
#: for a server error, a body that is not JSON, and an answer that comes only after the
#: client has given up — either after the request was carried out ("lost_answer": the
#: post exists, its answer is lost) or before ("hang").
FAULTS = ("unauthorized", "rate_limited", "server_error", "garbage", "lost_answer", "hang")


@dataclass
class Recorded:
    method: str
    endpoint: str
    path: str
    args: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]
    files: dict[str, tuple[str, str, int]]
    body: bytes
    json: Any = None


@dataclass
class FakeServer:
    """A network on loopback; subclasses give ``url_map`` and ``fault_response``, and a
    method ``on_<endpoint>(request, **route_values)`` per route."""

    url_map: Map = field(default_factory=Map)
    #: How long "lost_answer" and "hang" hold the answer back (the client's timeout in
    #: the tests is shorter); cut short when the server stops.
    hold_s: float = 6.0
    requests: list[Recorded] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    _faults: dict[str, deque[str | None]] = field(default_factory=lambda: defaultdict(deque))

    def fail(self, endpoint: str, fault: str, times: int = 1, after: int = 0) -> None:
        """Make ``times`` requests to ``endpoint`` fail with ``fault``, once ``after``
        more have been answered normally."""
        assert fault in FAULTS, fault
        self._faults[endpoint].extend([None] * after + [fault] * times)

    def classify(self, request: Request, endpoint: str) -> str:
        """The endpoint a request counts as (a network with one path for several
        commands tells them apart here)."""
        return endpoint

    def calls(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def fault_response(self, fault: str) -> Response:
        raise NotImplementedError

    # -- serving ---------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            endpoint, values = self.url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            return exc.get_response(environ)(environ, start_response)
        body = request.get_data(cache=True)
        endpoint = self.classify(request, str(endpoint))
        self.requests.append(
            Recorded(
                method=request.method,
                endpoint=str(endpoint),
                path=request.path,
                args={k: request.args.getlist(k) for k in request.args},
                headers=dict(request.headers),
                form={k: request.form.getlist(k) for k in request.form},
                files={k: _described(f) for k, f in request.files.items()},
                body=body,
                json=request.get_json(silent=True),
            )
        )
        queued = self._faults.get(str(endpoint))
        fault = queued.popleft() if queued else None
        if fault == "hang":
            self._released.wait(self.hold_s)
            response = self.fault_response("server_error")
        elif fault in {"unauthorized", "rate_limited", "server_error", "garbage"}:
            response = self.fault_response(fault)
        else:
            handler = getattr(self, f"on_{endpoint}", None)
            if handler is None:
                raise NotFound()
            with self._lock:
                response = handler(request, **values)
            if fault == "lost_answer":
                self._released.wait(self.hold_s)
        return response(environ, start_response)

    @contextmanager
    def running(self) -> Iterator[Self]:
        server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._released.set()
            server.shutdown()
            server.server_close()
            thread.join(5)


def _described(upload: Any) -> tuple[str, str, int]:
    size = len(upload.read())
    upload.seek(0)  # the handler reads it again
    return (upload.filename or "", upload.content_type or "", size)


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def garbage() -> Response:
    return Response("<html>502 Bad Gateway</html>", status=200, mimetype="text/html")


class Clock:
    """Time that moves only when the adapter sleeps (or the test says so)."""

    def __init__(self, start: float = 1_796_185_200.0) -> None:  # 2026-12-02 04:20 UTC
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
