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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Request, current_app
from werkzeug.datastructures import MultiDict

View = TypeVar("View", bound=Callable[..., Any])

_ATTRIBUTE = "streamed_body_methods"


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
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:  # set by the view: it knows better
            return self._max_content_length
        if self.streams_body:
            limit: int = current_app.config["TATTLETALE"].max_upload_bytes
            return limit
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def _load_form_data(self) -> None:
        if "form" not in self.__dict__ and self.streams_body:
            # Neither the stream nor its limit is touched: the view reads the body.
            self.__dict__["form"] = MultiDict()
            self.__dict__["files"] = MultiDict()
            return
        super()._load_form_data()
