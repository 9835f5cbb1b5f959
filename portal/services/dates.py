"""The one range of dates and times every form and API field accepts.

Python's datetime reaches from year 1 to 9999, but arithmetic near those ends
overflows (a day added to 9999-12-31, a time-zone shift of 0001-01-01), and no
crime, footage or audit search of this system is from before 1900 or after 2100. A
date outside that range is a typo or a probe; it is refused with a message naming
the field rather than carried on until something overflows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from portal.services.errors import ValidationFailed

MIN_YEAR = 1900
MAX_YEAR = 2100


def check_date_range(
    value: date | datetime | None, *, field: str, label: str | None = None
) -> None:
    """Raise :class:`ValidationFailed` naming ``field`` unless ``value`` (a date or a
    datetime, or ``None``) is within years MIN_YEAR..MAX_YEAR."""
    if value is None:
        return
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        label = label or field.replace("_", " ").capitalize()
        raise ValidationFailed(
            f"{label} must be between the years {MIN_YEAR} and {MAX_YEAR}.", field=field
        )


class DateRangeValidator:
    """WTForms validator for date and datetime fields: the same range."""

    def __call__(self, form: Any, field: Any) -> None:
        from wtforms.validators import StopValidation

        try:
            check_date_range(
                field.data,
                field=field.name,
                label=str(field.label.text) if getattr(field, "label", None) else None,
            )
        except ValidationFailed as exc:
            raise StopValidation(exc.message) from None
