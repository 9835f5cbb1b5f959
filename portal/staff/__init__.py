"""Staff pages, under /staff/. Sign-in is required for every one of them except the
short list in ``ANONYMOUS_ENDPOINTS``; a new view is protected without doing anything."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from portal.extensions import db, login_manager
from portal.http import ratelimit
from portal.http.edge import staff_client_addr
from portal.models import Outcome
from portal.services.audit import ANONYMOUS_ACTOR, record_event
from portal.services.sessions import load_session_user

bp = Blueprint("staff", __name__, template_folder="../templates")

# staff.login_mfa checks its own proof: the signed, short-lived marker of a correct password.
ANONYMOUS_ENDPOINTS = frozenset({"staff.login", "staff.login_mfa"})


@login_manager.user_loader
def _load_user(session_secret: str):
    settings = current_app.config["TATTLETALE"]
    return load_session_user(
        session_secret,
        idle=timedelta(minutes=settings.session_idle_minutes),
        lifetime=timedelta(hours=settings.session_lifetime_hours),
    )


def _audit_sign_in_required(reason: str | None = None) -> None:
    details = {"method": request.method} | ({"reason": reason} if reason else {})
    record_event(
        "auth.required",
        agency_id=None,  # nobody signed in: no agency, the operators' to read
        actor_label=ANONYMOUS_ACTOR,
        object_type="route",
        object_id=request.path,
        outcome=Outcome.DENIED,
        client_addr=staff_client_addr(),
        details=details,
    )
    db.session.commit()


@bp.before_request
def require_sign_in():
    if request.endpoint in ANONYMOUS_ENDPOINTS or current_user.is_authenticated:
        return None
    # No session, or one that ended: a failed authentication. Past the client's budget
    # it is refused with one audit entry a minute, not one per request (see ratelimit).
    wait = ratelimit.auth_failures_spent() or ratelimit.count_auth_failure()
    if wait is not None:
        detail = "Too many requests without signing in."
        return ratelimit.refuse_flood(wait, _audit_sign_in_required, detail)
    _audit_sign_in_required()
    if request.method != "GET":
        abort(401)
    flash("Please sign in to see that page.", "info")
    return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))


from portal.staff import (  # noqa: E402,F401  (registers the routes)
    account_views,
    admin_views,
    appeals_views,
    attachments_views,
    case_life_views,
    cases_views,
    channels_views,
    clips_views,
    localtime_filters,
    outcomes_views,
    publishing_views,
    tips_views,
    triage_views,
    views,
)
