"""GET /outcomes: the agency's funnel per appeal and per weekly post, and cases solved
per month, the same numbers as the staff page (portal/services/outcomes.py)."""

from __future__ import annotations

from typing import Any

from flask import g

from portal.api import bp
from portal.api.authz import api_requires
from portal.api.docs import problems
from portal.api.schemas import OutcomesQuerySchema, OutcomesSchema
from portal.services.authz import Permission
from portal.services.outcomes import agency_outcomes, post_outcomes, quarter


@bp.route("/outcomes", methods=["GET"])
@bp.doc(operationId="getOutcomes")
@api_requires(Permission.OUTCOME_VIEW)
@bp.arguments(OutcomesQuerySchema, location="query")
@bp.response(200, OutcomesSchema)
@problems(422)
def get_outcomes(query: dict[str, Any]):
    """Per appeal: page views, tips by channel, actionable leads, solved, and the
    hours from publishing to the first tip and the first lead; per weekly post, the
    same for its appeals in the week after it first went out. Counts only: nothing
    identifies a tipster."""
    result = agency_outcomes(g.api_user.agency_id, quarter(query["quarter"]))
    return {
        "period": result.period.label,
        "appeals": [
            {
                "appeal": a.appeal_id,
                "title": a.title,
                "case_number": a.case_number,
                "published_at": a.published_at,
                "page_views": a.page_views,
                "tips": a.tips,
                "tips_by_channel": a.tips_by_channel,
                "leads": a.leads,
                "solved": a.solved,
                "solved_with_tips": a.solved_with_tips,
                "hours_to_first_tip": a.hours_to_first_tip,
                "hours_to_first_lead": a.hours_to_first_lead,
            }
            for a in result.appeals
        ],
        "posts": [
            {
                "post": p.post_id,
                "sent_at": p.sent_at,
                "appeals": p.appeals,
                "networks": p.networks,
                "page_views": p.page_views,
                "tips": p.tips,
                "tips_by_channel": p.tips_by_channel,
                "leads": p.leads,
                "solved": p.solved,
                "hours_to_first_tip": p.hours_to_first_tip,
                "hours_to_first_lead": p.hours_to_first_lead,
            }
            for p in post_outcomes(g.api_user.agency_id, result.period)
        ],
        "months": [
            {"month": month, "solved": solved, "solved_with_tips": helped}
            for month, (solved, helped) in result.solved_by_month.items()
        ],
    }
