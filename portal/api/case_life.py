"""API operations on a case's life: solve it, close or reopen it, read its history.
The same service as the staff page (portal/services/case_life.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g
from sqlalchemy import select

from portal.api import bp
from portal.api.authz import api_requires
from portal.api.docs import json_body, problems
from portal.api.schemas import CaseLifeSchema, CaseSolveSchema, CaseStatusChangeSchema
from portal.extensions import db
from portal.models import Case, Tip
from portal.services.authz import Permission
from portal.services.case_life import Solution, change_case_status, solve_case, status_history
from portal.services.cases import get_case_for

Body = Callable[[], dict[str, Any]]


def _life_json(case: Case) -> dict[str, Any]:
    history = status_history(case)
    tip_ids = {s.tip_id for change in history for s in change.solving_tips}
    public: dict[int, str] = {}
    if tip_ids:
        rows = db.session.execute(select(Tip.id, Tip.public_id).where(Tip.id.in_(tip_ids)))
        public = {tip_id: public_id for tip_id, public_id in rows}
    return {
        "id": case.public_id,
        "status": case.status,
        "history": [
            {
                "from_status": change.from_status,
                "to_status": change.to_status,
                "reason": change.reason,
                "changed_by": change.changed_by.public_id if change.changed_by else None,
                "changed_at": change.changed_at,
                "tips_led": change.tips_led,
                "tips": sorted(public[s.tip_id] for s in change.solving_tips),
            }
            for change in history
        ],
    }


@bp.route("/cases/<id:case_id>/history", methods=["GET"])
@bp.doc(operationId="getCaseHistory")
@api_requires(Permission.CASE_VIEW)
@bp.response(200, CaseLifeSchema, description="The case's status and its changes, oldest first.")
@problems(404)
def get_case_history(case_id: str):
    """A case's status history."""
    return _life_json(get_case_for(g.api_user, case_id))


@bp.route("/cases/<id:case_id>/solve", methods=["POST"])
@bp.doc(operationId="solveCase")
@api_requires(Permission.CASE_EDIT)
@json_body(CaseSolveSchema)
@bp.response(200, CaseLifeSchema, description="Solved; the public appeal says so.")
@problems(400, 404, 409, 422)
def post_case_solve(read: Body, case_id: str):
    """Solve a case, saying whether tips led to it and which.

    409 when the case cannot be solved from its status (it is solved or closed:
    reopen it first) or changed since `seen_status`; 422 when a tip is not one of
    the case's."""
    case = get_case_for(g.api_user, case_id, Permission.CASE_EDIT)
    body = read()
    solve_case(
        case,
        g.api_user,
        reason=body["reason"],
        solution=Solution(tips_led=body["tips_led"], tip_ids=tuple(body["tips"])),
        seen_status=body.get("seen_status"),
    )
    db.session.commit()
    return _life_json(case)


@bp.route("/cases/<id:case_id>/status", methods=["POST"])
@bp.doc(operationId="changeCaseStatus")
@api_requires(Permission.CASE_EDIT)
@json_body(CaseStatusChangeSchema)
@bp.response(200, CaseLifeSchema)
@problems(400, 404, 409, 422)
def post_case_status(read: Body, case_id: str):
    """Close or reopen a case (409 when its status does not allow it)."""
    case = get_case_for(g.api_user, case_id, Permission.CASE_EDIT)
    body = read()
    change_case_status(
        case,
        g.api_user,
        body["status"],
        reason=body["reason"],
        seen_status=body.get("seen_status"),
    )
    db.session.commit()
    return _life_json(case)
