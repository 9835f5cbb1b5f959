"""Staff pages for a tip: its conversation and the tipster's contact (revealed on
request, audited). The queue and triage are in triage_views.py."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.extensions import db
from portal.models import Tip
from portal.publishing.services.replies import VERBS, action_problem, request_action
from portal.services.authz import Permission
from portal.services.errors import DomainError
from portal.services.tip_queue import mark_read
from portal.services.tips import (
    Contact,
    add_staff_message,
    get_tip_for,
    reveal_contact,
)
from portal.staff import bp
from portal.staff.authz import requires
from portal.staff.tip_forms import CommentActionForm, RevealForm, StaffMessageForm


def render_tip(
    tip: Tip,
    *,
    form: StaffMessageForm | None = None,
    contact: Contact | None = None,
    triage: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    from portal.staff.triage_views import triage_context

    return render_template(
        "staff/tip_detail.html",
        tip=tip,
        form=form or StaffMessageForm(formdata=None),
        reveal_form=RevealForm(),
        contact=contact,
        triage=triage or triage_context(tip),
        comment=comment_context(tip),
    ), status


def comment_context(tip: Tip) -> dict[str, Any] | None:
    """A public comment's panel: where it is, and what this user can do to it."""
    if tip.public_reply is None:
        return None
    return {
        "reply": tip.public_reply,
        "network": tip.public_reply.channel.network,
        "actions": {action: action_problem(current_user, tip, action) for action in VERBS},
        "form": CommentActionForm(),
    }


def _tip_page(
    tip_id: str,
    *,
    form: StaffMessageForm | None = None,
    contact: Contact | None = None,
    status: int = 200,
) -> tuple[str, int]:
    return render_tip(get_tip_for(current_user, tip_id), form=form, contact=contact, status=status)


@bp.route("/tips/<tip_id>")
@requires(Permission.TIP_TRIAGE)
def tip_detail(tip_id: str) -> tuple[str, int]:
    tip = get_tip_for(current_user, tip_id)
    mark_read(current_user, tip)
    return render_tip(tip)


@bp.route("/tips/<tip_id>/contact", methods=["POST"])
@requires(Permission.TIP_TRIAGE)
def tip_contact(tip_id: str) -> tuple[str, int]:
    tip = get_tip_for(current_user, tip_id)
    if not RevealForm().validate_on_submit():
        abort(400)
    contact = reveal_contact(tip, current_user)
    db.session.commit()
    return _tip_page(tip_id, contact=contact)


@bp.route("/tips/<tip_id>/messages", methods=["POST"])
@requires(Permission.TIP_TRIAGE)
def tip_message(tip_id: str) -> Response | tuple[str, int]:
    tip = get_tip_for(current_user, tip_id)
    form = StaffMessageForm()
    if form.validate_on_submit():
        try:
            add_staff_message(tip, current_user, form.body.data or "")
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.body.errors = [exc.message]
        else:
            flash("Sent. The tipster reads it with their receipt.", "info")
            return redirect(url_for("staff.tip_detail", tip_id=tip.public_id))
    return _tip_page(tip_id, form=form, status=400)


@bp.route("/tips/<tip_id>/comment/<action>", methods=["POST"])
@requires(Permission.TIP_TRIAGE)
def tip_comment_action(tip_id: str, action: str) -> Response:
    """Hide, delete or answer the tip's public comment on the network (by a job)."""
    tip = get_tip_for(current_user, tip_id)
    if action not in VERBS:
        abort(404)
    if not CommentActionForm().validate_on_submit():
        abort(400)
    try:
        request_action(current_user, tip, action)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 403:
            raise
        flash(exc.message, "error")
    else:
        flash("Asked. The network is being told; this page shows when it is done.", "info")
    return redirect(url_for("staff.tip_detail", tip_id=tip.public_id))
