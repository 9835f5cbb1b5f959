"""Forms of the staff pages.

Every text field goes through portal/services/text.py's TextValidator (the one
validation of text), with the length and line rules of what it fills; every date
through portal/services/dates.py's range. Choices are SelectChoice, the form WTForms
keeps (tuples go in 3.4).
"""

from __future__ import annotations

from datetime import UTC

from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    FloatField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
)

from portal.forms import Form
from portal.models import CaseStatus
from portal.services.cases import CASE_TEXT_FIELDS
from portal.services.clips import MAX_REVOKE_REASON_LENGTH
from portal.services.dates import DateRangeValidator
from portal.services.evidence import MAX_DELETION_REASON_LENGTH
from portal.services.passwords import MAX_PASSWORD_LENGTH
from portal.services.text import TextValidator

# The longest sign-in redirect target carried through the form; anything longer is
# no page of ours.
MAX_NEXT_URL_LENGTH = 2048


def case_text(name: str) -> TextValidator:
    """The validator of one case text field, from the rules the service applies too."""
    rule = CASE_TEXT_FIELDS[name]
    return TextValidator(max_length=rule.max_length, multiline=rule.multiline)


STATUS_CHOICES = [SelectChoice(s.value, s.value.capitalize()) for s in CaseStatus]


class LoginForm(Form):
    email = EmailField(
        "E-mail", validators=[DataRequired(), TextValidator(max_length=254), Email()]
    )
    # A secret: checked for what no password can hold, never stripped or normalised
    # (see portal/services/text.py).
    password = PasswordField(
        "Password",
        validators=[DataRequired(), TextValidator(max_length=MAX_PASSWORD_LENGTH, secret=True)],
    )
    next = StringField(validators=[TextValidator(max_length=MAX_NEXT_URL_LENGTH)])

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        if self.next.errors:
            # A redirect target, not something the user typed: one that is not text we
            # accept is dropped (the user lands on the start page) rather than failing
            # a sign-in whose e-mail and password were right.
            self.next.errors = []
            self.next.data = ""
            ok = not self.errors
        return ok


class LogoutForm(Form):
    pass


class CaseForm(Form):
    number = StringField("Case number", validators=[DataRequired(), case_text("number")])
    title = StringField("Title", validators=[DataRequired(), case_text("title")])
    offense = StringField("Offense", validators=[case_text("offense")])
    occurred_at = DateTimeLocalField(
        "When it happened (UTC)",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional(), DateRangeValidator()],
    )
    location_address = StringField("Where", validators=[case_text("location_address")])
    latitude = FloatField("Latitude", validators=[Optional(), NumberRange(-90, 90)])
    longitude = FloatField("Longitude", validators=[Optional(), NumberRange(-180, 180)])
    public_summary = TextAreaField(
        "Public summary",
        validators=[case_text("public_summary")],
        description="Shown on the public appeal once footage is published.",
    )
    internal_notes = TextAreaField(
        "Internal notes",
        validators=[case_text("internal_notes")],
        description="Never shown to the public.",
    )
    detectives = SelectMultipleField("Assigned detectives", choices=[], validate_choice=True)

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        # Across two fields, so not a field validator (Optional() stops those early).
        if (self.latitude.data is None) != (self.longitude.data is None):
            self.longitude.errors = [
                *self.longitude.errors,
                "Give both latitude and longitude, or neither.",
            ]
            ok = False
        return ok

    def to_changes(self) -> dict[str, object]:
        occurred = self.occurred_at.data
        return {
            "number": self.number.data or "",
            "title": self.title.data or "",
            "offense": self.offense.data or "",
            "occurred_at": occurred.replace(tzinfo=UTC) if occurred else None,
            "location_address": self.location_address.data or "",
            "latitude": self.latitude.data,
            "longitude": self.longitude.data,
            "public_summary": self.public_summary.data or "",
            "internal_notes": self.internal_notes.data or "",
        }


class CaseFilterForm(Form):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField("Search", validators=[TextValidator(max_length=100)])
    status = SelectField(
        "Status",
        choices=[SelectChoice("", "Any status"), *STATUS_CHOICES],
        validators=[Optional()],
    )
    after = StringField("Page cursor", validators=[TextValidator(max_length=64)])


class ApprovalForm(Form):
    bystanders_blurred = BooleanField("Victims and bystanders are blurred")
    no_juveniles = BooleanField("No juvenile can be identified")
    investigation_safe = BooleanField("Nothing in it compromises the investigation")


REVOKE_REASON_MISSING = "Say why the approval is revoked."
DELETION_REASON_MISSING = "Give the reason for deleting this evidence (at least 10 characters)."


class RevokeForm(Form):
    reason = TextAreaField(
        "Reason",
        validators=[
            DataRequired(message=REVOKE_REASON_MISSING),
            TextValidator(max_length=MAX_REVOKE_REASON_LENGTH, multiline=True),
        ],
    )


class RetryForm(Form):
    pass


class DeleteEvidenceForm(Form):
    reason = TextAreaField(
        "Reason for deleting",
        validators=[
            DataRequired(message=DELETION_REASON_MISSING),
            TextValidator(max_length=MAX_DELETION_REASON_LENGTH, multiline=True),
            # After TextValidator, so the ten characters are counted on the cleaned text.
            Length(min=10, message=DELETION_REASON_MISSING),
        ],
    )
