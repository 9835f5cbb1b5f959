"""Staff pages of the outcomes (charts, CSV, the printable quarterly report) and the
export of a case's tips (CSV, printable report)."""

from __future__ import annotations

from flask import Response, abort, render_template, request
from flask_login import current_user

from portal.extensions import db
from portal.services.authz import Permission
from portal.services.cases import get_case_for
from portal.services.errors import ValidationFailed
from portal.services.export import case_tips_csv, case_tips_for_export, tip_row, to_csv
from portal.services.outcomes import (
    Outcomes,
    Period,
    agency_outcomes,
    channel_label,
    chart_data,
    post_outcomes,
    quarter,
)
from portal.staff import bp
from portal.staff.authz import requires

OUTCOME_COLUMNS = (
    "appeal",
    "case",
    "published (UTC)",
    "page views",
    "tips",
    "tips by channel",
    "actionable leads",
    "solved",
    "solved with tips",
    "hours to first tip",
    "hours to first lead",
)
POST_COLUMNS = (
    "sent (UTC)",
    "appeals",
    "networks",
    "page views",
    "tips",
    "tips by channel",
    "actionable leads",
    "cases solved",
    "hours to first tip",
    "hours to first lead",
)


def _period(default: str = "all") -> Period:
    try:
        return quarter(request.args.get("quarter") or default)
    except ValidationFailed:
        abort(400)


def _outcomes(default: str = "all") -> Outcomes:
    return agency_outcomes(current_user.agency_id, _period(default))


def _attachment(body: str, filename: str, mimetype: str = "text/csv") -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/outcomes")
@requires(Permission.OUTCOME_VIEW)
def outcomes() -> str:
    result = _outcomes()
    return render_template(
        "staff/outcomes.html",
        outcomes=result,
        posts=post_outcomes(current_user.agency_id, result.period),
        chart=chart_data(result),
        channel_label=channel_label,
        quarter_value=request.args.get("quarter") or "all",
    )


@bp.route("/outcomes.csv")
@requires(Permission.OUTCOME_VIEW)
def outcomes_csv() -> Response:
    result = _outcomes()
    rows = [
        (
            a.title,
            a.case_number,
            a.published_at.strftime("%Y-%m-%d %H:%M") if a.published_at else "",
            a.page_views,
            a.tips,
            "; ".join(f"{channel_label(c)}: {n}" for c, n in sorted(a.tips_by_channel.items())),
            a.leads,
            "yes" if a.solved else "no",
            "yes" if a.solved_with_tips else "no",
            "" if a.hours_to_first_tip is None else a.hours_to_first_tip,
            "" if a.hours_to_first_lead is None else a.hours_to_first_lead,
        )
        for a in result.appeals
    ]
    label = result.period.label.replace(" ", "-")
    return _attachment(to_csv(OUTCOME_COLUMNS, rows), f"outcomes-{label}.csv")


@bp.route("/outcomes/posts.csv")
@requires(Permission.OUTCOME_VIEW)
def outcomes_posts_csv() -> Response:
    """Per weekly post: what its appeals led to in the week after it went out."""
    period = _period()
    rows = [
        (
            p.sent_at.strftime("%Y-%m-%d %H:%M"),
            "; ".join(p.appeals),
            "; ".join(channel_label(n) for n in p.networks),
            p.page_views,
            p.tips,
            "; ".join(f"{channel_label(c)}: {n}" for c, n in sorted(p.tips_by_channel.items())),
            p.leads,
            p.solved,
            "" if p.hours_to_first_tip is None else p.hours_to_first_tip,
            "" if p.hours_to_first_lead is None else p.hours_to_first_lead,
        )
        for p in post_outcomes(current_user.agency_id, period)
    ]
    label = period.label.replace(" ", "-")
    return _attachment(to_csv(POST_COLUMNS, rows), f"outcomes-posts-{label}.csv")


@bp.route("/outcomes/report")
@requires(Permission.OUTCOME_VIEW)
def outcomes_report() -> str:
    result = _outcomes(default="")  # the current quarter unless one is named
    return render_template(
        "staff/outcomes_report.html",
        outcomes=result,
        posts=post_outcomes(current_user.agency_id, result.period),
        agency=current_user.agency,
        channel_label=channel_label,
    )


@bp.route("/cases/<case_id>/tips.csv")
@requires(Permission.TIP_TRIAGE)
def case_tips_export(case_id: str) -> Response:
    case = get_case_for(current_user, case_id, Permission.TIP_TRIAGE)
    tips = case_tips_for_export(case, current_user, kind="csv")
    db.session.commit()  # the audit entry
    return _attachment(case_tips_csv(tips), f"tips-{case.public_id}.csv")


@bp.route("/cases/<case_id>/tips/report")
@requires(Permission.TIP_TRIAGE)
def case_tips_report(case_id: str) -> str:
    case = get_case_for(current_user, case_id, Permission.TIP_TRIAGE)
    tips = case_tips_for_export(case, current_user, kind="report")
    db.session.commit()
    return render_template(
        "staff/case_tips_report.html", case=case, rows=[tip_row(t) for t in tips]
    )
