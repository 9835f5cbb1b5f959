"""Forms of the publishing pages: the weekly slot, caption templates, filling a slot."""

from __future__ import annotations

from wtforms import (
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, NumberRange, Regexp

from portal.forms import Form
from portal.publishing.planning import MAX_APPEALS_PER_POST, MAX_REMOVE_AFTER_DAYS
from portal.services.text import TextValidator

WEEKDAYS = [
    SelectChoice(str(number), name)
    for number, name in enumerate(
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), start=1
    )
]


class SlotSettingsForm(Form):
    weekday = SelectField("Weekday", choices=WEEKDAYS, validators=[DataRequired()])
    time = StringField(
        "Local time",
        validators=[
            TextValidator(max_length=5),
            Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", message="Write the time as HH:MM, e.g. 10:00."),
        ],
        description="In the agency's time zone, 24-hour clock.",
    )
    timezone = StringField(
        "Time zone",
        validators=[DataRequired(), TextValidator(max_length=64)],
        description="An IANA zone such as America/New_York or Europe/Berlin.",
    )
    appeals_per_post = IntegerField(
        "Appeals per post",
        validators=[InputRequired(), NumberRange(min=1, max=MAX_APPEALS_PER_POST)],
    )
    remove_posts_after_days = IntegerField(
        "Remove posts from the networks after (days, 0 = never)",
        validators=[InputRequired(), NumberRange(min=0, max=MAX_REMOVE_AFTER_DAYS)],
    )


class CaptionTemplateForm(Form):
    item = TextAreaField(
        "For each appeal",
        validators=[DataRequired(), TextValidator(max_length=2000, multiline=True)],
        description="Fields: {case_number} {title} {summary} {when} {where} {tip_url}. "
        "A line whose fields are all empty is left out.",
    )
    closing = TextAreaField(
        "Closing (once)",
        validators=[TextValidator(max_length=1000, multiline=True)],
        description="Field: {hashtags}.",
    )
    hashtags = StringField("Hashtags", validators=[TextValidator(max_length=300)])
    preview = SubmitField("Preview")
    save = SubmitField("Save template")


class FillSlotForm(Form):
    slot = SelectField("Slot", choices=[], validators=[DataRequired()])
    appeals = SelectMultipleField(
        "Appeals",
        choices=[],
        validators=[DataRequired(message="Choose at least one appeal.")],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    # None ticked: the post goes to the portal's own pages and feed only.
    channels = SelectMultipleField(
        "Channels",
        choices=[],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    schedule = SubmitField("Schedule for the slot")
    post_now = SubmitField("Post now")


class PostActionForm(Form):
    """A bare form for the CSRF token of a button (cancel)."""


class MarkSentForm(Form):
    """Where the person found a delivery whose outcome was unknown. https only: the
    address is shown to staff as a link, and an http or script address is not a post."""

    url = StringField(
        "The post's address",
        validators=[
            DataRequired(message="Give the post's https:// address."),
            TextValidator(max_length=2000),
            Regexp(r"^https://\S+$", message="Give the post's https:// address."),
        ],
    )


class CaptionEditForm(Form):
    """A scheduled post's caption on one channel, as a person rewrote it."""

    text = TextAreaField(
        "Caption",
        validators=[
            DataRequired(message="Write a caption."),
            TextValidator(max_length=70000, multiline=True),
        ],
    )
