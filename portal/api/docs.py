"""Declaration helpers for the API's operations: problem responses, binary bodies,
tus headers, and a JSON body read only once the view has found its object."""

from __future__ import annotations

import http
from collections.abc import Callable
from copy import deepcopy
from functools import wraps
from typing import Any

from flask_smorest.utils import deepupdate

from portal.api import bp
from portal.api.schemas import PROBLEM_JSON, ProblemSchema

DESCRIPTIONS = {
    400: "The body is not a JSON document, or not sent as one.",
    401: "No valid token.",
    403: "The token may not do this.",
    404: "No such object, or not visible to the caller.",
    409: "The object is not in a state that allows this.",
    410: "The upload was cancelled or has expired.",
    412: "Tus-Resumable is not 1.0.0.",
    413: "Larger than the limit.",
    415: "The body's Content-Type is not the one this operation takes.",
    416: "The range is outside the file.",
    422: "A field is invalid; `field` names it.",
    460: "Upload-Checksum does not match the bytes sent.",
}

View = Callable[..., Any]


def problems(*statuses: int) -> Callable[[View], View]:
    """Document these error answers as problem documents."""

    def decorator(func: View) -> View:
        for status in statuses:
            try:
                default = http.HTTPStatus(status).phrase
            except ValueError:
                default = "Error"
            func = bp.alt_response(
                status,
                schema=ProblemSchema,
                content_type=PROBLEM_JSON,
                description=DESCRIPTIONS.get(status, default),
            )(func)
        return func

    return decorator


def binary(content_type: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {content_type: {"schema": {"type": "string", "format": "binary"}}},
    }


def tus_headers() -> list[dict[str, Any]]:
    return [
        {
            "name": "Tus-Resumable",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "const": "1.0.0"},
        }
    ]


def json_body(schema: Any) -> Callable[[View], View]:
    """Declare the operation's JSON body like ``bp.arguments``, but hand the view a
    function that reads it: the view first finds its object, so another agency's id
    answers 404 whatever the body, and only then validates the body (422)."""

    def decorator(func: View) -> View:
        read = bp.arguments(schema)(lambda parsed: parsed)

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(read, *args, **kwargs)

        wrapper._apidoc = deepupdate(  # type: ignore[attr-defined]
            deepcopy(getattr(func, "_apidoc", {})), deepcopy(read._apidoc)
        )
        return wrapper

    return decorator
