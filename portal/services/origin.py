"""The client address of the request being served, as the HTTP edge hands it down.

The edge decides once per request who the request is for (staff, API client or the
public) and, for staff and API requests only, binds the client's address here. For a
public request it binds nothing, so no service, however deep, can find a tipster's
address: services read it from here or take it as an argument, never from the
request itself (services do not import the HTTP edge). Outside a request (jobs, the
CLI) there is no address.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

_client_addr: ContextVar[str | None] = ContextVar("tattletale_client_addr", default=None)


def client_addr() -> str | None:
    """The address the edge bound for this request, or None."""
    return _client_addr.get()


def bind_client_addr(addr: str | None) -> Token[str | None]:
    return _client_addr.set(addr)


def unbind_client_addr(token: Token[str | None]) -> None:
    try:
        _client_addr.reset(token)
    except ValueError:
        # Reset from another context than the one that bound it (a server that ends
        # requests elsewhere): forget the address rather than keep it.
        _client_addr.set(None)
