"""Every text field of every staff form goes through the one validation of text, and
every date field through the one range of dates."""

from __future__ import annotations

import inspect

import pytest
from flask_wtf import FlaskForm
from wtforms import DateField, DateTimeLocalField, PasswordField, StringField, TextAreaField
from wtforms.fields.core import UnboundField

from portal.services.dates import DateRangeValidator
from portal.services.text import TextValidator
from portal.staff import account_forms, forms

FORMS = [
    cls
    for module in (forms, account_forms)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if issubclass(cls, FlaskForm) and cls is not FlaskForm and cls.__module__ == module.__name__
]


def _fields(form: type[FlaskForm], kind: type) -> list[tuple[str, UnboundField]]:
    return [
        (name, value)
        for name, value in inspect.getmembers(form)
        if isinstance(value, UnboundField) and issubclass(value.field_class, kind)
    ]


def test_staff_forms_are_all_found() -> None:
    names = {cls.__name__ for cls in FORMS}
    assert {"LoginForm", "CaseForm", "CaseFilterForm", "TokenForm", "AuditSearchForm"} <= names


@pytest.mark.parametrize("form", FORMS, ids=lambda cls: cls.__name__)
def test_staff_form_text_fields_all_carry_the_text_validator(form: type[FlaskForm]) -> None:
    # StringField covers TextAreaField, EmailField, PasswordField, HiddenField.
    for name, field in _fields(form, StringField):
        validators = field.kwargs.get("validators") or []
        text = [v for v in validators if isinstance(v, TextValidator)]
        assert len(text) == 1, f"{form.__name__}.{name} has no TextValidator"
        # Passwords are checked but kept as typed; nothing else is a secret.
        assert text[0].secret is issubclass(field.field_class, PasswordField), name
        # Line breaks only where the field is a text area.
        assert text[0].multiline is issubclass(field.field_class, TextAreaField), name
        assert 0 < text[0].max_length <= 20000, name


@pytest.mark.parametrize("form", FORMS, ids=lambda cls: cls.__name__)
def test_staff_form_date_fields_all_carry_the_date_range(form: type[FlaskForm]) -> None:
    for name, field in _fields(form, DateField) + _fields(form, DateTimeLocalField):
        validators = field.kwargs.get("validators") or []
        assert any(isinstance(v, DateRangeValidator) for v in validators), name
