"""portal/services/text.py: the one validation of text, including secrets taken as typed,
and dates kept within 1900..2100 (portal/services/dates.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from portal.services.dates import check_date_range
from portal.services.errors import ValidationFailed
from portal.services.text import clean_text, replace_refused


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("pass\x00word", "Password must not contain a NUL character."),
        ("pass\ud800word", "Password must not contain an unpaired surrogate (U+D800)."),
        ("pass\nword", "Password must not contain a line break."),
    ],
)
def test_text_secret_refuses_what_no_password_holds(value: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_text(value, field="password", max_length=256, secret=True)
    assert caught.value.message == message


def test_text_secret_is_returned_exactly_as_typed() -> None:
    # Leading and trailing spaces, NFD, a zero-width joiner (Cf), a private-use
    # character: all stay, so the hash made from them still matches.
    value = "  Cafe\u0301 \U0001f468\u200d\U0001f469 \ue000  "
    assert clean_text(value, field="password", max_length=256, secret=True) == value


def test_text_secret_keeps_its_length_limit() -> None:
    with pytest.raises(ValidationFailed, match="at most 256 characters"):
        clean_text("x" * 257, field="password", max_length=256, secret=True)


def test_text_replace_refused_keeps_what_is_allowed() -> None:
    assert replace_refused("24\r\n0001\ud800\u202e", "_") == "24__0001__"
    assert replace_refused("Café 盗窃 👀 شارع") == "Café 盗窃 👀 شارع"
    assert replace_refused("a\nb\tc\x00", multiline=True) == "a\nb\tc\ufffd"


@pytest.mark.parametrize(
    "value",
    [date(1899, 12, 31), datetime(2101, 1, 1, tzinfo=UTC), date(1, 1, 1), date(9999, 12, 31)],
)
def test_dates_outside_1900_to_2100_are_refused(value: date) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_date_range(value, field="since", label="From")
    assert caught.value.field == "since"
    assert caught.value.message == "From must be between the years 1900 and 2100."


def test_dates_at_the_ends_of_the_range_are_accepted() -> None:
    check_date_range(date(1900, 1, 1), field="since")
    check_date_range(datetime(2100, 12, 31, 23, 59, tzinfo=UTC), field="since")
    check_date_range(None, field="since")
