from __future__ import annotations

from flask_babel import lazy_gettext as _l
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

from portal.forms import Form
from portal.services.text import TextValidator

# Labels and hints are lazy: each is translated when a page shows it, in that page's
# language (portal/i18n.py), not once at import.


class SearchForm(Form):
    """Search by place or offence. A GET form: no CSRF token, no session."""

    class Meta:
        csrf = False

    q = SearchField(_l("Place or offence"), validators=[TextValidator(max_length=100)])


class ProofOfWorkFields:
    """The challenge the server issued with the form, and the counter the page's
    worker found for it (portal/static/js/proof-of-work.js). Empty without
    JavaScript: then the stricter limit applies instead."""

    pow_challenge = HiddenField()
    pow_solution = HiddenField()


class AttachmentFields:
    """The optional files of a tip or an answer. What a file is, and whether it is
    kept, is decided by the attachment service from its bytes; ``draft`` carries the
    secret of the files already received for this form (shown again after a refusal)."""

    files = MultipleFileField(
        _l("Photos or videos (optional)"),
        description=_l(
            "Photos (JPEG, PNG, HEIC) or videos (MP4, MOV) from your phone. "
            "Location and camera details are removed before anyone sees them."
        ),
    )
    draft = HiddenField(validators=[TextValidator(max_length=64)])


class TipForm(AttachmentFields, ProofOfWorkFields, Form):
    """The tip form. Works without JavaScript; nothing in it is required but the tip."""

    body = TextAreaField(
        _l("What do you know?"),
        validators=[TextValidator(max_length=10_000, multiline=True)],
        description=_l("Who is it, where can they be found, anything else you saw or heard."),
    )
    seen_when = StringField(
        _l("When did you see them? (optional)"),
        validators=[TextValidator(max_length=200)],
        description=_l("For example “last Friday around 6 pm”."),
    )
    name = StringField(_l("Your name (optional)"), validators=[TextValidator(max_length=200)])
    phone = TelField(_l("Phone (optional)"), validators=[TextValidator(max_length=30)])
    email = EmailField(_l("E-mail (optional)"), validators=[TextValidator(max_length=254)])
    notify_by_email = BooleanField(
        _l("E-mail me when a detective replies (never the reply itself)")
    )
    via = HiddenField()
    # A field people never see and bots fill in. Named like something a form-filling
    # bot wants to complete; hidden by CSS and from assistive technology.
    website = StringField(_l("Leave this empty"), validators=[TextValidator(max_length=200)])


class ReceiptCheckForm(Form):
    number = StringField(_l("Tip number"), validators=[TextValidator(max_length=32)])
    passphrase = PasswordField(
        _l("Passphrase (the seven words)"), validators=[TextValidator(max_length=200)]
    )


class ReplyForm(AttachmentFields, ProofOfWorkFields, Form):
    token = HiddenField()
    body = TextAreaField(
        _l("Your answer or more information"),
        validators=[TextValidator(max_length=5_000, multiline=True)],
    )
