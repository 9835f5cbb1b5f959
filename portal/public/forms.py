from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    MultipleFileField,
    PasswordField,
    SearchField,
    StringField,
    TelField,
    TextAreaField,
)

from portal.services.text import TextValidator


class SearchForm(FlaskForm):
    """Search by place or offence. A GET form: no CSRF token, no session."""

    class Meta:
        csrf = False

    q = SearchField("Place or offence", validators=[TextValidator(max_length=100)])


class AttachmentFields:
    """The optional files of a tip or an answer. What a file is, and whether it is
    kept, is decided by the attachment service from its bytes; ``draft`` carries the
    secret of the files already received for this form (shown again after a refusal)."""

    files = MultipleFileField(
        "Photos or videos (optional)",
        description="Photos (JPEG, PNG, HEIC) or videos (MP4, MOV) from your phone. "
        "Location and camera details are removed before anyone sees them.",
    )
    draft = HiddenField(validators=[TextValidator(max_length=64)])


class TipForm(AttachmentFields, FlaskForm):
    """The tip form. Works without JavaScript; nothing in it is required but the tip."""

    body = TextAreaField(
        "What do you know?",
        validators=[TextValidator(max_length=10_000, multiline=True)],
        description="Who is it, where can they be found, anything else you saw or heard.",
    )
    seen_when = StringField(
        "When did you see them? (optional)",
        validators=[TextValidator(max_length=200)],
        description="For example “last Friday around 6 pm”.",
    )
    name = StringField("Your name (optional)", validators=[TextValidator(max_length=200)])
    phone = TelField("Phone (optional)", validators=[TextValidator(max_length=30)])
    email = EmailField("E-mail (optional)", validators=[TextValidator(max_length=254)])
    notify_by_email = BooleanField("E-mail me when a detective replies (never the reply itself)")
    via = HiddenField()
    # A field people never see and bots fill in. Named like something a form-filling
    # bot wants to complete; hidden by CSS and from assistive technology.
    website = StringField("Leave this empty", validators=[TextValidator(max_length=200)])


class ReceiptCheckForm(FlaskForm):
    number = StringField("Tip number", validators=[TextValidator(max_length=32)])
    passphrase = PasswordField(
        "Passphrase (the seven words)", validators=[TextValidator(max_length=200)]
    )


class ReplyForm(AttachmentFields, FlaskForm):
    token = HiddenField()
    body = TextAreaField(
        "Your answer or more information",
        validators=[TextValidator(max_length=5_000, multiline=True)],
    )
