"""A webhook receiver on loopback, written as an agency's developer would write one
from the webhook's documentation (portal/publishing/channels/webhook.py): it checks
the timestamp and the HMAC-SHA256 signature over ``"<timestamp>.<body>"`` itself (no
code of the portal's), refuses what does not verify, and dedups by event id.

Faults for the next requests can be queued: ``"500"``, ``"401"``, ``"slow"`` (takes
the event, then answers after the sender's timeout: the answer is lost).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MAX_SKEW_S = 300
SLOW_S = 8.0  # past the test channels' 5 s timeout (a busy machine needs more than 1.5)


class WebhookReceiver:
    def __init__(self) -> None:
        self.key = secrets.token_hex(32)
        self.events: dict[str, dict[str, Any]] = {}  # by event id: what was accepted
        self.deliveries: list[str] = []  # every verified request's event id, repeats too
        self.refused: list[str] = []  # why requests were refused
        self.faults: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tattletale"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the sender gave up waiting (the "slow" fault): its answer is lost

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        timestamp = handler.headers.get("X-Tattletale-Timestamp", "")
        signature = handler.headers.get("X-Tattletale-Signature", "")
        event_id = handler.headers.get("X-Tattletale-Event", "")
        expected = (
            "sha256="
            + hmac.new(
                self.key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(signature, expected):
            self.refused.append("signature")
            return self._answer(handler, 401, {"error": "bad signature"})
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_S:
            self.refused.append("timestamp")
            return self._answer(handler, 401, {"error": "stale"})
        with self.lock:
            fault = self.faults.pop(0) if self.faults else "ok"
        if fault == "500":
            return self._answer(handler, 500, {"error": "down"})
        if fault == "401":
            return self._answer(handler, 401, {"error": "key revoked"})
        event = json.loads(body)
        assert event["id"] == event_id
        with self.lock:
            self.deliveries.append(event_id)
            self.events.setdefault(event_id, event)
        if fault == "slow":
            time.sleep(SLOW_S)
        self._answer(handler, 200, {"ok": True, "url": f"https://cms.example/{event_id}"})

    def published(self) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if e["type"] == "post.published"]
