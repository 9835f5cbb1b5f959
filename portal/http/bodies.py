"""How large a request body may be, decided per endpoint before anything reads it.

Werkzeug fixes a request's body limit the first time anything touches
``request.stream`` or ``request.form``, and the first thing to do so is the CSRF check
(a ``before_request`` hook reading ``request.form`` for its token). A limit set later,
in the view, is too late: a staff tus PATCH larger than the app's form limit was
refused with 413 before the view could raise it. So the limit is part of the routing:
a view that streams its body says so (:func:`streams_body`), and the request class
answers that view's limit from the moment the URL is matched.

A streamed body is never parsed as a form either: ``request.form`` of such a request
is empty without reading a byte, so the CSRF check finds its token in the header
(``X-CSRFToken``) or nowhere, and a multipart body sent to an upload endpoint is not
spooled to disk by the form parser.

A form that carries files (a tip with photos, :func:`accepts_files`) is parsed, but
its limit is its own (every file at its largest, plus the text), and each file part
goes where the view's ``open_part`` says from its first byte: to the staging disk,
cut off at the file limit, never whole in memory and never into ``/tmp``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, TypeVar, cast

from flask import Request, current_app
from werkzeug.datastructures import MultiDict

View = TypeVar("View", bound=Callable[..., Any])

_ATTRIBUTE = "streamed_body_methods"
_FILES_ATTRIBUTE = "file_intake"


@dataclass(frozen=True)
class FileIntake:
    # The body limit from the settings.
    body_limit: Callable[[Any], int]
    # Where the n-th file part of the request goes (0, 1, ...).
    open_part: Callable[[int], io.RawIOBase]


def accepts_files(
    body_limit: Callable[[Any], int], open_part: Callable[[int], io.RawIOBase]
) -> Callable[[View], View]:
    """Mark a form view whose POST may carry files: its body limit is ``body_limit``
    of the settings, and its file parts are written by ``open_part``."""
    intake = FileIntake(body_limit, open_part)

    def decorator(view: View) -> View:
        setattr(view, _FILES_ATTRIBUTE, intake)
        return view

    return decorator


def streams_body(methods: Iterable[str]) -> Callable[[View], View]:
    """Mark a view whose ``methods`` read a large body as a stream (tus PATCH): the
    body limit is the largest upload, not the form limit, and the body is never a form.
    """
    marked = frozenset(m.upper() for m in methods)

    def decorator(view: View) -> View:
        setattr(view, _ATTRIBUTE, marked)
        return view

    return decorator


class PortalRequest(Request):
    @property
    def streams_body(self) -> bool:
        """Whether the matched view reads this request's body as a stream."""
        if self.url_rule is None or self.url_rule.endpoint is None:
            return False
        view = current_app.view_functions.get(self.url_rule.endpoint)
        return self.method in getattr(view, _ATTRIBUTE, ())

    @property
    def file_intake(self) -> FileIntake | None:
        """How the matched view takes the files of a POST, if it takes any."""
        if self.method != "POST" or self.url_rule is None or self.url_rule.endpoint is None:
            return None
        view = current_app.view_functions.get(self.url_rule.endpoint)
        intake: FileIntake | None = getattr(view, _FILES_ATTRIBUTE, None)
        return intake

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:  # set by the view: it knows better
            return self._max_content_length
        if self.streams_body:
            limit: int = current_app.config["TATTLETALE"].max_upload_bytes
            return limit
        if (intake := self.file_intake) is not None:
            return intake.body_limit(current_app.config["TATTLETALE"])
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        intake = self.file_intake
        if intake is None:
            return super()._get_file_stream(
                total_content_length, content_type, filename, content_length
            )
        parts: list[io.RawIOBase] = self.__dict__.setdefault("file_parts", [])
        part = intake.open_part(len(parts))
        parts.append(part)
        return cast(IO[bytes], part)

    def close(self) -> None:
        # Parts of a body that failed mid-way (too large, cut off) are in no
        # ``files`` dict that Werkzeug would close: close every part we opened.
        try:
            super().close()
        finally:
            for part in self.__dict__.get("file_parts", ()):
                part.close()

    def _load_form_data(self) -> None:
        if "form" not in self.__dict__ and self.streams_body:
            # Neither the stream nor its limit is touched: the view reads the body.
            self.__dict__["form"] = MultiDict()
            self.__dict__["files"] = MultiDict()
            return
        super()._load_form_data()
