"""A signed webhook: the agency's own endpoint receives each post as JSON.

For anything Tattletale has no adapter for (an agency's CMS, a chat bot, Zapier). The
receiver verifies, per request:

* ``X-Tattletale-Timestamp``: Unix seconds when the request was signed (refuse old
  ones to stop replays);
* ``X-Tattletale-Signature: sha256=<hex>``: HMAC-SHA256, keyed with the channel's
  secret, over ``"<timestamp>.<body>"`` (the body's exact bytes);
* ``X-Tattletale-Event``: the event's id, the same on every retry of one event, so a
  receiver that saw it already answers 2xx and does nothing.

Because the event id makes a repeat harmless, a lost answer is retried, not treated as
an unknown outcome: the receiver is the one who dedups.

Settings: ``url`` (https, on a public address), optional ``timeout_s``. The connection
is checked when the adapter is made; a name that resolves differently later (DNS
rebinding) is the remaining gap, narrowed by the signature the receiver checks.
Credentials: ``key`` (the shared secret).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, ClassVar
from urllib.parse import urlsplit

from portal.publishing.channels.base import (
    Channel,
    CredentialError,
    Draft,
    Published,
    RejectedError,
    Steps,
    TransientError,
)
from portal.publishing.channels.connect import Connection
from portal.publishing.channels.http import Http
from portal.publishing.channels.registry import register

NETWORK = "webhook"
#: A shared key shorter than this is refused (the generated ones are 43 characters).
MIN_KEY_LENGTH = 32
SIGNATURE_HEADER = "X-Tattletale-Signature"
TIMESTAMP_HEADER = "X-Tattletale-Timestamp"
EVENT_HEADER = "X-Tattletale-Event"


def sign(key: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _refuse_private(host: str, port: int) -> None:
    """The address an admin typed must be on the internet: never this machine, the
    private network it sits in, or a cloud's metadata service (169.254.169.254), which
    a webhook would otherwise let anyone with the admin role probe."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TransientError(f"the webhook's host {host!r} could not be resolved") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise RejectedError(
                f"the webhook's host {host!r} is not a public address ({address}); "
                "give the receiver's public https:// address"
            )


@register
class WebhookChannel(Channel):
    network: ClassVar[str] = NETWORK
    edits_in_place: ClassVar[bool] = False
    can_delete: ClassVar[bool] = True
    #: Loopback and private addresses, plain http: only for a receiver in the tests.
    allow_private: ClassVar[bool] = False
    connect_with: ClassVar[str] = "key"

    @classmethod
    def connect_key(cls, settings: Mapping[str, Any], *, key: str) -> Connection:
        """The admin's receiver address (``base_url`` on the connect form) and the key
        both sides sign with. Nothing is sent: "test connection" sends a ping."""
        if len(key) < MIN_KEY_LENGTH:
            raise RejectedError(
                f"the signing key must be at least {MIN_KEY_LENGTH} characters "
                "(leave it blank to have one made)"
            )
        url = str(settings.get("base_url") or "")
        cls({"key": key}, {"url": url}).close()  # the address is checked as for a post
        return Connection(
            credentials={"key": key}, settings={"url": url}, name=urlsplit(url).hostname or url
        )

    def __init__(self, credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        super().__init__(credentials, settings)
        key = str(credentials.get("key") or "")
        if not key:
            raise CredentialError("the webhook has no signing key; connect it again")
        url = str(settings.get("url") or "")
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.allow_private):
            raise RejectedError("the webhook's address must be an https:// URL")
        if not self.allow_private:
            _refuse_private(parts.hostname or "", parts.port or 443)
        self._key = key
        self._url = url
        self.http = Http(
            url, network=NETWORK, timeout_s=settings.get("timeout_s"), retry_after=_retry_after
        )

    def _send(self, event_id: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(
            {"id": event_id, "type": kind, **payload}, separators=(",", ":"), sort_keys=True
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._key, timestamp, body),
            EVENT_HEADER: event_id,
        }
        # creates=False: the event id makes a repeat harmless (see the module's text).
        # The address as given, to the byte (an absolute URL: the client's base is unused).
        response = self.http.call("POST", self._url, content=body, headers=headers)
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}

    def test_connection(self) -> str:
        self._send(f"test-{int(time.time())}", "ping", {})
        return self._url

    def publish(self, draft: Draft, steps: Steps) -> Published:
        media = None
        if draft.media is not None:
            media = {
                k: v for k, v in asdict(draft.media).items() if k != "path"
            }  # the receiver has no access to this machine's files
        answer = self._send(
            draft.key,
            "post.published",
            {"text": draft.text, "link": draft.link, "alt": draft.alt, "media": media},
        )
        url = answer.get("url") if isinstance(answer.get("url"), str) else ""
        return Published(remote_id=draft.key, url=url or draft.link)

    def find(self, draft: Draft, steps: Steps) -> Published | None:
        # Never certain, and never needed: publishing again with the same event id is
        # the lever (the receiver dedups).
        return None

    def update(self, published: Published, text: str) -> Published:
        self._send(
            f"{published.remote_id}:update",
            "post.updated",
            {"post": published.remote_id, "text": text},
        )
        return published

    def delete(self, published: Published) -> None:
        self._send(f"{published.remote_id}:delete", "post.deleted", {"post": published.remote_id})
