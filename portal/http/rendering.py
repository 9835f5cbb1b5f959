"""What every HTML page shares when it is rendered."""

from __future__ import annotations

from typing import Any

from flask import Flask


def printable(value: Any) -> Any:
    """Jinja ``finalize``: every ``{{ ... }}`` output passes through here.

    Text stored before the text rules (portal/services/text.py), such as a caption
    line of an old edit plan, may hold a lone surrogate. UTF-8 cannot encode it, so
    the whole page would fail as a 500 when the response is written; it is shown as
    U+FFFD instead. Markup stays Markup, so nothing is escaped twice.
    """
    if not isinstance(value, str) or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        fixed = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
        return type(value)(fixed)
    return value


def init_app(app: Flask) -> None:
    app.jinja_env.finalize = printable
