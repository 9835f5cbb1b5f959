"""The mail settings: defaults, the port that follows the TLS mode, and what refuses
to start."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings

BASE = {"TATTLETALE_ENV": "testing"}


def test_mail_is_off_by_default_and_links_use_the_port() -> None:
    settings = load_settings({**BASE, "TATTLETALE_PORT": "8080"})
    assert settings.sends_mail is False
    assert settings.public_url == "http://localhost:8080"


def test_mail_settings_are_read_and_the_port_follows_the_mode() -> None:
    settings = load_settings(
        {
            **BASE,
            "TATTLETALE_SMTP_HOST": "mail.city.example",
            "TATTLETALE_SMTP_SECURITY": "tls",
            "TATTLETALE_MAIL_FROM": "tips@city.example",
            "TATTLETALE_SMTP_USERNAME": "portal",
            "TATTLETALE_SMTP_PASSWORD": "s3cret",
            "TATTLETALE_PUBLIC_URL": "https://tips.city.example/",
        }
    )
    assert (settings.smtp_port, settings.smtp_security, settings.sends_mail) == (465, "tls", True)
    assert settings.public_url == "https://tips.city.example"
    assert load_settings({**BASE, "TATTLETALE_SMTP_SECURITY": "starttls"}).smtp_port == 587


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"TATTLETALE_SMTP_SECURITY": "ssl"}, "starttls, tls or none"),
        ({"TATTLETALE_SMTP_HOST": "mail.city.example"}, "TATTLETALE_MAIL_FROM"),
        ({"TATTLETALE_SMTP_USERNAME": "portal"}, "together"),
        ({"TATTLETALE_PUBLIC_URL": "tips.city.example"}, "https://"),
        ({"TATTLETALE_SMTP_PORT": "smtp"}, "whole number"),
    ],
)
def test_mail_settings_refuse(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({**BASE, **extra})
