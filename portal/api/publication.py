"""Publishing an appeal on the public site and taking it down: the same services,
permission and case rules as the staff pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, g, url_for

from portal.api import bp
from portal.api.authz import api_requires
from portal.api.docs import json_body, problems
from portal.api.schemas import PublicationSchema, WithdrawalSchema
from portal.services.appeals import get_appeal_for, publish_appeal, withdraw_appeal
from portal.services.authz import Permission

Body = Callable[[], dict[str, Any]]


@bp.route("/appeals/<id:appeal_id>/publication", methods=["POST"])
@bp.doc(operationId="publishAppeal")
@api_requires(Permission.APPEAL_PUBLISH)
@bp.response(
    201,
    PublicationSchema,
    description="On the public site.",
    headers={"Location": {"schema": {"type": "string"}}},
)
@problems(404, 409)
def post_publication(appeal_id: str):
    """Publish the appeal (every version it shows must still be approved as stored)."""
    appeal = get_appeal_for(g.api_user, appeal_id)
    publish_appeal(appeal, g.api_user)
    page = url_for("public.appeal_page", appeal_id=appeal.public_id)
    body = {
        "appeal": appeal.public_id,
        "status": appeal.status,
        "published_at": appeal.published_at,
        "url": page,
    }
    return body, 201, {"Location": page}


@bp.route("/appeals/<id:appeal_id>/publication", methods=["DELETE"])
@bp.doc(operationId="withdrawAppeal")
@api_requires(Permission.APPEAL_PUBLISH)
@json_body(WithdrawalSchema)
@bp.response(204, description="Taken off the public site.")
@problems(400, 404, 409)
def delete_publication(read: Body, appeal_id: str):
    """Take the appeal off the public site, saying why."""
    appeal = get_appeal_for(g.api_user, appeal_id)
    withdraw_appeal(appeal, g.api_user, read()["reason"])
    return Response(status=204)
