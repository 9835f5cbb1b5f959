"""Error pages and API problem documents. Neither ever shows a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.extensions import db
from portal.http.edge import (
    Audience,
    is_api_request,
    problem,
    request_audience,
    staff_client_addr,
)
from portal.models import Outcome
from portal.services.audit import ANONYMOUS_ACTOR, record_event
from portal.services.errors import DomainError

log = logging.getLogger(__name__)

# In the visitor's language on public pages and the public API (portal/i18n.py);
# staff always read English.
MESSAGES = {
    400: _l("The request could not be understood."),
    401: _l("Please sign in."),
    403: _l("You do not have permission to do that."),
    404: _l("There is nothing at this address."),
    405: _l("That method is not allowed here."),
    413: _l("That is larger than this site accepts."),
    422: _l("Some of what was sent is not valid."),
    429: _l("Too many requests. Please wait a moment and try again."),
    500: _l("Something went wrong on our side. It has been logged; please try again."),
}


def render_error(status: int, title: str | None = None, detail: str = ""):
    title = str(title or MESSAGES.get(status) or _("Error"))
    detail = str(detail)
    if is_api_request():
        return problem(status, title, detail)
    return render_template("error.html", status=status, title=title, detail=detail), status


# Headers of an HTTPException that belong to the answer whatever page shows it: Allow
# on a 405 (RFC 9110 15.5.6: a 405 MUST carry it), WWW-Authenticate on a 401,
# Retry-After, Content-Range on a 416. Content-Type and Content-Length describe
# Werkzeug's own body, which ours replaces.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_undecodable_query():
        # Werkzeug decodes the query string as strict UTF-8 when a view first reads
        # request.args, so raw bytes that are not UTF-8 (a lone surrogate sent as
        # ED A0 80, say) would fail inside the view as a 500. Refused here, once.
        try:
            request.query_string.decode("utf-8")
        except UnicodeDecodeError:
            return render_error(
                400,
                _("The address of this request holds characters that are not valid text."),
                _("Its query string is not valid UTF-8."),
            )
        return None

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        # Staff forms: audited. Public forms: nothing that identifies the sender.
        if request_audience() is Audience.STAFF:
            user = current_user if current_user.is_authenticated else None
            record_event(
                "csrf.rejected",
                agency_id=user.agency_id if user else None,
                actor=user,
                actor_label=ANONYMOUS_ACTOR,
                object_type="route",
                object_id=request.path,
                outcome=Outcome.DENIED,
                client_addr=staff_client_addr(),
                details={"reason": error.description},
            )
            db.session.commit()
        return render_error(
            400,
            _("This form has expired or did not come from this site."),
            _("Go back, reload the page and send it again."),
        )

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        if is_api_request():
            extra = {"field": error.field} if error.field else {}
            return problem(error.status, error.message, **extra)
        return render_error(error.status, error.message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        if status >= 500:
            return internal_error(error)
        response = current_app.make_response(render_error(status))
        for name, value in error.get_headers():
            if name.lower() not in _BODY_HEADERS:
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        log.error(
            "unhandled error",
            exc_info=error,
            extra={"request_id": g.get("request_id"), "path": request.path},
        )
        db.session.rollback()
        return render_error(500, detail=_("Reference: %(id)s", id=g.get("request_id", "")))
