"""Staff pages of the weekly slot: the calendar with its backlog and suggestion,
filling a slot, a post with what each network will be sent, and (admins) the slot's
settings and caption templates."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.extensions import db
from portal.http.edge import staff_client_addr
from portal.models import Rendition
from portal.models.base import utcnow
from portal.publishing import slots as slot_plans
from portal.publishing.captions import Template, measure, template_for
from portal.publishing.counting import count_length
from portal.publishing.limits import LIMITS, limits_for
from portal.publishing.models import ChannelStatus, Delivery, DeliveryStatus, Post, PostStatus
from portal.publishing.planning import (
    CAPTION_NETWORKS,
    SlotSettings,
    check_template,
    describe_preview,
    preview_caption,
    save_caption_template,
    update_slot_settings,
)
from portal.publishing.services.posts import (
    cancel_post,
    create_post,
    edit_caption,
    get_post_for,
    list_channels,
    mark_delivery_sent,
    post_now,
    retry_delivery,
    schedule_post,
)
from portal.services.authz import Permission
from portal.services.errors import DomainError, NotFound
from portal.staff import bp
from portal.staff.authz import requires
from portal.staff.localtime_filters import local_filter
from portal.staff.publishing_forms import (
    CaptionEditForm,
    CaptionTemplateForm,
    FillSlotForm,
    MarkSentForm,
    PostActionForm,
    SlotSettingsForm,
)

#: How far ahead the calendar looks.
CALENDAR_WEEKS = 6
#: Who plans posts (supervisors and coordinators) and who sets the slot (admins).
PLAN = Permission.POST_MANAGE
SETTINGS = Permission.USER_MANAGE


def _network_label(network: str) -> str:
    return LIMITS[network].label if network in LIMITS else network


def _slot_label(slot: datetime) -> str:
    return local_filter(slot, "%a %-d %b %Y, %H:%M %Z")


@bp.route("/schedule")
@requires(PLAN)
def schedule_calendar() -> str:
    agency = current_user.agency
    now = utcnow()
    return render_template(
        "staff/schedule.html",
        agency=agency,
        plans=slot_plans.plan_slots(agency, now, CALENDAR_WEEKS),
        backlog=slot_plans.backlog(agency),
        empty_slot=slot_plans.empty_slot_ahead(agency, now),
        action_form=PostActionForm(),
    )


def _fill_form(agency_slots: list[datetime]) -> FillSlotForm:
    agency = current_user.agency
    form = FillSlotForm()
    form.slot.choices = [SelectChoice(s.isoformat(), _slot_label(s)) for s in agency_slots]
    form.appeals.choices = [
        SelectChoice(a.public_id, f"{a.case.number} — {a.title}")
        for a in slot_plans.open_appeals(agency)
    ]
    form.channels.choices = [
        SelectChoice(c.public_id, f"{c.name} ({_network_label(c.network)})")
        for c in list_channels(current_user)
        if c.network != "portal" and c.status == ChannelStatus.CONNECTED.value
    ]
    return form


@bp.route("/schedule/fill", methods=["GET", "POST"])
@requires(PLAN)
def schedule_fill() -> Response | tuple[str, int]:
    agency = current_user.agency
    now = utcnow()
    plans = slot_plans.plan_slots(agency, now, CALENDAR_WEEKS)
    form = _fill_form([p.slot_at for p in plans])
    dropped: list[str] = []
    if request.method == "GET":
        wanted = request.args.get("slot", "")
        plan = next((p for p in plans if p.slot_at.isoformat() == wanted), plans[0])
        form.slot.data = plan.slot_at.isoformat()
        # Appeals dropped on the slot in the calendar (schedule-drag.js) come ticked in
        # place of the suggestion; one that cannot be picked is ignored.
        pickable = {choice.value for choice in form.appeals.choices}
        dropped = [a for a in request.args.getlist("appeal") if a in pickable]
        form.appeals.data = dropped or [a.public_id for a in plan.suggestion]
        form.channels.data = [choice.value for choice in form.channels.choices]
    problems: list[str] = []
    if form.validate_on_submit():
        slot_at = datetime.fromisoformat(form.slot.data or "").astimezone(UTC)
        try:
            post = create_post(
                agency, current_user, form.appeals.data or [], slot_at, form.channels.data or []
            )
            if form.post_now.data:
                post_now(post, current_user)
            else:
                schedule_post(post, current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            problems = list(getattr(exc, "problems", [])) or [exc.message]
        else:
            flash("Posting now." if form.post_now.data else "Scheduled.", "info")
            return redirect(url_for("staff.post_detail", post_id=post.public_id))
    status = 422 if problems else (400 if request.method == "POST" else 200)
    return render_template(
        "staff/schedule_fill.html", form=form, problems=problems, dropped=bool(dropped)
    ), status


def _rendition(delivery: Delivery) -> Rendition | None:
    if delivery.rendition_id is None:
        return None
    return db.session.get(Rendition, delivery.rendition_id)


def _delivery_view(post: Post, delivery: Delivery) -> dict[str, object]:
    """What the post page shows of one channel: the caption exactly as counted and
    cut, the rendition it sends, and where the delivery stands."""
    from portal.publishing import preflight

    network = delivery.channel.network
    limits = LIMITS.get(network)
    text, rendition, problems = delivery.text, _rendition(delivery), []
    if not text and limits is not None and post.status == PostStatus.DRAFT.value:
        try:
            prepared = preflight.prepare_delivery(
                network, [item.appeal for item in post.appeals], current_user.agency
            )
        except preflight.PreflightFailed as exc:
            problems = exc.problems
        else:
            text = prepared.text
            rendition = (
                db.session.get(Rendition, prepared.rendition_id) if prepared.rendition_id else None
            )
    counted = count_length(text, limits.counting) if limits is not None else len(text)
    limit = limits.caption_max.value if limits is not None and limits.caption_max else 0
    return {
        "delivery": delivery,
        "network": limits.label if limits is not None else network,
        "text": text,
        "counted": counted,
        "count": describe_preview(measure(text, limits))["count"] if limits else "",
        "limit": limit,
        "rendition": rendition,
        "problems": problems,
        "editable": _caption_editable(post, delivery),
    }


def _caption_editable(post: Post, delivery: Delivery) -> bool:
    """A scheduled post's caption may be rewritten per channel until it is sent."""
    return (
        post.status == PostStatus.SCHEDULED.value
        and delivery.status == DeliveryStatus.QUEUED.value
        and delivery.channel.network in CAPTION_NETWORKS  # the portal's pages show the appeal
    )


def _render_post(
    post: Post,
    refused: tuple[Delivery, MarkSentForm] | None = None,
    caption: tuple[Delivery, CaptionEditForm] | None = None,
) -> tuple[str, int]:
    """The post page; ``refused`` is a "found it" address that did not pass, shown
    with its message beside its delivery (the others' forms stay empty); ``caption``
    a rewritten caption that was refused, shown as written with why."""
    sent_forms = {
        d.public_id: MarkSentForm(formdata=None)
        for d in post.deliveries
        if d.status == DeliveryStatus.NEEDS_ATTENTION.value
    }
    if refused is not None:
        sent_forms[refused[0].public_id] = refused[1]
    caption_forms = {
        d.public_id: CaptionEditForm(formdata=None, text=d.text)
        for d in post.deliveries
        if _caption_editable(post, d)
    }
    if caption is not None:
        caption_forms[caption[0].public_id] = caption[1]
    return render_template(
        "staff/post_detail.html",
        post=post,
        deliveries=[_delivery_view(post, d) for d in post.deliveries],
        action_form=PostActionForm(),
        sent_forms=sent_forms,
        caption_forms=caption_forms,
    ), (422 if refused or caption else 200)


@bp.route("/posts/<post_id>")
@requires(PLAN)
def post_detail(post_id: str) -> tuple[str, int]:
    try:
        post = get_post_for(current_user, post_id)
    except NotFound:
        abort(404)
    return _render_post(post)


def _post_action(post_id: str, action: str) -> Response:
    try:
        post = get_post_for(current_user, post_id)
    except NotFound:
        abort(404)
    if not PostActionForm().validate_on_submit():
        abort(400)
    try:
        if action == "now":
            post_now(post, current_user)
        else:
            cancel_post(post, current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash("Posting now." if action == "now" else "Cancelled.", "info")
    return redirect(url_for("staff.post_detail", post_id=post_id))


@bp.route("/posts/<post_id>/now", methods=["POST"])
@requires(PLAN)
def post_send_now(post_id: str) -> Response:
    return _post_action(post_id, "now")


@bp.route("/posts/<post_id>/cancel", methods=["POST"])
@requires(PLAN)
def post_cancel(post_id: str) -> Response:
    return _post_action(post_id, "cancel")


# -- a scheduled post's captions, rewritten per channel ----------------------------------


@bp.route("/posts/<post_id>/deliveries/<delivery_id>/caption", methods=["POST"])
@requires(PLAN)
def delivery_caption(post_id: str, delivery_id: str) -> Response | tuple[str, int]:
    delivery = _delivery_of(post_id, delivery_id)
    form = CaptionEditForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _render_post(delivery.post, caption=(delivery, form))
    name = delivery.channel.name
    try:
        edit_caption(delivery, current_user, form.text.data or "")
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.field != "text":
            flash(exc.message, "error")
            return redirect(url_for("staff.post_detail", post_id=post_id))
        form.text.errors = [exc.message]
        return _render_post(delivery.post, caption=(delivery, form))
    flash(f"The caption for {name} is saved.", "info")
    return redirect(url_for("staff.post_detail", post_id=post_id))


@bp.route("/posts/<post_id>/deliveries/<delivery_id>/caption/preview", methods=["POST"])
@requires(PLAN)
def delivery_caption_preview(post_id: str, delivery_id: str) -> tuple[Response, int]:
    """The live preview of a caption being rewritten: counted by the server as the
    network counts it and checked as saving it would be (the browser counts nothing).
    Saves nothing; the form's CSRF token is checked like any POST."""
    from portal.publishing.preflight import caption_problems

    delivery = _delivery_of(post_id, delivery_id)
    if delivery.channel.network not in CAPTION_NETWORKS:
        abort(404)
    form = CaptionEditForm()
    if not form.validate_on_submit():
        return jsonify(problems={k: list(v) for k, v in form.errors.items()}), 400
    caption, problems = caption_problems(delivery.channel.network, form.text.data or "")
    shown = describe_preview(caption)
    if problems:
        message = "; ".join(problems)
        shown["warning"] = message[0].upper() + message[1:] + "."
    return jsonify(problems={"text": problems} if problems else {}, **shown), 200


# -- a person's decisions on a delivery that stopped ------------------------------------


def _delivery_of(post_id: str, delivery_id: str) -> Delivery:
    """A delivery of a post of the user's agency; another agency's is not found."""
    try:
        post = get_post_for(current_user, post_id)
    except NotFound:
        abort(404)
    delivery = next((d for d in post.deliveries if d.public_id == delivery_id), None)
    if delivery is None:
        abort(404)
    return delivery


@bp.route("/posts/<post_id>/deliveries/<delivery_id>/retry", methods=["POST"])
@requires(PLAN)
def delivery_retry(post_id: str, delivery_id: str) -> Response:
    delivery = _delivery_of(post_id, delivery_id)
    if not PostActionForm().validate_on_submit():
        abort(400)
    name = delivery.channel.name
    try:
        retry_delivery(delivery, current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(f"Sending to {name} again.", "info")
    return redirect(url_for("staff.post_detail", post_id=post_id))


@bp.route("/posts/<post_id>/deliveries/<delivery_id>/sent", methods=["POST"])
@requires(PLAN)
def delivery_mark_sent(post_id: str, delivery_id: str) -> Response | tuple[str, int]:
    delivery = _delivery_of(post_id, delivery_id)
    form = MarkSentForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _render_post(delivery.post, (delivery, form))
    name = delivery.channel.name
    try:
        mark_delivery_sent(delivery, current_user, form.url.data or "")
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.field != "url":
            flash(exc.message, "error")
            return redirect(url_for("staff.post_detail", post_id=post_id))
        form.url.errors = [exc.message]
        return _render_post(delivery.post, (delivery, form))
    flash(f"Recorded as on {name}.", "info")
    return redirect(url_for("staff.post_detail", post_id=post_id))


# -- settings (admins) ------------------------------------------------------------------


@bp.route("/schedule/settings", methods=["GET", "POST"])
@requires(SETTINGS)
def schedule_settings() -> Response | tuple[str, int]:
    agency = current_user.agency
    form = SlotSettingsForm()
    if request.method == "GET":
        form.weekday.data = str(agency.slot_weekday)
        form.time.data = f"{agency.slot_minute // 60:02d}:{agency.slot_minute % 60:02d}"
        form.timezone.data = agency.timezone
        form.appeals_per_post.data = agency.appeals_per_post
        form.remove_posts_after_days.data = agency.remove_posts_after_days
    elif form.validate_on_submit():
        hours, minutes = (int(part) for part in (form.time.data or "0:0").split(":"))
        settings = SlotSettings(
            weekday=int(form.weekday.data or 0),
            minute=hours * 60 + minutes,
            timezone=form.timezone.data or "",
            appeals_per_post=form.appeals_per_post.data or 0,
            remove_posts_after_days=form.remove_posts_after_days.data or 0,
        )
        try:
            update_slot_settings(agency, current_user, settings, client_addr=staff_client_addr())
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            getattr(form, exc.field or "timezone").errors = [exc.message]
        else:
            flash("Slot settings saved.", "info")
            return redirect(url_for("staff.schedule_settings"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "staff/schedule_settings.html",
        form=form,
        networks=[(n, LIMITS[n].label) for n in CAPTION_NETWORKS],
        next_slots=slot_plans.next_slots(agency, utcnow(), 3),
    ), status


@bp.route("/schedule/captions/<network>", methods=["GET", "POST"])
@requires(SETTINGS)
def caption_template_edit(network: str) -> Response | tuple[str, int]:
    if network not in CAPTION_NETWORKS:
        abort(404)
    agency = current_user.agency
    current = template_for(agency, network)
    form = CaptionTemplateForm()
    if request.method == "GET":
        form.item.data, form.closing.data = current.item, current.closing
        form.hashtags.data = current.hashtags
    status = 200
    shown = current
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            shown = Template(
                item=form.item.data or "",
                closing=form.closing.data or "",
                hashtags=form.hashtags.data or "",
            )
            problems = check_template(shown)
            for part, found in problems.items():
                getattr(form, part).errors = found
            if not problems and form.save.data:
                try:
                    save_caption_template(
                        agency, current_user, network, shown, client_addr=staff_client_addr()
                    )
                    db.session.commit()
                except DomainError as exc:
                    db.session.rollback()
                    getattr(form, exc.field or "item").errors = [exc.message]
                else:
                    flash("Caption template saved.", "info")
                    return redirect(url_for("staff.caption_template_edit", network=network))
            status = 200 if not problems else 400
    backlog = slot_plans.backlog(agency)
    preview = preview_caption(agency, network, shown, backlog[0] if backlog else None)
    return render_template(
        "staff/caption_template.html",
        form=form,
        network=network,
        limits=limits_for(network),
        preview=describe_preview(preview),
        preview_appeal=backlog[0] if backlog else None,
    ), status


@bp.route("/schedule/captions/<network>/preview", methods=["POST"])
@requires(SETTINGS)
def caption_template_preview(network: str) -> tuple[Response, int]:
    """The live preview of the caption editor: the template as typed so far, written
    out, cut and counted by the same code as the page's Preview button and as
    preflight (the browser counts nothing). Saves nothing; the form's CSRF token is
    checked like any POST."""
    if network not in CAPTION_NETWORKS:
        abort(404)
    agency = current_user.agency
    form = CaptionTemplateForm()
    if not form.validate_on_submit():
        errors = {name: list(found) for name, found in form.errors.items()}
        return jsonify(problems=errors), 400
    shown = Template(
        item=form.item.data or "",
        closing=form.closing.data or "",
        hashtags=form.hashtags.data or "",
    )
    backlog = slot_plans.backlog(agency)
    preview = preview_caption(agency, network, shown, backlog[0] if backlog else None)
    return jsonify(problems=check_template(shown), **describe_preview(preview)), 200
