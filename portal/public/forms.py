from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SearchField

from portal.services.text import TextValidator


class SearchForm(FlaskForm):
    """Search by place or offence. A GET form: no CSRF token, no session."""

    class Meta:
        csrf = False

    q = SearchField("Place or offence", validators=[TextValidator(max_length=100)])
