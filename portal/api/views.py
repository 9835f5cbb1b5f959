"""The caller's own account, and the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, g, jsonify
from flask_smorest import current_api

from portal.api import API_PREFIX, bp
from portal.api.schemas import PROBLEM_JSON, MeSchema


def _problem_ref(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def build_openapi() -> dict[str, Any]:
    """flask-smorest's document of the operations, with what every operation shares
    added from one place: the bearer token (401), the rate limits (429), and the
    permission each view declares through ``api_requires`` (``x-permission``, 403)."""
    document = current_api.spec.to_dict()
    # Paths are relative to the server URL, /api/v1, as clients join them.
    document["paths"] = {
        path.removeprefix(API_PREFIX): operations for path, operations in document["paths"].items()
    }
    permissions = {}
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            view = current_app.view_functions[rule.endpoint]
            permission = getattr(view, "required_permission", None)
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix(API_PREFIX))
            for method in rule.methods or ():
                automatic = (
                    method == "OPTIONS" and getattr(rule, "provide_automatic_options", False)
                ) or (method == "HEAD" and "GET" in (rule.methods or ()))
                if not automatic:
                    permissions[(path, method.lower())] = permission
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation.setdefault("responses", {})
            if operation.get("security") != []:
                responses.setdefault("401", _problem_ref("No valid token."))
                # Rate limits (portal/http/ratelimit.py): per token, and per client
                # after repeated failures to authenticate. Retry-After says when.
                responses.setdefault(
                    "429", _problem_ref("Too many requests; see the Retry-After header.")
                )
            permission = permissions.get((path, method))
            if permission is not None:
                operation["x-permission"] = permission.value
                responses.setdefault("403", _problem_ref("The token may not do this."))
    return document


@bp.route("/openapi.json")
@bp.doc(operationId="getOpenApi", security=[])
@bp.response(200, description="This document (OpenAPI 3.1).")
def openapi():
    """This document."""
    return jsonify(build_openapi())


@bp.route("/me")
@bp.doc(operationId="getMe")
@bp.response(200, MeSchema, description="The account the token belongs to.")
def me():
    """The caller's account."""
    user = g.api_user
    return {
        "id": user.public_id,
        "email": user.email,
        "display_name": user.display_name,
        "roles": sorted(r.value for r in user.roles),
        "agency": user.agency.slug,
    }
