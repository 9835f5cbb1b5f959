"""Staff accounts, their roles and their API tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.agencies import Agency
from portal.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime
from portal.models.encrypted import EncryptedText


class Role(enum.StrEnum):
    OFFICER = "officer"
    DETECTIVE = "detective"
    SUPERVISOR = "supervisor"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


class User(PublicIdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # TOTP (RFC 6238). The secret is set when enrolment starts and the factor counts
    # only once ``totp_enabled_at`` is set, i.e. after the first code was confirmed.
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText("user.totp_secret"))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last time step a code was accepted for: a code is good once, so one seen
    # over a shoulder or phished in real time cannot be replayed within its window.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    agency: Mapped[Agency] = relationship()
    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def held_roles(self) -> frozenset[Role]:
        """Every role the account holds, whatever this request acts as."""
        return frozenset(Role(row.role) for row in self.role_rows)

    @property
    def roles(self) -> frozenset[Role]:
        """The roles this request acts with: the held roles, narrowed to the scopes of
        the API token it came with (see :meth:`act_as`). Every permission check reads
        this, so a token scoped to ``officer`` cannot do what only ``admin`` may."""
        acting = self.acting_roles
        return self.held_roles if acting is None else self.held_roles & acting

    @property
    def acting_roles(self) -> frozenset[Role] | None:
        return self.__dict__.get("_acting_roles")

    def act_as(self, roles: frozenset[Role]) -> None:
        """Narrow this instance (one request's) to ``roles``; never widens."""
        self.__dict__["_acting_roles"] = frozenset(roles)

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_enabled_at is not None and self.totp_secret is not None

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    # Flask-Login protocol.
    @property
    def is_authenticated(self) -> bool:
        return not self.is_disabled

    @property
    def is_active(self) -> bool:
        return not self.is_disabled

    @property
    def is_anonymous(self) -> bool:
        return False

    # Set by the session loader: the staff session this request belongs to. Flask-Login
    # stores get_id() in the cookie, so the cookie names a server-side session that
    # sign-out ends, not the user: a copied cookie is worthless after sign-out.
    @property
    def current_session_id(self) -> str | None:
        return self.__dict__.get("_current_session_id")

    @current_session_id.setter
    def current_session_id(self, value: str | None) -> None:
        self.__dict__["_current_session_id"] = value

    def get_id(self) -> str | None:
        return self.current_session_id

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))

    user: Mapped[User] = relationship(back_populates="role_rows")


class StaffSession(Base):
    """A signed-in browser. The cookie carries ``secret``; only its hash is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_reason: Mapped[str] = mapped_column(String(32), default="")
    client_addr: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship()


class ApiToken(PublicIdMixin, TimestampMixin, Base):
    """A bearer token for the JSON API. Only a SHA-256 of the secret is stored:
    the secret has 256 bits of entropy, so a fast hash is enough and a stolen
    database does not give working tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Role names the token may act as; the effective roles of a request are these
    # and the roles the user still holds. Empty means none: deny by default.
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
