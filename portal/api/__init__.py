"""The JSON API under /api/v1/. Every operation needs a bearer token, except the
OpenAPI document. Session cookies are ignored here, which is why CSRF does not apply.

Each operation declares its body, query and responses once, with the schemas of
:mod:`portal.api.schemas`; flask-smorest validates requests with them and builds the
OpenAPI document from them. Errors are RFC 9457 problem documents.
"""

from __future__ import annotations

import hashlib
from copy import deepcopy
from typing import Any, NoReturn

import flask_smorest
from apispec import BasePlugin
from flask import Flask, Response, g, request
from marshmallow import ValidationError
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import BaseConverter

from portal.api.schemas import PROBLEM_JSON, Moment, ProblemSchema
from portal.extensions import db
from portal.http import ratelimit
from portal.http.edge import problem, staff_client_addr
from portal.models import Outcome
from portal.services.audit import ANONYMOUS_ACTOR, record_event
from portal.services.errors import AuthenticationFailed, DomainError, ValidationFailed
from portal.services.text import first_refused_char
from portal.services.users import authenticate_token

API_PREFIX = "/api/v1"


class BadRequest(DomainError):
    """A body that is not JSON at all, or not as JSON: 400, before any field is read."""

    status = 400


class PublicId(BaseConverter):
    """A URL segment that can be a public id (``secrets.token_urlsafe``) or a rendition
    name. Anything else, a NUL or a lone surrogate say, matches no route: it never
    reaches a query."""

    regex = r"[A-Za-z0-9_.\-]{1,64}"


def _printable(name: str) -> str:
    """A client's key, safe to echo in ``field`` (a lone surrogate escaped)."""
    return ascii(name)[1:-1] if first_refused_char(name) else name


def _first_error(messages: Any, path: tuple[str, ...] = ()) -> tuple[str, str]:
    """(field path, message) of the first error in marshmallow's nested messages."""
    if isinstance(messages, dict) and messages:
        key, value = next(iter(messages.items()))
        key = str(key)
        if key == "_schema":
            return _first_error(value, path)
        return _first_error(value, (*path, key))
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], path)
    return ".".join(_printable(p) for p in path) or "body", str(messages)


class ApiParser(FlaskParser):
    """webargs' parser, answering in problem documents: 400 for a body that is not a
    JSON document, 422 naming the first invalid field."""

    def _raw_load_json(self, req: Any) -> Any:
        if not req.get_data(cache=True):
            return core.missing
        if not is_json_request(req):
            raise BadRequest(
                "Send the body as JSON (Content-Type: application/json).", field="body"
            )
        try:
            return core.parse_json(req.get_data(cache=True))
        except RecursionError:
            # json.loads recurses once per level: "[[[[..." 200,000 deep would exhaust
            # the stack. Refused as too deep, never a 500.
            raise BadRequest("The JSON body is nested too deeply.", field="body") from None

    def _handle_invalid_json_error(
        self, error: Any, req: Any, *args: Any, **kwargs: Any
    ) -> NoReturn:
        raise BadRequest("The body is not valid JSON.", field="body")

    def handle_error(
        self, error: ValidationError, req: Any, schema: Any, **kwargs: Any
    ) -> NoReturn:
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1:
            # webargs puts the messages under the location: {"json": {...}}
            location, inner = next(iter(messages.items()))
            if location in ("json", "query", "files", "form"):
                messages = inner
        field, message = _first_error(messages)
        if message == "Invalid input type.":  # marshmallow's words for "not an object"
            message = "The body must be a JSON object." if field == "body" else "Must be an object."
        raise ValidationFailed(message, field=field)


class SchemaExtras(BasePlugin):
    """apispec plugin: a schema's ``OPENAPI_EXTRA`` (JSON Schema keywords that
    marshmallow fields cannot express) goes into its component."""

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> Any:
        schema = kwargs.get("schema")
        return deepcopy(getattr(schema, "OPENAPI_EXTRA", None))


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ApiParser()


class Api(flask_smorest.Api):
    """flask-smorest on the portal's own error handling: errors are problem documents
    (portal/http/errors.py), so its JSON error handler is not registered, and every
    documented error response is application/problem+json."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        pass

    def _register_responses(self) -> None:
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            self.DEFAULT_RESPONSE_CONTENT_TYPE = "application/json"


bp = Blueprint("api", __name__)

#: The OpenAPI document, and the public operations (portal/api/public.py): no token.
ANONYMOUS_ENDPOINTS = frozenset({"api.openapi"})
FLOOD_DETAIL = "Too many failed attempts to authenticate."


def _unauthorized() -> Response:
    response = problem(
        401, "A valid API token is required.", "Send 'Authorization: Bearer <token>'."
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="tattletale"'
    return response


def _audit_refusal(reason: str) -> None:
    record_event(
        "api.auth",
        agency_id=None,  # no token, no agency: the operators' to read
        actor_label=ANONYMOUS_ACTOR,
        object_type="route",
        object_id=request.path,
        outcome=Outcome.DENIED,
        client_addr=staff_client_addr(),
        details={"reason": reason},
    )
    db.session.commit()


def init_api(app: Flask) -> Api:
    """Register the blueprint through flask-smorest, which collects the operations'
    declarations into the OpenAPI document."""
    app.url_map.converters["id"] = PublicId
    app.config.update(
        API_TITLE="Tattletale API",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        # The document is served by api.openapi (behind the blueprint's own rules),
        # not by flask-smorest's documentation blueprint.
        OPENAPI_URL_PREFIX=None,
    )
    api = Api(
        app,
        spec_kwargs={
            "servers": [{"url": API_PREFIX}],
            "extra_plugins": [SchemaExtras()],
            "security": [{"bearer": []}],
        },
    )
    api.register_field(Moment, "string", "date-time")
    api.register_converter(
        PublicId, lambda converter: {"type": "string", "pattern": PublicId.regex}
    )
    api.spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `flask --app wsgi users token EMAIL`.",
        },
    )
    api.register_blueprint(bp, url_prefix=API_PREFIX)
    # flask-smorest's 'flask openapi' commands print the raw spec, without what
    # views.build_openapi adds (relative paths, permissions): one document only.
    app.cli.commands.pop("openapi", None)
    return api


@bp.before_request
def authenticate_bearer():
    g.api_user = None
    if request.endpoint in ANONYMOUS_ENDPOINTS or request.endpoint in public.PUBLIC_ENDPOINTS:
        return None
    # A client that keeps failing is refused before its token is even looked up, and
    # its refusals leave one audit entry a minute, not one each (see ratelimit).
    if (wait := ratelimit.auth_failures_spent()) is not None:
        return ratelimit.refuse_flood(wait, _audit_refusal, FLOOD_DETAIL)
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    try:
        if scheme.lower() != "bearer" or not secret:
            raise AuthenticationFailed("missing_token")
        g.api_user = authenticate_token(secret)
        g.api_user_id = g.api_user.public_id
        db.session.commit()  # last_used_at
    except AuthenticationFailed as exc:
        if (wait := ratelimit.count_auth_failure()) is not None:
            return ratelimit.refuse_flood(wait, _audit_refusal, FLOOD_DETAIL)
        _audit_refusal(exc.reason)
        return _unauthorized()
    token_key = hashlib.sha256(secret.encode()).hexdigest()[:32]
    if (wait := ratelimit.count_token_request(token_key)) is not None:
        return ratelimit.too_many_requests(wait, "Too many requests with this token.")
    return None


from portal.api import (  # noqa: E402,F401
    account_views,
    case_life,
    footage,
    outcomes,
    posts,
    public,
    publication,
    tips,
    views,
)
