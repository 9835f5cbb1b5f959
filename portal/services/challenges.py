"""Proof of work against tip floods: challenges issued by the server, solved by the
visitor's browser, verified and spent once on submission.

The threat: a script that sends thousands of tips (or tipster replies) to bury the
real ones, from many addresses, so per-client rate limits alone do not stop it. Each
submission with a proof costs its sender about 2**bits SHA-256 computations; a person
on a phone pays that once, in a Web Worker, while typing. Submissions without a
proof (a browser without JavaScript) are accepted under a stricter rate limit
instead (``TATTLETALE_RATELIMIT_UNPROVEN``), so nobody is locked out.

A challenge is ``purpose.expires.bits.nonce.signature``: the purpose it may be spent
on (a tip's challenge does not pay for a reply), when it expires, the difficulty it
was issued with, a random nonce, and an HMAC-SHA-256 of all that under
``TATTLETALE_POW_KEY``, so the server keeps nothing until it is spent. The solution
is a decimal counter such that SHA-256 of ``challenge + ":" + counter`` starts with
``bits`` zero bits. A spent challenge's nonce is recorded until the challenge would
have expired (Redis when configured, the database otherwise), so each is spent once.
Nothing of the client is in a challenge or in the record.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from redis import Redis
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import SpentChallenge
from portal.models.base import utcnow
from portal.services.errors import DomainError

PURPOSES = frozenset({"tip", "reply"})
MAX_COUNTER_DIGITS = 20
ALGORITHM = "sha256-leading-zero-bits"


class ProofRejected(DomainError):
    """The proof sent with a submission is not one this server accepts."""

    status = 400


@dataclass(frozen=True)
class Challenge:
    token: str
    bits: int
    expires_at: datetime


def required_bits() -> int:
    """The difficulty now; 0: proof of work is off."""
    bits: int = current_app.config["TATTLETALE"].proof_of_work_bits
    return bits


def _sign(payload: str) -> str:
    key = current_app.config["TATTLETALE"].proof_of_work_key.encode()
    return hmac.new(key, b"pow-challenge|" + payload.encode(), hashlib.sha256).hexdigest()


def issue_challenge(purpose: str) -> Challenge:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown proof-of-work purpose {purpose!r}")
    settings = current_app.config["TATTLETALE"]
    expires = int(time.time()) + settings.proof_of_work_max_age_s
    payload = f"{purpose}.{expires}.{settings.proof_of_work_bits}.{secrets.token_hex(16)}"
    return Challenge(
        token=f"{payload}.{_sign(payload)}",
        bits=settings.proof_of_work_bits,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solution_digest(token: str, counter: str) -> bytes:
    return hashlib.sha256(f"{token}:{counter}".encode()).digest()


def solve(token: str, bits: int) -> str:
    """The first counter that solves ``token`` (what the browser's worker does)."""
    counter = 0
    while leading_zero_bits(solution_digest(token, str(counter))) < bits:
        counter += 1
    return str(counter)


# Shown to visitors: translated when raised (portal/i18n.py).
FORGED = _l("The anti-spam check of this form is not valid. Please send it again.")
EXPIRED = _l("The anti-spam check of this form has expired. Please send it again.")
REPLAYED = _l("This form was already sent once. Please send it again.")
UNSOLVED = _l("The anti-spam check of this form was not completed. Please send it again.")


def verify_and_spend(purpose: str, token: str, counter: str) -> None:
    """Accept the proof and record it spent (in the caller's transaction when it is
    the database), or raise :class:`ProofRejected` with a message for the visitor."""
    parts = token.split(".")
    if len(parts) != 5:
        raise ProofRejected(FORGED, field="proof")
    payload, signature = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(_sign(payload), signature):
        raise ProofRejected(FORGED, field="proof")
    issued_for, expires_text, bits_text, nonce = parts[:4]
    if issued_for != purpose:
        raise ProofRejected(FORGED, field="proof")
    expires = int(expires_text)  # signed by us: a number
    if expires <= time.time():
        raise ProofRejected(EXPIRED, field="proof")
    # A challenge issued before the difficulty was raised no longer pays enough.
    bits = max(int(bits_text), required_bits())
    if (
        not counter.isdigit()
        or len(counter) > MAX_COUNTER_DIGITS
        or leading_zero_bits(solution_digest(token, counter)) < bits
    ):
        raise ProofRejected(UNSOLVED, field="proof")
    _spend(nonce, expires)


def _redis() -> Redis | None:
    url = current_app.config["TATTLETALE"].redis_url
    if not url:
        return None
    client = current_app.extensions.get("tattletale_challenge_redis")
    if client is None:
        client = Redis.from_url(url)
        current_app.extensions["tattletale_challenge_redis"] = client
    return client


def _spend(nonce: str, expires: int) -> None:
    redis = _redis()
    if redis is not None:
        prefix = current_app.config["TATTLETALE"].rate_limit_key_prefix
        ttl = max(1, expires - int(time.time()) + 1)
        # SET NX: of two requests racing with the same proof, exactly one wins.
        if not redis.set(f"{prefix}:spent-challenge:{nonce}", b"1", nx=True, ex=ttl):
            raise ProofRejected(REPLAYED, field="proof")
        return
    now = utcnow()
    db.session.execute(delete(SpentChallenge).where(SpentChallenge.expires_at < now))
    try:
        # A savepoint: the unique nonce decides between two racing requests, and a
        # refusal leaves the caller's transaction usable.
        with db.session.begin_nested():
            db.session.add(
                SpentChallenge(nonce=nonce, expires_at=datetime.fromtimestamp(expires, UTC))
            )
    except IntegrityError:
        raise ProofRejected(REPLAYED, field="proof") from None
