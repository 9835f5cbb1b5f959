from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import TextAreaField

from portal.services.text import TextValidator


class StaffMessageForm(FlaskForm):
    body = TextAreaField(
        "Write to the tipster",
        validators=[TextValidator(max_length=5_000, multiline=True)],
        description="They read it when they come back with their receipt. "
        "Never ask who they are: they may stay anonymous.",
    )


class RevealForm(FlaskForm):
    pass
