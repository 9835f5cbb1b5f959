"""The adapters' HTTP calls, and what a failed one means for the delivery.

One rule for every network: a request that never left (no connection) is safe to try
again; a request that *creates* something and whose answer was lost (a read timeout,
a reset, a 5xx) may have done its work, so it becomes :class:`OutcomeUnknown` and is
never repeated blindly. 401 means the credentials are gone. What a 4xx body means is
the network's own business: the adapter's ``refine`` turns it into the right error
(the Graph API says "expired token" with a 400 and code 190, for instance).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from typing import Any

import httpx

from portal.publishing.channels.base import (
    ChannelError,
    CredentialError,
    OutcomeUnknown,
    RejectedError,
    TransientError,
)

#: Seconds to connect, and to wait for each read or write. A channel's settings may set
#: ``timeout_s`` (an operator with a slow uplink; the tests' fakes that hang).
DEFAULT_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one loads the CA bundle,
    about 50 ms, which every adapter instance would otherwise pay again. The same
    context httpx builds by default (certifi's bundle), built once."""
    return httpx.create_ssl_context()


Refine = Callable[[httpx.Response], ChannelError | None]
RetryAfter = Callable[[httpx.Response], float | None]


class Http:
    def __init__(
        self,
        base_url: str,
        *,
        network: str,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
        retry_after: RetryAfter | None = None,
        refine: Refine | None = None,
    ) -> None:
        timeout = float(timeout_s) if timeout_s else DEFAULT_TIMEOUT_S
        self.network = network
        self._retry_after = retry_after
        self._refine = refine
        self.client = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": "Tattletale", **(headers or {})},
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT_S, timeout)),
            follow_redirects=False,
            verify=tls_context(),
        )

    def close(self) -> None:
        self.client.close()

    def call(
        self, method: str, url: str, *, creates: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send one request; return its response when it is a success (2xx or 3xx),
        raise the error that says what the delivery should do otherwise."""
        try:
            response = self.client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(
                f"{self.network} could not be reached ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            # Sent (at least in part) and no answer: whether it took effect is unknown.
            reason = f"{self.network} did not answer ({type(exc).__name__})"
            if creates:
                raise OutcomeUnknown(reason) from exc
            raise TransientError(reason) from exc
        if response.is_success or response.is_redirect:
            return response
        raise self.error_for(response, creates=creates)

    def error_for(self, response: httpx.Response, *, creates: bool) -> ChannelError:
        refined = self._refine(response) if self._refine else None
        if refined is not None:
            return refined
        status = response.status_code
        if status == 429:
            wait = self._retry_after(response) if self._retry_after else None
            return TransientError(f"{self.network} rate limit reached", retry_after=wait)
        if status == 401:
            return CredentialError(f"{self.network} refused the channel's credentials")
        if status >= 500:
            reason = f"{self.network} answered {status}"
            return OutcomeUnknown(reason) if creates else TransientError(reason)
        return RejectedError(f"{self.network} refused the request ({status}): {snippet(response)}")

    def json(self, response: httpx.Response, *, creates: bool = False) -> dict[str, Any]:
        """The response's JSON object; an answer that is not one is the network's fault."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            reason = f"{self.network} answered something that is not a JSON object"
            if creates:
                raise OutcomeUnknown(reason)
            raise TransientError(reason)
        return body


def snippet(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error body, for a reason shown to staff (never a credential:
    request headers are not part of it)."""
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")
