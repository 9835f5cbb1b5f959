from __future__ import annotations

from wtforms import SelectMultipleField, StringField, TextAreaField, widgets

from portal.forms import Form
from portal.models.appeals import DEFAULT_QUESTION
from portal.services.text import TextValidator


class AppealForm(Form):
    title = StringField(
        "Public title",
        validators=[TextValidator(max_length=200)],
        description="What the public reads first, e.g. “Man wanted for a robbery on Main Street”.",
    )
    question = StringField(
        "The question", validators=[TextValidator(max_length=200)], default=DEFAULT_QUESTION
    )
    summary = TextAreaField(
        "What happened",
        validators=[TextValidator(max_length=4000, multiline=True)],
        description="Shown under the video. No names of victims or witnesses.",
    )
    versions = SelectMultipleField(
        "Clips to show (approved versions only)",
        choices=[],
        validate_choice=False,  # the service checks each against what is approved now
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )


class WithdrawForm(Form):
    reason = TextAreaField(
        "Why is it taken down?", validators=[TextValidator(max_length=2000, multiline=True)]
    )


class PublishForm(Form):
    pass
