"""Staff page of a case's life: its status history and the form that solves,
closes or reopens it."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.extensions import db
from portal.models import Case
from portal.services.authz import Permission
from portal.services.case_life import (
    ACTION_NAMES,
    SOLVED,
    Solution,
    case_tip_choices,
    change_case_status,
    may_change_status,
    next_statuses,
    solving_tip_numbers,
    status_history,
)
from portal.services.cases import get_case_for
from portal.services.errors import DomainError
from portal.staff import bp
from portal.staff.authz import requires
from portal.staff.case_life_forms import CaseStatusForm


def _page(case: Case, form: CaseStatusForm, status: int = 200) -> tuple[str, int]:
    form.to_status.choices = [SelectChoice(s, ACTION_NAMES[s]) for s in next_statuses(case)]
    tips = case_tip_choices(case)
    form.tips.choices = [SelectChoice(t.public_id, t.number) for t in tips]
    if not form.seen_status.data:
        form.seen_status.data = case.status
    history = [(change, solving_tip_numbers(change)) for change in status_history(case)]
    return render_template(
        "staff/case_status.html",
        case=case,
        form=form,
        tips=tips,
        history=history,
        can_change=may_change_status(current_user, case),
    ), status


@bp.route("/cases/<case_id>/status")
@requires(Permission.CASE_VIEW)
def case_status(case_id: str) -> tuple[str, int]:
    case = get_case_for(current_user, case_id)
    return _page(case, CaseStatusForm(formdata=None))


@bp.route("/cases/<case_id>/status", methods=["POST"])
@requires(Permission.CASE_EDIT)
def case_status_change(case_id: str) -> Response | tuple[str, int]:
    case = get_case_for(current_user, case_id, Permission.CASE_EDIT)
    form = CaseStatusForm()
    form.to_status.choices = [SelectChoice(s, ACTION_NAMES[s]) for s in next_statuses(case)]
    answer = 400
    if form.validate_on_submit():
        to_status = form.to_status.data or ""
        solution = (
            Solution(tips_led=bool(form.tips_led.data), tip_ids=tuple(form.tips.data or ()))
            if to_status == SOLVED
            else None
        )
        try:
            change_case_status(
                case,
                current_user,
                to_status,
                reason=form.reason.data or "",
                solution=solution,
                seen_status=form.seen_status.data or None,
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            answer = 409 if exc.status == 409 else 400
            field = getattr(form, exc.field or "", None) or form.to_status
            field.errors = [*field.errors, exc.message]
            db.session.refresh(case)
        else:
            flash(f"Case {case.number} is now {case.status}.", "info")
            return redirect(url_for("staff.case_status", case_id=case.public_id))
    elif request.method == "POST" and form.to_status.errors:
        # The choices follow the case's current status: a stale page names one that
        # is no longer allowed.
        form.to_status.errors = ["That change is not possible from the case's current status."]
        answer = 409
    return _page(case, form, status=answer)
