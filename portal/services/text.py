"""The one validation of text that every form field and API field goes through.

Text typed by staff ends up in HTTP headers (a case number in a download's file
name), in ffmpeg's drawtext filter (a caption), in the audit log, in e-mails and on
the public site. What it may hold is decided here, once:

* never a lone surrogate (``"\\ud800"``): it cannot be encoded as UTF-8, so it breaks
  every page, log line and file that shows it;
* never a control character (Cc), never a format character (Cf: the bidirectional
  overrides such as U+202E that make ``exe.mp4`` read as ``mp4.exe``, zero-width
  joiners, byte-order marks), never a private-use or unassigned code point;
* line breaks only where the field is multi-line, and then only ``\\n`` (``\\r\\n``
  and lone ``\\r`` are normalised to it), with ``\\t`` allowed;
* normalised to NFC and stripped of leading and trailing white space;
* at most ``max_length`` characters after that.

WTForms fields use :class:`TextValidator`; API schemas call :func:`clean_text`.

A secret (a password) is the exception: it is compared with what was hashed when it
was set, so it is taken exactly as typed (``secret=True``): never stripped or
normalised, either of which would turn the right password of whoever set it with a
trailing space or a decomposed accent into a wrong one. Only what no password can
hold is refused: a lone surrogate (it cannot be encoded, so cannot be hashed) and
control characters (NUL and the like, which no keyboard types into a password box).
Format, private-use and unassigned characters stay allowed there: a password
manager or a phone's emoji keyboard (zero-width joiners are Cf) may have made it.

Text stored before these rules (or arriving from elsewhere) is made safe to show with
:func:`replace_refused`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.services.errors import ValidationFailed

# Categories refused everywhere: control, format, surrogate, private use, unassigned,
# and the Unicode line and paragraph separators (a line break the field did not ask
# for, which header and log parsers treat differently).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
MULTILINE_ALLOWED = frozenset({"\n", "\t"})
SECRET_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})

# The messages are translated for the public site (portal/i18n.py); staff read English.
_NAMES = {
    "\x00": _l("a NUL character"),
    "\r": _l("a carriage return"),
    "\n": _l("a line break"),
}


def describe_char(ch: str) -> str:
    """A human name for a refused character, for error messages."""
    if ch in _NAMES:
        return str(_NAMES[ch])
    code = f"U+{ord(ch):04X}"
    if unicodedata.category(ch) == "Cs":
        return _("an unpaired surrogate (%(code)s)", code=code)
    name = unicodedata.name(ch, "")
    return f"{code} {name}".strip() if name else code


def first_refused_char(value: str, *, multiline: bool = False, secret: bool = False) -> str | None:
    refused = SECRET_REFUSED_CATEGORIES if secret else REFUSED_CATEGORIES
    for ch in value:
        if multiline and ch in MULTILINE_ALLOWED:
            continue
        if unicodedata.category(ch) in refused:
            return ch
    return None


def replace_refused(value: str, replacement: str = "\ufffd", *, multiline: bool = False) -> str:
    """``value`` with every character :func:`clean_text` would refuse replaced, for
    text that is already stored (rows older than these rules) and must still be shown
    or put in a header without failing."""
    return "".join(
        replacement
        if not (multiline and ch in MULTILINE_ALLOWED)
        and unicodedata.category(ch) in REFUSED_CATEGORIES
        else ch
        for ch in value
    )


def clean_text(
    value: Any,
    *,
    field: str,
    max_length: int,
    multiline: bool = False,
    required: bool = False,
    label: str | None = None,
    secret: bool = False,
) -> str:
    """Validate and normalise one text field; raise :class:`ValidationFailed` naming
    the field. ``None`` becomes ``""`` (then refused if ``required``). With ``secret``
    the text is checked but returned exactly as given (see the module docstring)."""
    label = label or field.replace("_", " ").capitalize()
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(_("%(label)s must be text.", label=label), field=field)
    if multiline and not secret:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    refused = first_refused_char(value, multiline=multiline, secret=secret)
    if refused is not None:
        raise ValidationFailed(
            _("%(label)s must not contain %(char)s.", label=label, char=describe_char(refused)),
            field=field,
        )
    if not secret:
        value = unicodedata.normalize("NFC", value).strip()
    if required and not value:
        raise ValidationFailed(_("%(label)s is required.", label=label), field=field)
    if len(value) > max_length:
        raise ValidationFailed(
            _(
                "%(label)s must be at most %(limit)s characters (it has %(length)s).",
                label=label,
                limit=max_length,
                length=len(value),
            ),
            field=field,
        )
    return value


class TextValidator:
    """WTForms validator: the same rules for form fields. It also replaces the
    field's data with the normalised text, so the view passes on what was checked."""

    def __init__(self, *, max_length: int, multiline: bool = False, secret: bool = False) -> None:
        self.max_length = max_length
        self.multiline = multiline
        self.secret = secret

    def __call__(self, form: Any, field: Any) -> None:
        from wtforms.validators import StopValidation

        try:
            field.data = clean_text(
                field.data,
                field=field.name,
                max_length=self.max_length,
                multiline=self.multiline,
                secret=self.secret,
                label=str(field.label.text) if getattr(field, "label", None) else None,
            )
        except ValidationFailed as exc:
            raise StopValidation(exc.message) from None
