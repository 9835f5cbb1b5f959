"""Staff pages for triage: the tip queue (filters, orders, search, keyset pages, new
tips polled in), one tip's triage and internal notes, bulk changes on a selection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal.extensions import db
from portal.models import Appeal, Case, Role, Tip, User, UserRole
from portal.services.appeals import CHANNEL_LABELS, tip_source
from portal.services.authz import Permission
from portal.services.cases import visible_cases_query
from portal.services.errors import DomainError
from portal.services.tip_queue import (
    SORTS,
    STATUSES,
    TipQuery,
    is_overdue,
    list_queue,
    new_tips_since,
    query_from_args,
    reply_waiting,
)
from portal.services.tips import get_tip_for, may_handle
from portal.services.triage import (
    PRIORITIES,
    BulkResult,
    StaleTip,
    TriageChange,
    add_note,
    bulk_update,
    notes_of,
    priority_name,
    tag_names,
    tip_history,
    update_tip,
)
from portal.staff import bp
from portal.staff.authz import requires
from portal.staff.localtime_filters import local_filter
from portal.staff.tip_forms import BulkForm, NoteForm, TriageForm

MAX_CHOICES = 300
LEAVE = [("", "(leave as it is)")]


def _triagers() -> list[User]:
    """The agency's users whose roles triage tips (detectives and supervisors)."""
    return list(
        db.session.scalars(
            select(User)
            .join(UserRole)
            .where(
                User.agency_id == current_user.agency_id,
                UserRole.role.in_([Role.DETECTIVE.value, Role.SUPERVISOR.value]),
                User.is_disabled.is_(False),
            )
            .distinct()
            .order_by(User.display_name)
        )
    )


def _triager_choices() -> list[tuple[str, str]]:
    """(public id, name) of :func:`_triagers`, read as two columns: the queue's lists
    show nothing else of them."""
    triages = (
        select(UserRole.id)
        .where(
            UserRole.user_id == User.id,
            UserRole.role.in_([Role.DETECTIVE.value, Role.SUPERVISOR.value]),
        )
        .exists()
    )
    rows = db.session.execute(
        select(User.public_id, User.display_name)
        .where(User.agency_id == current_user.agency_id, User.is_disabled.is_(False), triages)
        .order_by(User.display_name, User.id)
    )
    return [(public_id, name) for public_id, name in rows]


def _case_choices() -> list[tuple[str, str]]:
    # Three columns, not the cases (their assignments would be loaded with them).
    rows = db.session.execute(
        visible_cases_query(current_user)
        .with_only_columns(Case.public_id, Case.number, Case.title)
        .limit(MAX_CHOICES)
    )
    return [(public_id, f"{number} · {title}") for public_id, number, title in rows]


def _queue_choices(people: list[tuple[str, str]]) -> dict[str, Any]:
    """The filter form's lists. Measured (bench/queue_page_bench.py): loading the
    appeals and cases as objects, with the clips, versions, renditions and assignments
    they load, was half of the page's time; their ids and titles are all it shows."""
    appeals = db.session.execute(
        select(Appeal.public_id, Appeal.title)
        .where(Appeal.agency_id == current_user.agency_id)
        .order_by(Appeal.id.desc())
        .limit(MAX_CHOICES)
    )
    return {
        "cases": _case_choices(),
        "appeals": [(public_id, title) for public_id, title in appeals],
        "statuses": STATUSES,
        "channels": ["web", *CHANNEL_LABELS],
        "sorts": [(key, label) for key, (label, _desc) in SORTS.items()],
        "people": people,
    }


def _bulk_form(people: list[tuple[str, str]] | None = None) -> BulkForm:
    form = BulkForm()
    form.status.choices = LEAVE + [(s, s) for s in STATUSES if s != "duplicate"]
    form.priority.choices = LEAVE + [(p, p) for p in PRIORITIES]
    people = _triager_choices() if people is None else people
    form.assignee.choices = LEAVE + [("none", "(nobody)")] + people
    return form


def _render_queue(query: TipQuery, *, error: str = "", status: int = 200) -> tuple[str, int]:
    after = request.args.get("after", "")
    page = None
    try:
        page = list_queue(current_user, query, after=after or None)
    except DomainError as exc:
        error, status = exc.message, exc.status
    people = _triager_choices()
    return render_template(
        "staff/tips.html",
        page=page,
        query=query,
        choices=_queue_choices(people),
        bulk_form=_bulk_form(people),
        error=error,
        is_overdue=is_overdue,
        reply_waiting=reply_waiting,
        priority_name=priority_name,
        newest=page.tips[0].created_at.isoformat() if page and page.tips else "",
    ), status


@bp.app_template_filter("tip_source")
def tip_source_filter(channel: str) -> str:
    return tip_source(channel)


@bp.route("/tips")
@requires(Permission.TIP_TRIAGE)
def tip_list() -> tuple[str, int]:
    try:
        query = query_from_args(request.args)
    except DomainError as exc:
        return _render_queue(TipQuery(), error=exc.message, status=exc.status)
    return _render_queue(query)


def _tip_row(tip: Tip) -> dict[str, Any]:
    """A queue row for the page's script (which shows every value as text)."""
    return {
        "id": tip.public_id,
        "number": tip.number,
        "url": url_for("staff.tip_detail", tip_id=tip.public_id),
        "case": tip.case.number if tip.case else "general",
        "received": local_filter(tip.created_at),
        "created_at": tip.created_at.isoformat(),
        "channel": tip_source(tip.channel),
        "comment": tip.origin == "comment",
        "status": tip.status,
        "priority": priority_name(tip),
        "version": tip.version,
        "excerpt": tip.body[:120],
    }


@bp.route("/tips/poll")
@requires(Permission.TIP_TRIAGE)
def tip_poll() -> Response | tuple[Response, int]:
    """Tips newer than ``since`` under the queue's filters, for the page to add
    (without ``since``: the newest ones)."""
    try:
        since = datetime.fromisoformat(request.args.get("since") or "1900-01-01")
    except ValueError:
        return jsonify(error="since must be an ISO 8601 date and time."), 400
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        tips = new_tips_since(current_user, query_from_args(request.args), since)
    except DomainError as exc:
        return jsonify(error=exc.message), exc.status
    return jsonify(tips=[_tip_row(tip) for tip in tips])


@bp.route("/tips/bulk", methods=["POST"])
@requires(Permission.TIP_TRIAGE)
def tip_bulk() -> Response | tuple[str, int]:
    form = _bulk_form()
    if not form.validate_on_submit():
        return _render_queue(TipQuery(), error="Choose a change for the selected tips.", status=400)
    selection: list[tuple[str, int]] = []
    for value in request.form.getlist("tip"):
        public_id, _, version = value.partition(":")
        if not version.isdigit():
            abort(400)
        selection.append((public_id, int(version)))
    assignee = form.assignee.data or None
    change = TriageChange(
        status=form.status.data or None,
        priority=form.priority.data or None,
        assignee="" if assignee == "none" else assignee,
    )
    try:
        result = bulk_update(current_user, selection, change)
    except DomainError as exc:
        return _render_queue(TipQuery(), error=exc.message, status=exc.status)
    _flash_bulk(result)
    return redirect(request.form.get("back") or url_for("staff.tip_list"))


def _flash_bulk(result: BulkResult) -> None:
    flash(f"Changed {len(result.changed)} tip(s).", "info")
    if result.stale:
        flash(
            "Changed by someone else since you loaded the queue, so left alone: "
            + ", ".join(result.stale),
            "error",
        )
    if result.refused:
        flash(f"{len(result.refused)} selected tip(s) are not yours to change.", "error")
    for number, reason in result.invalid.items():
        flash(f"{number}: {reason}", "error")


def _triage_form(tip: Tip, *, formdata: bool = False) -> TriageForm:
    form = TriageForm() if formdata else TriageForm(formdata=None)
    form.status.choices = [(s, s) for s in STATUSES]
    form.priority.choices = [(p, p) for p in PRIORITIES]
    form.assignee.choices = [("", "(nobody)")] + [
        (u.public_id, u.display_name) for u in _triagers() if may_handle(u, tip)
    ]
    case_id = tip.case.public_id if tip.case else None
    form.linked_case.choices = [("", "(none)")] + [
        choice for choice in _case_choices() if choice[0] != case_id
    ]
    if not formdata:
        form.version.data = str(tip.version)
        form.status.data = tip.status
        form.priority.data = priority_name(tip)
        form.assignee.data = tip.assignee.public_id if tip.assignee else ""
        form.tags.data = ", ".join(tag_names(tip))
        form.linked_case.data = tip.linked_case.public_id if tip.linked_case else ""
        form.duplicate_of.data = tip.duplicate_of.number if tip.duplicate_of else ""
    return form


def triage_context(tip: Tip, **given: Any) -> dict[str, Any]:
    """What tip_detail.html's triage parts need (see _tip_triage.html)."""
    return {
        "triage_form": given.get("triage_form") or _triage_form(tip),
        "note_form": given.get("note_form") or NoteForm(formdata=None),
        "notes": notes_of(tip),
        "history": tip_history(tip),
        "tags": tag_names(tip),
        "priority": priority_name(tip),
        "stale": given.get("stale"),
        "overdue": is_overdue(tip),
        "reply_waiting": reply_waiting(tip),
    }


@bp.route("/tips/<tip_id>/triage", methods=["POST"])
@requires(Permission.TIP_TRIAGE)
def tip_triage(tip_id: str) -> Response | tuple[str, int]:
    from portal.staff.tips_views import render_tip

    tip = get_tip_for(current_user, tip_id)
    form = _triage_form(tip, formdata=True)
    if not form.validate_on_submit() or not (form.version.data or "").isdigit():
        return render_tip(tip, triage=triage_context(tip, triage_form=form), status=400)
    change = TriageChange(
        status=form.status.data,
        priority=form.priority.data,
        assignee=form.assignee.data or "",
        tags=(form.tags.data or "").split(","),
        linked_case=form.linked_case.data or "",
        duplicate_of=form.duplicate_of.data or "",
    )
    try:
        changed = update_tip(tip, current_user, change, version=int(form.version.data or 0))
    except StaleTip as exc:
        db.session.rollback()
        tip = get_tip_for(current_user, tip_id)
        # The current values in the form, the message naming them: nothing overwritten.
        return render_tip(tip, triage=triage_context(tip, stale=exc.message), status=409)
    except DomainError as exc:
        db.session.rollback()
        tip = get_tip_for(current_user, tip_id)
        form = _triage_form(tip, formdata=True)
        getattr(form, exc.field or "status", form.status).errors = [exc.message]
        return render_tip(tip, triage=triage_context(tip, triage_form=form), status=exc.status)
    flash("Saved: " + ", ".join(changed) if changed else "Nothing to change.", "info")
    return redirect(url_for("staff.tip_detail", tip_id=tip.public_id))


@bp.route("/tips/<tip_id>/notes", methods=["POST"])
@requires(Permission.TIP_TRIAGE)
def tip_note(tip_id: str) -> Response | tuple[str, int]:
    from portal.staff.tips_views import render_tip

    tip = get_tip_for(current_user, tip_id)
    form = NoteForm()
    if form.validate_on_submit():
        try:
            add_note(tip, current_user, form.body.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.body.errors = [exc.message]
        else:
            flash("Note added (staff only).", "info")
            return redirect(url_for("staff.tip_detail", tip_id=tip.public_id))
    return render_tip(tip, triage=triage_context(tip, note_form=form), status=400)
