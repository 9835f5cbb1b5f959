"""Sign-in protection: MFA recovery codes and the sign-in throttle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UTCDateTime


class MfaRecoveryCode(Base):
    """A one-time code for signing in without the authenticator app.

    Only a SHA-256 of the code is stored: a code carries 80 random bits, too many
    to search even with a fast hash, so a stolen database gives no working code.
    """

    __tablename__ = "mfa_recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInThrottle(Base):
    """Failed sign-in attempts for one account or one client address.

    Kept in the database so that every web process and machine sees the same
    counts: an attacker gains nothing by spreading guesses over the load balancer.
    """

    __tablename__ = "sign_in_throttles"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "account" (the normalized e-mail address, known or not) or "client" (an address).
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(254))
    # Failures since window_started_at; the window restarts after a quiet period.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # How many times this key was locked in a row; each lock is twice the last.
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SpentChallenge(Base):
    """A proof-of-work challenge that has been used (portal.services.challenges).

    Only the challenge's own random nonce and when the record may go: nothing of the
    client that solved it. Used when no Redis is configured; kept until the
    challenge would have expired anyway, after which it could not be replayed.
    """

    __tablename__ = "spent_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
