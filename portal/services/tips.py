"""Tips from the public: intake, the receipt, and the conversation with the tipster.

The threat this module answers: someone wants to learn who sent a tip (the suspect,
their friends, a curious insider). So a tip stores only what the tipster typed; its
contact fields are encrypted at rest; and the tipster comes back with a receipt (a
random tip number and a passphrase of seven words from the EFF's diceware list,
about 90 bits) that is stored only as an HMAC under a key kept outside the
database. With that much entropy a slow password hash would add nothing but cap
tip intake at a few per second.

Services flush; the request that called them commits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Agency, Appeal, MessageAuthor, Outcome, Tip, TipMessage, User
from portal.models.base import utcnow
from portal.services import tip_search  # noqa: F401  (keeps the search index current on flush)
from portal.services.appeals import channel_of
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.errors import NotFound, PermissionDenied, ValidationFailed
from portal.services.notifications import staff_replied, tip_received
from portal.services.text import clean_text

PASSPHRASE_WORDS = 7
# Crockford's base 32 without I, L, O, U: nothing to misread when copied by hand.
NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NUMBER_LENGTH = 10  # 50 bits: numbers are not guessable either
# Draws of a tip's number before giving up (each taken with odds of 1 in 2^50 per tip).
NUMBER_ATTEMPTS = 3
MAX_TIP_CHARS = 10_000
MAX_MESSAGE_CHARS = 5_000
# A reply form stays valid this long after the receipt was checked.
THREAD_TOKEN_MAX_AGE_S = 3600
_PHONE = re.compile(r"^\+?[0-9 ().\-]{5,30}$")
T = TypeVar("T")
WRONG_RECEIPT = _l("That tip number and passphrase do not match a tip. Check them and try again.")


@cache
def wordlist() -> tuple[str, ...]:
    """The EFF long wordlist (7,776 words, designed for diceware), from xkcdpass."""
    text = files("xkcdpass").joinpath("static/eff-long").read_text(encoding="utf-8")
    words = tuple(line.strip() for line in text.splitlines() if line.strip())
    assert len(set(words)) == 7776, "the EFF long wordlist must hold 7,776 distinct words"
    return words


def new_passphrase() -> str:
    words = wordlist()
    return " ".join(secrets.choice(words) for _ in range(PASSPHRASE_WORDS))


def new_tip_number() -> str:
    body = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(NUMBER_LENGTH))
    return f"T-{body[:5]}-{body[5:]}"


def normalize_number(value: str) -> str:
    compact = re.sub(r"[\s\-]", "", (value or "").upper()).removeprefix("T")
    compact = compact.translate(str.maketrans("OIL", "011"))
    if len(compact) != NUMBER_LENGTH or any(ch not in NUMBER_ALPHABET for ch in compact):
        return ""
    return f"T-{compact[:5]}-{compact[5:]}"


def normalize_passphrase(value: str) -> str:
    """Forgiving about how it was written down: case, spaces, hyphens, dots."""
    return " ".join(re.split(r"[\s\-.,_]+", (value or "").strip().lower())).strip()


def receipt_hash(number: str, passphrase: str) -> str:
    key = current_app.config["TATTLETALE"].receipt_key.encode()
    message = f"{number}\n{normalize_passphrase(passphrase)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Receipt:
    number: str
    passphrase: str


@dataclass(frozen=True)
class TipInput:
    body: str
    seen_when: str = ""
    name: str = ""
    phone: str = ""
    email: str = ""
    notify_by_email: bool = False
    via: str = ""
    # The language the tipster wrote in (the page's): mails to them are in it.
    language: str = "en"


def _clean_contact(data: TipInput) -> tuple[str, str, str]:
    name = clean_text(data.name, field="name", max_length=200, label=_("Your name"))
    phone = clean_text(data.phone, field="phone", max_length=30, label=_("Phone"))
    if phone and not _PHONE.match(phone):
        raise ValidationFailed(
            _("Give the phone number with digits only (spaces, +, - and brackets are fine)."),
            field="phone",
        )
    email = clean_text(data.email, field="email", max_length=254, label=_("E-mail"))
    if email:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            raise ValidationFailed(_("That e-mail address is not valid."), field="email") from None
    if data.notify_by_email and not email:
        raise ValidationFailed(
            _("Give an e-mail address to be told when a reply waits."), field="email"
        )
    return name, phone, email


@dataclass(frozen=True)
class TipTarget:
    """Where a tip goes: its agency, and the appeal and case it answers, if any. Ids
    only, so the public site can keep it for an appeal and take a tip without
    loading the appeal (portal/services/public_cache.py)."""

    agency_id: int
    appeal_id: int | None = None
    case_id: int | None = None

    @classmethod
    def of(cls, agency: Agency, appeal: Appeal | None = None) -> TipTarget:
        if appeal is None:
            return cls(agency.id)
        if appeal.agency_id != agency.id:
            raise ValidationFailed(_("This appeal belongs to another agency."), field="appeal")
        return cls(agency.id, appeal.id, appeal.case_id)


def submit_tip(
    data: TipInput, *, agency: Agency, appeal: Appeal | None = None
) -> tuple[Tip, Receipt]:
    """Accept a tip. The receipt's passphrase is returned once and never stored."""
    return submit_tip_to(data, TipTarget.of(agency, appeal))


def submit_tip_to(data: TipInput, target: TipTarget) -> tuple[Tip, Receipt]:
    """Accept a tip for ``target``; the receipt's passphrase is returned once."""
    body = clean_text(
        data.body,
        field="body",
        max_length=MAX_TIP_CHARS,
        multiline=True,
        required=True,
        label=_("What you know"),
    )
    seen_when = clean_text(
        data.seen_when, field="seen_when", max_length=200, label=_("When you saw them")
    )
    name, phone, email = _clean_contact(data)
    # Not looked up first (a query on every tip for a collision of 50 random bits):
    # the number's unique index refuses a taken one, and the caller tries again.
    number = new_tip_number()
    passphrase = new_passphrase()
    tip = Tip(
        number=number,
        agency_id=target.agency_id,
        appeal_id=target.appeal_id,
        case_id=target.case_id,
        channel=channel_of(data.via),
        body=body,
        seen_when=seen_when,
        contact_name=name or None,
        contact_phone=phone or None,
        contact_email=email or None,
        notify_by_email=bool(email) and data.notify_by_email,
        receipt_hash=receipt_hash(number, passphrase),
        language=data.language,
    )
    db.session.add(tip)
    try:
        db.session.flush()
    except IntegrityError as exc:
        if _is_number_taken(exc):
            raise TipNumberTaken() from exc
        raise
    tip_received(tip)  # the mail goes out from a job, after the commit
    return tip, Receipt(number=number, passphrase=passphrase)


class TipNumberTaken(Exception):
    """The random number drawn for a tip is another tip's (about one tip in 2^50
    per tip stored). What the attempt wrote is spent: submit again."""


def with_a_free_number(submit: Callable[[], T]) -> T:
    """``submit()`` (a request's tip intake), again with a new number while the one
    drawn was taken. Each attempt runs in a savepoint, so a spent one takes back only
    what it wrote: what the request did before it (a proof of work spent in the
    database, files staged) stays in the request's transaction."""
    for attempt in range(1, NUMBER_ATTEMPTS + 1):
        try:
            with db.session.begin_nested():
                return submit()
        except TipNumberTaken:
            if attempt == NUMBER_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# The unique index on the tip number, as PostgreSQL names it in a refusal; SQLite
# names the column instead ("UNIQUE constraint failed: tips.number").
_NUMBER_COLUMN = f"{Tip.__tablename__}.number"
_NUMBER_INDEX = next(
    str(index.name)
    for index in Tip.metadata.tables[Tip.__tablename__].indexes
    if index.unique and [column.name for column in index.columns] == ["number"]
)


def _is_number_taken(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)  # PostgreSQL names the index
    if diag is not None:
        return getattr(diag, "constraint_name", None) == _NUMBER_INDEX
    return _NUMBER_COLUMN in str(exc.orig)


def decoy_receipt() -> Receipt:
    """What a bot that filled the honeypot is shown: a receipt that opens nothing."""
    return Receipt(number=new_tip_number(), passphrase=new_passphrase())


# A hash to compare against when the number matches no tip, so a wrong number costs
# the same work and answers the same as a wrong passphrase.
_NO_TIP_HASH = "0" * 64


def open_tip(number: str, passphrase: str) -> Tip:
    """The tip this receipt belongs to, or NotFound with one message for every way
    of being wrong (unknown number, wrong passphrase, malformed input)."""
    normalized = normalize_number(number)
    tip = db.session.scalar(select(Tip).where(Tip.number == normalized)) if normalized else None
    expected = tip.receipt_hash if tip is not None else _NO_TIP_HASH
    given = receipt_hash(normalized or "T-invalid", passphrase)
    if not hmac.compare_digest(expected, given) or tip is None:
        raise NotFound(WRONG_RECEIPT)
    return tip


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="tip-thread")


def thread_token(tip: Tip) -> str:
    """What the reply form carries instead of the passphrase: signed, expiring, and
    naming only the tip."""
    return _serializer().dumps(tip.public_id)


def tip_from_thread_token(token: str) -> Tip:
    try:
        public_id = _serializer().loads(token, max_age=THREAD_TOKEN_MAX_AGE_S)
    except BadSignature:
        raise NotFound(
            _("This page has expired. Open your tip again with its number and passphrase.")
        ) from None
    tip = db.session.scalar(select(Tip).where(Tip.public_id == public_id))
    if tip is None:
        raise NotFound(WRONG_RECEIPT)
    return tip


def add_tipster_message(tip: Tip, body: str) -> TipMessage:
    body = clean_text(
        body,
        field="body",
        max_length=MAX_MESSAGE_CHARS,
        multiline=True,
        required=True,
        label=_("Your message"),
    )
    message = TipMessage(tip=tip, author=MessageAuthor.TIPSTER.value, body=body)
    tip.last_tipster_message_at = utcnow()
    db.session.add(message)
    # The queue shows the tip as awaiting staff again, from their first unanswered word.
    if tip.awaiting_since is None:
        tip.awaiting_since = tip.last_tipster_message_at
    db.session.flush()
    return message


def may_handle(user: User, tip: Tip) -> bool:
    """Detectives of the tip's case (supervisors: every case of their agency); a
    general tip, tied to no case, to the agency's detectives and supervisors."""
    if tip.case is not None:
        return can(user, Permission.TIP_TRIAGE, tip.case)
    return user.agency_id == tip.agency_id and can(user, Permission.TIP_TRIAGE)


def get_tip_for(user: User, public_id: str) -> Tip:
    """The tip, if ``user`` may handle it; NotFound otherwise (ids are not probed).

    A tip that exists but is not the user's (another case's, another agency's) is
    refused in the audit log too, under the user's own agency: their admins see who
    went looking, and no agency learns of another's tips."""
    tip = db.session.scalar(select(Tip).where(Tip.public_id == public_id))
    if tip is not None and not may_handle(user, tip):
        record_event(
            "tip.access_denied",
            agency_id=user.agency_id,
            actor=user,
            object_type="tip",
            object_id=tip.public_id,
            outcome=Outcome.DENIED,
        )
        # Committed here, not by the request: it must outlive the 404 that follows
        # (see portal/http/transactions.py).
        db.session.commit()
        raise NotFound("No such tip.")
    if tip is None:
        raise NotFound("No such tip.")
    return tip


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    email: str


def reveal_contact(tip: Tip, user: User) -> Contact:
    """The tipster's contact details, for staff of the tip's case. Every reveal is
    in the audit log: who saw whose contact, and when."""
    if not may_handle(user, tip):
        raise PermissionDenied("You may not see this tipster's contact details.")
    record_event(
        "tip.contact_reveal",
        agency_id=tip.agency_id,
        actor=user,
        object_type="tip",
        object_id=tip.public_id,
    )
    return Contact(
        name=tip.contact_name or "", phone=tip.contact_phone or "", email=tip.contact_email or ""
    )


def add_staff_message(tip: Tip, user: User, body: str) -> TipMessage:
    if not may_handle(user, tip):
        raise PermissionDenied("You may not write to this tipster.")
    body = clean_text(
        body,
        field="body",
        max_length=MAX_MESSAGE_CHARS,
        multiline=True,
        required=True,
        label="Message",
    )
    message = TipMessage(
        tip=tip, author=MessageAuthor.STAFF.value, author_user_id=user.id, body=body
    )
    tip.last_staff_message_at = utcnow()
    tip.awaiting_since = None
    db.session.add(message)
    db.session.flush()
    record_event(
        "tip.message",
        agency_id=tip.agency_id,
        actor=user,
        object_type="tip",
        object_id=tip.public_id,
        details={"length": len(body)},
    )
    staff_replied(message)  # the notice goes out from a job, after the commit
    return message
