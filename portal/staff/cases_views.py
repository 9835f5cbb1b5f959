"""Staff pages for cases: list, create, view, edit."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.extensions import db
from portal.services.appeals import appeal_of
from portal.services.authz import Permission, can
from portal.services.cases import (
    agency_detectives,
    create_case,
    get_case_for,
    list_cases,
    set_detectives,
    update_case,
)
from portal.services.clips import list_clips
from portal.services.errors import DomainError
from portal.staff import bp
from portal.staff.authz import requires
from portal.staff.forms import CaseFilterForm, CaseForm
from portal.staff.presenters import clip_card


@bp.route("/cases")
@requires(Permission.CASE_VIEW)
def case_list():
    form = CaseFilterForm(request.args)
    page = None
    if form.validate():
        try:
            page = list_cases(
                current_user,
                status=form.status.data or None,
                search=form.q.data or "",
                after=form.after.data or None,
            )
        except DomainError as exc:
            field = {"search": form.q, "status": form.status}.get(exc.field or "", form.after)
            field.errors = [exc.message]
    status = 200 if page is not None else 400
    return render_template("staff/cases.html", form=form, page=page), status


# The start page after sign-in is the case list.
bp.add_url_rule("/", endpoint="dashboard", view_func=case_list)


def _detective_choices(form: CaseForm) -> None:
    form.detectives.choices = [
        SelectChoice(u.public_id, u.display_name) for u in agency_detectives(current_user.agency_id)
    ]


@bp.route("/cases/new", methods=["GET", "POST"])
@requires(Permission.CASE_CREATE)
def case_new():
    form = CaseForm()
    _detective_choices(form)
    if form.validate_on_submit():
        changes: dict[str, Any] = form.to_changes()
        try:
            case = create_case(current_user.agency, created_by=current_user, **changes)
            set_detectives(case, form.detectives.data or [], actor=current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            getattr(form, exc.field or "number").errors = [exc.message]
        else:
            flash(f"Case {case.number} created.", "info")
            return redirect(url_for("staff.case_detail", case_id=case.public_id))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/case_form.html", form=form, case=None), status


@bp.route("/cases/<case_id>")
@requires(Permission.CASE_VIEW)
def case_detail(case_id: str):
    case = get_case_for(current_user, case_id)
    return render_template(
        "staff/case_detail.html",
        case=case,
        clips=[clip_card(c) for c in list_clips(case)],
        can_upload=can(current_user, Permission.CLIP_UPLOAD, case),
        can_edit_case=can(current_user, Permission.CASE_EDIT, case),
        can_manage_appeal=can(current_user, Permission.APPEAL_PUBLISH, case),
        appeal=appeal_of(case),
        upload_endpoint=url_for("staff.tus_create"),
        attach_url=url_for("staff.clip_attach", case_id=case.public_id),
        max_upload_bytes=current_app.config["TATTLETALE"].max_upload_bytes,
    )


@bp.route("/cases/<case_id>/edit", methods=["GET", "POST"])
@requires(Permission.CASE_EDIT)
def case_edit(case_id: str):
    case = get_case_for(current_user, case_id, Permission.CASE_EDIT)
    form = CaseForm(obj=case)
    _detective_choices(form)
    if request.method == "GET":
        form.detectives.data = [d.public_id for d in case.detectives]
        if case.occurred_at:
            form.occurred_at.data = case.occurred_at.replace(tzinfo=None)
    if form.validate_on_submit():
        try:
            set_detectives(case, form.detectives.data or [], actor=current_user)
            update_case(case, current_user, form.to_changes())
        except DomainError as exc:
            db.session.rollback()
            getattr(form, exc.field or "number").errors = [exc.message]
        else:
            flash("Case saved.", "info")
            return redirect(url_for("staff.case_detail", case_id=case.public_id))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/case_form.html", form=form, case=case), status
