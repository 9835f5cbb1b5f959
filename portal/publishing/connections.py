"""Connecting an agency's channels: OAuth, app passwords and keys; testing; disconnecting.

The secrets (tokens, the app's client secret, an app password, a webhook key) live
only in the encrypted ``credentials`` column and are never returned to a page once
stored. Every change is audited; the caller (a request) commits.

OAuth 2.0 authorization code (RFC 6749 section 4.1): :func:`start_oauth` stores the
channel with a digest of the ``state`` and the PKCE verifier (RFC 7636) in its
encrypted credentials and hands the state to the page, which keeps it in the browser's
session; :func:`finish_oauth` accepts the callback only with that same state, once.
A callback from another session (login CSRF: an attacker's code planted in an admin's
browser) or a replay finds no matching state and is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import Outcome, User
from portal.publishing.channels import connect
from portal.publishing.channels.base import Channel, ChannelError, CredentialError
from portal.publishing.channels.connect import Connection, OAuthApp
from portal.publishing.channels.registry import adapter_class, adapter_for, networks
from portal.publishing.models import Channel as ChannelRow
from portal.publishing.models import ChannelStatus
from portal.services.audit import record_event
from portal.services.errors import Conflict, DomainError, NotFound, PermissionDenied

PENDING = "oauth_pending"
WAITING_REASON = "Waiting for the network to authorize the connection."


@dataclass(frozen=True)
class OAuthStart:
    channel_id: str  # the channel's public id
    state: str
    authorize_url: str


def connectable_networks() -> dict[str, type[Channel]]:
    """Networks whose adapter says how it is connected (``connect_with``)."""
    found = {name: adapter_class(name) for name in networks()}
    return {name: cls for name, cls in found.items() if getattr(cls, "connect_with", None)}


def connectable(network: str) -> type[Channel]:
    cls = connectable_networks().get(network)
    if cls is None:
        raise NotFound("No such network.")
    return cls


def list_channels(agency_id: int) -> list[ChannelRow]:
    query = select(ChannelRow).where(ChannelRow.agency_id == agency_id)
    return list(db.session.scalars(query.order_by(ChannelRow.network, ChannelRow.name)))


def get_channel(agency_id: int, public_id: str) -> ChannelRow:
    """The agency's channel; another agency's is as unknown as one that never was."""
    row = db.session.scalar(
        select(ChannelRow).where(
            ChannelRow.public_id == public_id, ChannelRow.agency_id == agency_id
        )
    )
    if row is None:
        raise NotFound("No such channel.")
    return row


def _secrets(row: ChannelRow) -> dict[str, Any]:
    return dict(json.loads(row.credentials or "{}"))


def _state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _row_for(agency_id: int, network: str, name: str) -> ChannelRow | None:
    return db.session.scalar(
        select(ChannelRow).where(
            ChannelRow.agency_id == agency_id,
            ChannelRow.network == network,
            ChannelRow.name == name,
        )
    )


def _audit(action: str, row: ChannelRow, actor: User, outcome: Outcome, **details: Any) -> None:
    record_event(
        action,
        agency_id=row.agency_id,
        actor=actor,
        object_type="channel",
        object_id=row.public_id,
        outcome=outcome,
        details={"network": row.network, "name": row.name, **details},
    )


def start_oauth(
    actor: User,
    *,
    network: str,
    name: str,
    client_id: str,
    client_secret: str,
    base_url: str,
    account_id: str,
    redirect_uri: str,
) -> OAuthStart:
    """Store the channel (new, or the one of that name being reconnected) with what the
    callback will need, and return where to send the admin's browser."""
    cls = connectable(network)
    if getattr(cls, "connect_with", None) != "oauth":
        raise NotFound("That network is not connected with OAuth.")
    row = _row_for(actor.agency_id, network, name)
    stored = _secrets(row) if row is not None else {}
    client_secret = client_secret or str(stored.get("client_secret") or "")
    settings = dict(row.settings or {}) if row is not None else {}
    settings.update(client_id=client_id, account_id=account_id)
    if base_url:
        settings["base_url"] = base_url
    else:
        settings.pop("base_url", None)
    state = connect.new_state()
    verifier = connect.new_code_verifier() if getattr(cls, "uses_pkce", False) else None
    app = OAuthApp(client_id, client_secret, redirect_uri, settings, account_id)
    challenge = connect.code_challenge(verifier) if verifier else None
    try:
        url = cls.authorize_url(app, state=state, code_challenge=challenge)  # type: ignore[attr-defined]
    except ChannelError as exc:  # a setting the network needs is missing (an instance)
        raise DomainError(exc.reason) from exc
    if row is None:
        row = ChannelRow(
            agency_id=actor.agency_id,
            network=network,
            name=name,
            settings={},
            status=ChannelStatus.DISCONNECTED.value,
            status_reason=WAITING_REASON,
        )
        db.session.add(row)
    row.settings = settings
    stored[PENDING] = {"state": _state_digest(state), "verifier": verifier}
    stored["client_secret"] = client_secret
    row.credentials = json.dumps(stored)
    db.session.flush()
    _audit("channel.authorize", row, actor, Outcome.SUCCESS)
    return OAuthStart(row.public_id, state, url)


def finish_oauth(
    actor: User,
    *,
    channel_id: str,
    session_state: str,
    state: str,
    code: str,
    redirect_uri: str,
) -> ChannelRow:
    """The network sent the browser back: trade the code, store the tokens.

    Raises :class:`PermissionDenied` when the state is not the one this session
    started (nothing is changed) and :class:`DomainError` with the network's reason when
    the code exchange fails (the attempt is used up either way: a code is single use).
    """
    row = get_channel(actor.agency_id, channel_id)
    stored = _secrets(row)
    pending = stored.get(PENDING)
    expected = pending.get("state") if isinstance(pending, dict) else None
    # Bytes, not str: compare_digest refuses non-ASCII text, and the query is anyone's.
    matches = (
        bool(state)
        and hmac.compare_digest(state.encode(), session_state.encode())
        and isinstance(expected, str)
        and hmac.compare_digest(_state_digest(state).encode(), expected.encode())
    )
    if not matches:
        _audit("channel.connect", row, actor, Outcome.DENIED, reason="state mismatch")
        raise PermissionDenied("That authorization does not belong to this session. Start again.")
    assert isinstance(pending, dict)
    del stored[PENDING]  # single use, whatever happens next
    row.credentials = json.dumps(stored)
    settings = dict(row.settings or {})
    app = OAuthApp(
        client_id=str(settings.get("client_id") or ""),
        client_secret=str(stored.get("client_secret") or ""),
        redirect_uri=redirect_uri,
        settings=settings,
        account_id=str(settings.get("account_id") or ""),
    )
    cls = adapter_class(row.network)
    try:
        connection: Connection = cls.exchange_code(  # type: ignore[attr-defined]
            app, code=code, code_verifier=pending.get("verifier")
        )
    except ChannelError as exc:
        _audit("channel.connect", row, actor, Outcome.FAILURE, reason=exc.reason)
        raise DomainError(f"The network refused the connection: {exc.reason}") from exc
    _store(row, actor, connection, keep={"client_secret": stored.get("client_secret")})
    return row


def connect_password(
    actor: User, *, network: str, name: str, base_url: str, identifier: str, password: str
) -> ChannelRow:
    cls = connectable(network)
    if getattr(cls, "connect_with", None) != "app_password":
        raise NotFound("That network is not connected with an app password.")
    settings = {"base_url": base_url} if base_url else {}
    try:
        connection: Connection = cls.connect_password(  # type: ignore[attr-defined]
            settings, identifier=identifier, password=password
        )
    except ChannelError as exc:
        record_event(
            "channel.connect",
            agency_id=actor.agency_id,
            actor=actor,
            object_type="channel",
            outcome=Outcome.FAILURE,
            details={"network": network, "name": name, "reason": exc.reason},
        )
        raise DomainError(f"The network refused the app password: {exc.reason}") from exc
    return _store(_new_or_existing(actor, network, name), actor, connection)


def connect_key(
    actor: User, *, network: str, name: str, base_url: str, key: str
) -> tuple[ChannelRow, str | None]:
    """Connect a channel signed with a shared key; a key left blank is generated and
    returned (the one time it is shown)."""
    cls = connectable(network)
    if getattr(cls, "connect_with", None) != "key":
        raise NotFound("That network is not connected with a key.")
    generated = None if key else secrets.token_urlsafe(32)
    try:
        connection: Connection = cls.connect_key(  # type: ignore[attr-defined]
            {"base_url": base_url}, key=key or generated
        )
    except ChannelError as exc:
        raise DomainError(exc.reason) from exc
    return _store(_new_or_existing(actor, network, name), actor, connection), generated


def _new_or_existing(actor: User, network: str, name: str) -> ChannelRow:
    row = _row_for(actor.agency_id, network, name)
    if row is None:
        row = ChannelRow(agency_id=actor.agency_id, network=network, name=name, settings={})
        db.session.add(row)
    return row


def _store(
    row: ChannelRow, actor: User, connection: Connection, keep: Mapping[str, Any] | None = None
) -> ChannelRow:
    row.credentials = json.dumps(
        {**connection.credentials, **{k: v for k, v in (keep or {}).items() if v}}
    )
    row.settings = {**(row.settings or {}), **connection.settings, "account_name": connection.name}
    row.status = ChannelStatus.CONNECTED.value
    row.status_reason = ""
    row.connected_by_id = actor.id
    db.session.flush()
    _audit("channel.connect", row, actor, Outcome.SUCCESS, account=connection.name)
    return row


def check_channel(actor: User, row: ChannelRow) -> tuple[bool, str]:
    """Call the adapter's harmless check: (True, the account's name) or (False, why).
    Refused credentials mark the channel for reconnecting."""
    if row.status == ChannelStatus.DISCONNECTED.value:
        raise Conflict("The channel is disconnected; connect it first.")
    adapter = adapter_for(row)
    try:
        name = adapter.test_connection()
    except CredentialError as exc:
        row.status = ChannelStatus.NEEDS_RECONNECT.value
        row.status_reason = exc.reason
        _audit("channel.test", row, actor, Outcome.FAILURE, reason=exc.reason)
        return False, exc.reason
    except ChannelError as exc:
        _audit("channel.test", row, actor, Outcome.FAILURE, reason=exc.reason)
        return False, exc.reason
    finally:
        # A network that rotated the credentials during the check (X renews its token
        # with a single-use refresh token): the old ones no longer work.
        if adapter.updated_credentials is not None:
            row.credentials = json.dumps(adapter.updated_credentials)
        close = getattr(getattr(adapter, "http", None), "close", None)
        if callable(close):
            close()
    if row.status == ChannelStatus.NEEDS_RECONNECT.value:
        row.status, row.status_reason = ChannelStatus.CONNECTED.value, ""
    _audit("channel.test", row, actor, Outcome.SUCCESS, account=name)
    return True, name


def disconnect_channel(actor: User, row: ChannelRow) -> None:
    """Switch the channel off and forget its secrets (reconnecting asks for them anew)."""
    row.status = ChannelStatus.DISCONNECTED.value
    row.status_reason = f"Disconnected by {actor.display_name}."
    row.credentials = "{}"
    _audit("channel.disconnect", row, actor, Outcome.SUCCESS)
