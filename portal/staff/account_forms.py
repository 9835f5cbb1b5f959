"""Forms of the account pages, the second sign-in step and the audit log search.

Text fields go through portal/services/text.py's TextValidator, dates through
portal/services/dates.py's range (see portal/staff/forms.py)."""

from __future__ import annotations

from wtforms import (
    DateField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from portal.forms import Form
from portal.models import Outcome
from portal.services.dates import DateRangeValidator
from portal.services.text import TextValidator
from portal.services.users import MAX_TOKEN_DAYS, MAX_TOKEN_NAME_LENGTH

# The largest id a database integer column holds (a larger "before" would overflow the
# driver rather than match nothing).
MAX_ROW_ID = 2**63 - 1


class CodeForm(Form):
    """A TOTP code (6 digits) or a recovery code (16 characters, dashes optional)."""

    code = StringField(
        "Code", validators=[DataRequired(), TextValidator(max_length=32), Length(min=6)]
    )


class TokenForm(Form):
    name = StringField(
        "Name", validators=[DataRequired(), TextValidator(max_length=MAX_TOKEN_NAME_LENGTH)]
    )
    expires_in_days = IntegerField(
        "Expires after (days)",
        default=90,
        # InputRequired, not DataRequired: 0 is falsy and should read "between 1 and ...".
        validators=[InputRequired(), NumberRange(min=1, max=MAX_TOKEN_DAYS)],
    )
    scopes = SelectMultipleField(
        "May act as",
        validators=[DataRequired(message="Choose at least one role.")],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )


class ConfirmForm(Form):
    """A button with nothing to fill in but the CSRF token."""


class AuditSearchForm(Form):
    """GET form: nothing it does changes state, so it carries no CSRF token."""

    class Meta:
        csrf = False

    actor = StringField("Actor", validators=[TextValidator(max_length=254)])
    action = StringField("Action", validators=[TextValidator(max_length=64)])
    object_id = StringField("Object id", validators=[TextValidator(max_length=64)])
    outcome = SelectField(
        "Outcome",
        choices=[SelectChoice("", "any")] + [SelectChoice(o.value, o.value) for o in Outcome],
        validators=[Optional()],
        default="",
    )
    since = DateField("From (UTC)", validators=[Optional(), DateRangeValidator()])
    until = DateField("To (UTC)", validators=[Optional(), DateRangeValidator()])
    before = IntegerField(validators=[Optional(), NumberRange(min=1, max=MAX_ROW_ID)])

    def validate_until(self, field: DateField) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The end date is before the start date.")
