"""Outgoing e-mail over SMTP, and the few mails the portal sends.

Only jobs send mail (portal/jobs/mail.py): a request never waits for a mail server,
and a server that is down or refuses delays the mail, never the request. Whether a
failure is worth retrying follows the SMTP reply codes (RFC 5321, section 4.2.1):
4yz is a transient negative completion ("try again later"), 5yz a permanent one. A
server that cannot be reached or drops the connection is transient too; a
certificate that does not verify, a login refused or a server without STARTTLS are
the operator's to fix, so permanent.

What a mail may carry is decided here, once:

* to detectives: a pointer (the tip's number, the case number, a link to the
  staff page), never the tip's text or anything about the tipster. Mail sits in
  mailboxes, relays and backups the portal does not control;
* to a tipster: that a reply is waiting, never its content, nor the case, nor the
  tip number (whoever else reads that mailbox learns no more than that a reply
  waits on this site).

Messages are built with :class:`email.message.EmailMessage` under the SMTP policy,
which refuses a header value holding a line break: text typed by anyone cannot add
a header.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from flask import current_app

from config import Settings
from portal.models.base import utcnow

SITE_NAME = "Tattletale"


class MailDeferred(Exception):
    """The mail could not be sent now; trying again later may work."""


class MailRefused(Exception):
    """The mail cannot be sent as it is (refused recipient, bad login, bad TLS)."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None


def build_message(mail: Mail, *, sender: str) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(SITE_NAME, addr_spec=sender)
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # Automated mail: no vacation auto-replies back to the portal (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message


def _tls_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.smtp_ca_file)


def _connect(settings: Settings) -> smtplib.SMTP:
    assert settings.smtp_host
    if settings.smtp_security == "tls":
        return smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=settings.smtp_timeout_s,
            context=_tls_context(settings),
        )
    client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s)
    if settings.smtp_security == "starttls":
        client.starttls(context=_tls_context(settings))
    return client


def _refusal(code: int, text: str) -> Exception:
    if 400 <= code < 500:
        return MailDeferred(f"the mail server said try later ({code} {text})")
    return MailRefused(f"the mail server refused the mail ({code} {text})")


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def send_mail(mail: Mail, settings: Settings | None = None) -> None:
    """Hand one mail to the configured server, or raise :class:`MailDeferred` or
    :class:`MailRefused`."""
    settings = settings or current_app.config["TATTLETALE"]
    if not settings.sends_mail:
        raise MailRefused("no mail server is configured (TATTLETALE_SMTP_HOST)")
    message = build_message(mail, sender=settings.mail_from)
    try:
        with _connect(settings) as client:
            if settings.smtp_username:
                client.login(settings.smtp_username, settings.smtp_password or "")
            client.send_message(message)
    except ssl.SSLError as exc:
        raise MailRefused(f"TLS with the mail server failed: {exc}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise MailRefused(
            f"the mail server refused the login ({exc.smtp_code} {_text(exc.smtp_error)})"
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise MailRefused(f"the mail server does not support what is configured: {exc}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        # One recipient per mail: its code decides.
        code, text = next(iter(exc.recipients.values()))
        raise _refusal(code, _text(text)) from exc
    except smtplib.SMTPResponseException as exc:
        # Sender refused, data refused, or a reply at connect/HELO.
        raise _refusal(exc.smtp_code, _text(exc.smtp_error)) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise MailDeferred(f"the mail server dropped the connection: {exc}") from exc
    except OSError as exc:  # refused, unreachable, timed out (all OSError)
        raise MailDeferred(f"the mail server cannot be reached: {exc}") from exc
