"""Staff pages for a case's appeal: write it, publish it, take it down."""

from __future__ import annotations

import segno
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.extensions import db
from portal.models import ClipVersion
from portal.services.appeals import (
    CHANNELS,
    appeal_of,
    publish_appeal,
    publishable_versions,
    save_appeal,
    withdraw_appeal,
)
from portal.services.authz import Permission
from portal.services.cases import get_case_for
from portal.services.errors import DomainError
from portal.staff import bp
from portal.staff.appeal_forms import AppealForm, PublishForm, WithdrawForm
from portal.staff.authz import requires


def _version_label(version: ClipVersion) -> str:
    clip = version.clip
    name = clip.original_filename or clip.public_id
    return f"{name} — version {version.number}"


@bp.route("/cases/<case_id>/appeal", methods=["GET", "POST"])
@requires(Permission.APPEAL_PUBLISH)
def appeal_edit(case_id: str) -> Response | str | tuple[str, int]:
    case = get_case_for(current_user, case_id)
    appeal = appeal_of(case)
    versions = publishable_versions(case)
    form = AppealForm(obj=appeal)
    form.versions.choices = [SelectChoice(v.public_id, _version_label(v)) for v in versions]
    if request.method == "GET":
        if appeal is not None:
            form.versions.data = [item.version.public_id for item in appeal.clips]
        else:
            form.title.data = case.title
            form.summary.data = case.public_summary
            form.versions.data = [v.public_id for v in versions[:1]]
    if form.validate_on_submit():
        try:
            save_appeal(
                case,
                current_user,
                title=form.title.data or "",
                summary=form.summary.data or "",
                question=form.question.data or "",
                version_ids=form.versions.data or [],
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            getattr(form, exc.field or "title").errors = [exc.message]
        else:
            flash("Appeal saved.", "info")
            return redirect(url_for("staff.appeal_edit", case_id=case.public_id))
    channel_links = {}
    qr_svg = ""
    if appeal is not None and appeal.is_published:
        page = url_for("public.appeal_page", appeal_id=appeal.public_id, _external=True)
        channel_links = {label: f"{page}?via={key}" for key, label in CHANNELS.items()}
        qr_svg = segno.make(f"{page}?via=qr", error="m").svg_inline(scale=4, title="QR code")
    status = 400 if request.method == "POST" else 200
    return render_template(
        "staff/appeal_form.html",
        case=case,
        appeal=appeal,
        form=form,
        has_versions=bool(versions),
        publish_form=PublishForm(),
        withdraw_form=WithdrawForm(),
        channel_links=channel_links,
        qr_svg=qr_svg,
    ), status


@bp.route("/cases/<case_id>/appeal/publish", methods=["POST"])
@requires(Permission.APPEAL_PUBLISH)
def appeal_publish(case_id: str) -> Response:
    case = get_case_for(current_user, case_id)
    appeal = appeal_of(case)
    form = PublishForm()
    if appeal is None or not form.validate_on_submit():
        flash("Save the appeal first.", "error")
    else:
        try:
            publish_appeal(appeal, current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash("The appeal is on the public site.", "info")
    return redirect(url_for("staff.appeal_edit", case_id=case.public_id))


@bp.route("/cases/<case_id>/appeal/withdraw", methods=["POST"])
@requires(Permission.APPEAL_PUBLISH)
def appeal_withdraw(case_id: str) -> Response:
    case = get_case_for(current_user, case_id)
    appeal = appeal_of(case)
    form = WithdrawForm()
    if appeal is None or not form.validate_on_submit():
        flash("; ".join(form.reason.errors) or "There is nothing to take down.", "error")
    else:
        try:
            withdraw_appeal(appeal, current_user, form.reason.data or "")
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash("The appeal is no longer on the public site.", "info")
    return redirect(url_for("staff.appeal_edit", case_id=case.public_id))
