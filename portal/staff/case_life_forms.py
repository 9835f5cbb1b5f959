"""The form that moves a case along its life (solve, close, reopen)."""

from __future__ import annotations

from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, TextAreaField
from wtforms.widgets import CheckboxInput, ListWidget

from portal.forms import Form
from portal.services.case_life import MAX_REASON_CHARS
from portal.services.text import TextValidator


class CaseStatusForm(Form):
    to_status = SelectField("New status", choices=[], validate_choice=True)
    # The status the page showed: a change made meanwhile is reported, not overwritten.
    seen_status = HiddenField()
    reason = TextAreaField(
        "Why",
        validators=[TextValidator(max_length=MAX_REASON_CHARS, multiline=True)],
        description="Kept in the case's history, for staff only.",
    )
    tips_led = BooleanField("Tips led to solving it")
    tips = SelectMultipleField(
        "Which tips",
        choices=[],
        validate_choice=False,  # the service checks they are this case's tips
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
