"""Forms of the channel pages. Text goes through TextValidator; secrets are taken as
typed (``secret=True``) and rendered empty, so a stored one never reaches a page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Optional, Regexp, ValidationError

from portal.forms import Form
from portal.services.text import TextValidator

NAME_PATTERN = Regexp(r"^[\w .,'()&@-]+$", message="Letters, digits, spaces and .,'()&@- only.")


class UrlValidator:
    """A network's address the portal will send tokens to: HTTPS only (plain HTTP only
    in the test environment, where the networks are fakes on loopback)."""

    def __call__(self, form: object, field: StringField) -> None:
        if not field.data:
            return
        parts = urlsplit(field.data)
        allowed = ("https", "http") if current_app.testing else ("https",)
        if parts.scheme not in allowed or not parts.hostname or parts.username or parts.password:
            raise ValidationError("An https:// address of the network, without a user name.")
        if parts.query or parts.fragment:
            raise ValidationError("The address without ? or #.")


def _name() -> StringField:
    return StringField(
        "Name (as your staff will see it)",
        validators=[DataRequired(), TextValidator(max_length=200), NAME_PATTERN],
    )


def _url(label: str, *, required: bool = False) -> StringField:
    first = DataRequired() if required else Optional()
    return StringField(label, validators=[first, TextValidator(max_length=500), UrlValidator()])


class OAuthConnectForm(Form):
    name = _name()
    client_id = StringField(
        "Client id (App id) of your agency's app at the network",
        validators=[DataRequired(), TextValidator(max_length=200)],
    )
    client_secret = PasswordField(
        "Client secret (App secret); leave blank to keep the stored one",
        validators=[Optional(), TextValidator(max_length=500, secret=True)],
    )
    base_url = _url("Network address (leave blank for the network's own)")
    account_id = StringField(
        "Account", validators=[Optional(), TextValidator(max_length=100), Regexp(r"^[\w.@-]+$")]
    )


class PasswordConnectForm(Form):
    name = _name()
    base_url = _url("Service address (leave blank for the network's own)")
    identifier = StringField(
        "Account (handle or e-mail)", validators=[DataRequired(), TextValidator(max_length=254)]
    )
    password = PasswordField(
        "App password (not the account's password)",
        validators=[DataRequired(), TextValidator(max_length=200, secret=True)],
    )


class KeyConnectForm(Form):
    name = _name()
    base_url = _url("Address the portal posts to", required=True)
    key = PasswordField(
        "Signing key (leave blank to have one made; it is shown once)",
        validators=[Optional(), TextValidator(max_length=500, secret=True)],
    )
