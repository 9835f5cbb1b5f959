"""How an admin connects a channel: the contract between the channel pages and the
adapters (no Flask here; the pages keep the state in the session).

Each adapter class says how it is connected in ``connect_with``:

* ``"oauth"`` — OAuth 2.0 authorization code. The class provides
  ``authorize_url(app, *, state, code_challenge)`` (the URL the admin's browser is sent
  to) and ``exchange_code(app, *, code, code_verifier)`` (trade the code at the token
  endpoint; return a :class:`Connection`), both classmethods. ``uses_pkce = True``
  makes the pages send an S256 challenge (RFC 7636) and hand the verifier back. An
  adapter whose access token expires renews it itself with the refresh token kept in
  its credentials, and leaves the new ones in ``Channel.updated_credentials`` for the
  caller to store.
* ``"app_password"`` — an account identifier and an app password (Bluesky). The class
  provides ``connect_password(settings, *, identifier, password)`` returning a
  :class:`Connection` (it may check the password by creating a session).
* ``"key"`` — a shared signing key (the webhook). The class provides
  ``connect_key(settings, *, key)`` returning a :class:`Connection`.

An adapter without ``connect_with`` is not offered on the connect page.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.publishing.channels.base import CredentialError


@dataclass(frozen=True)
class OAuthApp:
    """The agency's registered app at the network, and where the network sends the
    browser back. ``settings`` are the channel's (base URL, API version, ...);
    ``account_id`` the Page or account the admin named, when the network needs one."""

    client_id: str
    client_secret: str
    redirect_uri: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    account_id: str = ""


@dataclass(frozen=True)
class Connection:
    """What connecting produced: secrets for the encrypted column, non-secret settings
    merged into the channel's, and the account's name to show."""

    credentials: Mapping[str, Any]
    settings: Mapping[str, Any]
    name: str


def new_state() -> str:
    """An unguessable OAuth ``state`` (RFC 6749 section 10.12: binds the callback to
    the browser session that started it)."""
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    """A PKCE code verifier: 43 to 128 characters of the unreserved set (RFC 7636 4.1)."""
    return secrets.token_urlsafe(64)[:96]


def code_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier`` (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_refusal(network: str, body: Any, status: int) -> CredentialError:
    """A token endpoint's refusal (RFC 6749 section 5.2: ``error`` and
    ``error_description``, 400 or 401) as the reason shown to the admin: a code that is
    wrong, used or expired (``invalid_grant``), an app the network does not know or a
    wrong client secret (``invalid_client``)."""
    error = description = ""
    if isinstance(body, dict):
        error = str(body.get("error") or "")[:100]
        description = str(body.get("error_description") or "")[:300]
    hint = {
        "invalid_grant": "the authorization is invalid, used or expired: start again",
        "invalid_client": "the client id or secret is wrong: check the app's keys",
    }.get(error, "")
    parts = [p for p in (f"{error or status}", description, hint) if p]
    return CredentialError(f"{network} refused the authorization ({'; '.join(parts)})")
