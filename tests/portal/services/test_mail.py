"""send_mail against a real SMTP server on loopback: delivered, deferred (4xx, the
server down), refused (5xx, bad login, untrusted certificate), over STARTTLS and
implicit TLS with a login; headers cannot be injected."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from config import Settings
from portal.services.mail import Mail, MailDeferred, MailRefused, build_message, send_mail
from tests.portal.mail_server import PASSWORD, USERNAME, free_port, make_certificate, smtp_server

# Implicit TLS: the login is over TLS, though aiosmtpd only knows STARTTLS as TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

MAIL = Mail(to="det@springfield.example", subject="New tip for case 24-0001", text="Hello.\n")


def smtp(settings: Settings, port: int, **changes: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "mail_from": "portal@springfield.example",
        "smtp_timeout_s": 5,
    }
    return replace(settings, **(values | changes))  # type: ignore[arg-type]


def test_send_mail_delivers_plain_text(settings: Settings) -> None:
    with smtp_server() as (inbox, port):
        send_mail(replace(MAIL, html="<p>Hello.</p>"), smtp(settings, port))
    [(sender, recipients)] = inbox.envelopes
    assert sender == "portal@springfield.example"
    assert recipients == ["det@springfield.example"]
    [message] = inbox.messages
    assert message["Subject"] == "New tip for case 24-0001"
    assert message["Auto-Submitted"] == "auto-generated"
    # On the wire lines end in CRLF (RFC 5321).
    assert message.get_body(("plain",)).get_content() == "Hello.\r\n"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content() == "<p>Hello.</p>\r\n"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("451 4.3.0 Mailbox temporarily unavailable", MailDeferred),
        ("452 4.2.2 Over quota, try later", MailDeferred),
        ("550 5.1.1 No such user", MailRefused),
        ("554 5.7.1 Relay access denied", MailRefused),
    ],
)
def test_send_mail_follows_the_reply_code(settings: Settings, reply: str, error: type) -> None:
    with smtp_server() as (inbox, port):
        inbox.refuse_rcpt = reply
        with pytest.raises(error, match=reply.split()[0]):
            send_mail(MAIL, smtp(settings, port))
    assert inbox.messages == []


def test_send_mail_defers_when_the_server_is_down(settings: Settings) -> None:
    with pytest.raises(MailDeferred, match="cannot be reached"):
        send_mail(MAIL, smtp(settings, free_port()))


def test_send_mail_over_starttls_with_a_login(settings: Settings, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    with smtp_server(tls="starttls", certificate=(cert, key)) as (inbox, port):
        good = smtp(
            settings,
            port,
            smtp_security="starttls",
            smtp_ca_file=str(cert),
            smtp_username=USERNAME,
            smtp_password=PASSWORD,
        )
        send_mail(MAIL, good)
        assert len(inbox.messages) == 1
        with pytest.raises(MailRefused, match="login"):
            send_mail(MAIL, replace(good, smtp_password="wrong"))
        # Without the CA the certificate does not verify: never sent in the clear.
        with pytest.raises(MailRefused, match="TLS"):
            send_mail(MAIL, replace(good, smtp_ca_file=None))
        # A server that requires STARTTLS refuses a client that skips it.
        with pytest.raises(MailRefused):
            send_mail(MAIL, replace(good, smtp_security="none"))
    assert len(inbox.messages) == 1


def test_send_mail_over_implicit_tls(settings: Settings, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    with smtp_server(tls="tls", certificate=(cert, key)) as (inbox, port):
        send_mail(
            MAIL,
            smtp(
                settings,
                port,
                smtp_security="tls",
                smtp_ca_file=str(cert),
                smtp_username=USERNAME,
                smtp_password=PASSWORD,
            ),
        )
    assert len(inbox.messages) == 1


@pytest.mark.parametrize("field", ["to", "subject"])
def test_build_message_refuses_header_injection(field: str) -> None:
    evil = replace(MAIL, **{field: "x@example.com\r\nBcc: victim@example.com"})
    with pytest.raises(ValueError):
        build_message(evil, sender="portal@springfield.example").as_bytes()
