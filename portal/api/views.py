from __future__ import annotations

from flask import g, jsonify

from portal.api import bp
from portal.api.openapi import build_openapi


@bp.route("/openapi.json")
def openapi():
    return jsonify(build_openapi())


@bp.route("/me")
def me():
    user = g.api_user
    return jsonify(
        id=user.public_id,
        email=user.email,
        display_name=user.display_name,
        roles=sorted(r.value for r in user.roles),
        agency=user.agency.slug,
    )
