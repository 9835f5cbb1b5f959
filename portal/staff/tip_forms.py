from __future__ import annotations

from wtforms import HiddenField, SelectField, StringField, TextAreaField

from portal.forms import Form
from portal.services.text import TextValidator


class StaffMessageForm(Form):
    body = TextAreaField(
        "Write to the tipster",
        validators=[TextValidator(max_length=5_000, multiline=True)],
        description="They read it when they come back with their receipt. "
        "Never ask who they are: they may stay anonymous.",
    )


class RevealForm(Form):
    pass


class CommentActionForm(Form):
    """Hide, delete or answer a public comment on the network (the action is in the
    URL; the form carries the CSRF token)."""


class TriageForm(Form):
    """One tip's triage. ``version`` is the tip's version when the page was drawn:
    the change is refused if someone else changed the tip since."""

    version = HiddenField()
    status = SelectField("Status", choices=[])
    priority = SelectField("Priority", choices=[])
    assignee = SelectField("Assigned to", choices=[])
    tags = StringField(
        "Tags",
        validators=[TextValidator(max_length=500)],
        description="Separated by commas, for instance: vehicle, plate seen.",
    )
    linked_case = SelectField("Also bears on case", choices=[])
    duplicate_of = StringField(
        "Duplicate of tip",
        validators=[TextValidator(max_length=64)],
        description="The number of the tip this one repeats (T-XXXXX-XXXXX): merges it.",
    )


class NoteForm(Form):
    body = TextAreaField(
        "Internal note",
        validators=[TextValidator(max_length=5_000, multiline=True)],
        description="For the agency's staff only: never shown to the tipster.",
    )


class BulkForm(Form):
    """A change for every tip selected in the queue (checkboxes named ``tip``, each
    "public id:version"). An empty choice leaves that field as it is."""

    status = SelectField("Status", choices=[])
    priority = SelectField("Priority", choices=[])
    assignee = SelectField("Assign to", choices=[])
