"""The base of every form of the portal.

Flask-WTF translates WTForms' own messages ("This field is required.", "Not a valid
choice.") by loading WTForms' catalogue from disk for each request that builds a
form, then parsing it and compiling its plural rule: on the tip form that was more
of a tip's time than its database insert. The catalogues do not change while the
process runs, so each language's is loaded once and kept (one per language the
portal offers, a few kilobytes each).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from babel import support
from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms.i18n import messages_path


@cache
def _wtforms_translations(locale: str) -> support.NullTranslations:
    # Loaded as Flask-WTF loads it (babel.support: a missing language falls back
    # to WTForms' English messages), once per language.
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class Form(FlaskForm):
    """A Flask-WTF form (CSRF from the session) with WTForms' messages in the
    request's language, their catalogue kept per language."""

    class Meta:
        def get_translations(self, form: Any) -> support.NullTranslations:
            return _wtforms_translations(str(get_locale() or "en"))
