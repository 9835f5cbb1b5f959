"""Sign-in throttling: a growing delay after repeated failures, per account and per
client address, kept in the database so every web process sees the same counts.

After ``threshold`` failures within ``WINDOW`` the key is locked for 30 seconds;
each further lock doubles, up to 15 minutes. A lock is forgotten after a day with
no failure. Password and second-factor failures count alike, so the second factor
cannot be guessed faster than the password.

Two keys, because each alone can be dodged: an attacker spraying one password over
many accounts stays under every per-account limit but not under the per-client one;
an attacker on many addresses (a botnet) trying one account stays under every
per-client limit but not under the per-account one. The per-account lock also lets
anyone who knows an address delay its owner for at most 15 minutes at a time; that
is the accepted price of stopping online guessing. The per-client threshold is
higher because one address may be a whole agency behind its NAT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import SignInThrottle
from portal.models.base import utcnow
from portal.services.errors import DomainError

WINDOW = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=24)
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
THRESHOLDS = {"account": 5, "client": 20}


class Throttled(DomainError):
    """Too many failed sign-ins: try again after ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        minutes = math.ceil(retry_after / 60)
        wait = f"{retry_after} seconds" if retry_after < 120 else f"{minutes} minutes"
        super().__init__(
            f"Too many failed sign-in attempts. For your account's safety, please wait "
            f"{wait} before trying again."
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class ThrottleKey:
    scope: str
    key: str


def keys_for(email: str, client_addr: str | None) -> list[ThrottleKey]:
    keys = [ThrottleKey("account", email[:254])]
    if client_addr:
        keys.append(ThrottleKey("client", client_addr[:254]))
    return keys


def _rows(keys: list[ThrottleKey], *, for_update: bool = False) -> list[SignInThrottle]:
    rows = []
    for k in keys:
        query = select(SignInThrottle).where(
            SignInThrottle.scope == k.scope, SignInThrottle.key == k.key
        )
        if for_update:
            # PostgreSQL: two processes counting the same key one after the other,
            # not both from the same old count. SQLite ignores it (one writer).
            query = query.with_for_update()
        row = db.session.scalar(query)
        if row is not None:
            rows.append(row)
    return rows


def retry_after(keys: list[ThrottleKey], now: datetime | None = None) -> int | None:
    """Seconds until these keys may try again, or None when they may try now."""
    now = now or utcnow()
    waits = [
        (row.locked_until - now).total_seconds()
        for row in _rows(keys)
        if row.locked_until is not None and row.locked_until > now
    ]
    return math.ceil(max(waits)) if waits else None


def check(keys: list[ThrottleKey]) -> None:
    wait = retry_after(keys)
    if wait is not None:
        raise Throttled(max(wait, 1))


def _lock_length(lockouts: int) -> timedelta:
    return min(FIRST_LOCK * (2 ** (lockouts - 1)), LONGEST_LOCK)


def register_failure(keys: list[ThrottleKey]) -> None:
    """Count a failure against every key (in the caller's transaction)."""
    now = utcnow()
    for k in keys:
        existing = _rows([k], for_update=True)
        row = existing[0] if existing else None
        if row is None:
            row = SignInThrottle(
                scope=k.scope,
                key=k.key,
                failures=0,
                lockouts=0,
                window_started_at=now,
                last_failure_at=now,
            )
            try:
                with db.session.begin_nested():
                    db.session.add(row)
            except IntegrityError:
                # Another process created it first: count on its row instead.
                row = _rows([k], for_update=True)[0]
        if now - row.last_failure_at > FORGET_AFTER:
            row.lockouts = 0
        if now - row.window_started_at > WINDOW:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= THRESHOLDS[k.scope]:
            row.lockouts += 1
            row.locked_until = now + _lock_length(row.lockouts)
            row.failures = 0
            row.window_started_at = now


def clear_account(email: str) -> None:
    """A completed sign-in forgives the account's failures. The client's count is
    left to expire: an attacker who owns one account must not be able to reset
    the per-client limit by signing into it between guesses at others."""
    db.session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.scope == "account", SignInThrottle.key == email[:254]
        )
    )
