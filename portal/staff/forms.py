from __future__ import annotations

from datetime import UTC

from flask_wtf import FlaskForm
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
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
)


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    next = StringField()


class LogoutForm(FlaskForm):
    pass


class CaseForm(FlaskForm):
    number = StringField("Case number", validators=[DataRequired(), Length(max=64)])
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    offense = StringField("Offense", validators=[Optional(), Length(max=120)])
    occurred_at = DateTimeLocalField(
        "When it happened (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )
    location_address = StringField("Where", validators=[Optional(), Length(max=300)])
    latitude = FloatField("Latitude", validators=[Optional(), NumberRange(-90, 90)])
    longitude = FloatField("Longitude", validators=[Optional(), NumberRange(-180, 180)])
    public_summary = TextAreaField(
        "Public summary",
        validators=[Optional(), Length(max=4000)],
        description="Shown on the public appeal once footage is published.",
    )
    internal_notes = TextAreaField(
        "Internal notes",
        validators=[Optional(), Length(max=20000)],
        description="Never shown to the public.",
    )
    status = SelectField(
        "Status",
        choices=[("open", "Open"), ("solved", "Solved"), ("closed", "Closed")],
        default="open",
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
            "status": self.status.data,
        }


class CaseFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField("Search", validators=[Optional(), Length(max=100)])
    status = SelectField(
        "Status",
        choices=[("", "Any status"), ("open", "Open"), ("solved", "Solved"), ("closed", "Closed")],
        validators=[Optional()],
    )
    after = StringField(validators=[Optional(), Length(max=32)])


class ApprovalForm(FlaskForm):
    bystanders_blurred = BooleanField("Victims and bystanders are blurred")
    no_juveniles = BooleanField("No juvenile can be identified")
    investigation_safe = BooleanField("Nothing in it compromises the investigation")


class RevokeForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=2000)])


class RetryForm(FlaskForm):
    pass


class DeleteEvidenceForm(FlaskForm):
    reason = TextAreaField(
        "Reason for deleting", validators=[DataRequired(), Length(min=10, max=2000)]
    )
