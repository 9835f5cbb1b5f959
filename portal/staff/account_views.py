"""The signed-in user's own account: two-step sign-in, API tokens, sessions; and the
second step of signing in."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.extensions import db
from portal.http.edge import safe_next_url, staff_client_addr
from portal.http.errors import render_error
from portal.models import Outcome, Role, StaffSession, User
from portal.models.base import utcnow
from portal.services import mfa
from portal.services.audit import record_event
from portal.services.errors import DomainError
from portal.services.sessions import start_session
from portal.services.throttle import Throttled
from portal.services.users import (
    create_api_token,
    list_api_tokens,
    revoke_api_token,
    sign_out_everywhere,
)
from portal.staff import bp
from portal.staff.account_forms import CodeForm, ConfirmForm, TokenForm

PENDING_MFA = "mfa_pending"
PENDING_MFA_SECONDS = 300
# The enrolment attempt this browser session was shown (a digest of its secret).
ENROLMENT_ATTEMPT = "mfa_enrolment"
# Where a user who must enrol in MFA may still go before enrolling.
ENROLMENT_ENDPOINTS = frozenset(
    {"staff.account_mfa", "staff.logout", "staff.login", "staff.login_mfa"}
)


def _password_fingerprint(user: User) -> str:
    # Ties the pending marker to the password it was earned with: a password reset
    # within the five minutes voids it.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def start_staff_session(user: User, next_url: str | None) -> Response:
    """Sign the user in (both factors done) and send them on."""
    # A fresh session at sign-in: nothing from before (a planted session id,
    # flashed messages of another visitor on a shared terminal) carries over.
    session.clear()
    start_session(user, client_addr=staff_client_addr())
    db.session.commit()
    login_user(user)
    if mfa.mfa_required(user) and not user.mfa_enabled:
        flash("Your agency requires two-step sign-in. Please set it up now.", "info")
        return redirect(url_for("staff.account_mfa"))
    return redirect(safe_next_url(next_url, url_for("staff.dashboard")))


def after_password(user: User, next_url: str | None) -> Response:
    """The password was right. With MFA, ask for the code before any session exists;
    the signed cookie only remembers, for five minutes, who is half-way in."""
    if not user.mfa_enabled:
        return start_staff_session(user, next_url)
    session.clear()
    session[PENDING_MFA] = {
        "user": user.public_id,
        "until": int(time.time()) + PENDING_MFA_SECONDS,
        "pw": _password_fingerprint(user),
        "next": next_url or "",
    }
    return redirect(url_for("staff.login_mfa"))


def _pending_user() -> tuple[User, str] | None:
    pending: Any = session.get(PENDING_MFA)
    if not isinstance(pending, dict) or int(pending.get("until", 0)) < time.time():
        return None
    user = db.session.scalar(select(User).where(User.public_id == str(pending.get("user"))))
    if user is None or user.is_disabled or pending.get("pw") != _password_fingerprint(user):
        return None
    return user, str(pending.get("next") or "")


@bp.app_errorhandler(Throttled)
def throttled(error: Throttled):
    response = render_error(429, error.message)
    response = current_app.make_response(response)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


@bp.before_request
def require_mfa_enrolment():
    """Where the agency requires a second factor, a signed-in user without one may
    only enrol (or sign out) until they have."""
    if not current_user.is_authenticated or request.endpoint in ENROLMENT_ENDPOINTS:
        return None
    if current_user.mfa_enabled or not mfa.mfa_required(current_user):
        return None
    if request.method == "GET":
        flash("Your agency requires two-step sign-in. Please set it up first.", "info")
        return redirect(url_for("staff.account_mfa"))
    record_event(
        "authz.denied",
        agency_id=current_user.agency_id,
        actor=current_user,
        object_type="route",
        object_id=request.path,
        outcome=Outcome.DENIED,
        details={"reason": "mfa_enrolment_required"},
    )
    db.session.commit()
    abort(403)


@bp.route("/login/mfa", methods=["GET", "POST"])
def login_mfa():
    if current_user.is_authenticated:
        return redirect(url_for("staff.dashboard"))
    pending = _pending_user()
    if pending is None:
        session.pop(PENDING_MFA, None)
        flash("Please sign in again.", "info")
        return redirect(url_for("staff.login"))
    user, next_url = pending
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            mfa.verify_second_factor(user, form.code.data or "", client_addr=staff_client_addr())
        except mfa.SecondFactorFailed as exc:
            form.code.errors = [exc.message]
            status = 401
        else:
            return start_staff_session(user, next_url)
    elif request.method == "POST":
        status = 400
    return render_template("staff/account/login_mfa.html", form=form), status


@bp.route("/account")
def account():
    sessions = db.session.scalars(
        select(StaffSession)
        .where(StaffSession.user_id == current_user.id, StaffSession.ended_at.is_(None))
        .order_by(StaffSession.last_seen_at.desc())
    ).all()
    return render_template(
        "staff/account/index.html",
        sessions=sessions,
        confirm_form=ConfirmForm(),
        mfa_required=mfa.mfa_required(current_user),
        recovery_codes_left=mfa.remaining_recovery_codes(current_user),
    )


@bp.route("/account/sign-out-everywhere", methods=["POST"])
def account_sign_out_everywhere():
    if ConfirmForm().validate_on_submit():
        ended = sign_out_everywhere(current_user, actor=current_user)
        db.session.commit()
        session.clear()
        flash(f"Signed out of {ended} session(s), this one included.", "info")
        return redirect(url_for("staff.login"))
    abort(400)


@bp.route("/account/mfa", methods=["GET", "POST"])
def account_mfa():
    user = current_user._get_current_object()
    form = CodeForm()
    if user.mfa_enabled:
        return render_template(
            "staff/account/mfa_status.html",
            form=form,
            mfa_required=mfa.mfa_required(user),
            recovery_codes_left=mfa.remaining_recovery_codes(user),
        )
    status = 200
    attempt = session.get(ENROLMENT_ATTEMPT)
    if form.validate_on_submit():
        try:
            codes = mfa.confirm_enrolment(
                user, form.code.data or "", attempt=attempt, client_addr=staff_client_addr()
            )
        except DomainError as exc:
            form.code.errors = [exc.message]
            status = exc.status
        else:
            db.session.commit()
            session.pop(ENROLMENT_ATTEMPT, None)
            # Shown this once: only their hashes are stored.
            return render_template("staff/account/mfa_codes.html", codes=codes)
    elif request.method == "POST":
        status = 400
    # A page shown afresh is a new attempt with a new secret; a mistyped code sends
    # back the same one.
    secret = mfa.begin_enrolment(user, attempt=attempt if request.method == "POST" else None)
    db.session.commit()
    session[ENROLMENT_ATTEMPT] = mfa.enrolment_attempt(secret)
    uri = mfa.provisioning_uri(user, secret)
    return render_template(
        "staff/account/mfa_enrol.html",
        form=form,
        secret=secret,
        qr_code=mfa.qr_code_data_uri(uri),
    ), status


@bp.route("/account/mfa/disable", methods=["POST"])
def account_mfa_disable():
    user = current_user._get_current_object()
    form = CodeForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        mfa.disable_own_mfa(user, form.code.data or "", client_addr=staff_client_addr())
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("staff.account_mfa"))
    db.session.commit()
    flash("Two-step sign-in is off.", "info")
    return redirect(url_for("staff.account"))


def _token_form() -> TokenForm:
    form = TokenForm()
    form.scopes.choices = [SelectChoice(r.value, r.value) for r in sorted(current_user.held_roles)]
    if request.method == "GET":
        form.scopes.data = [r.value for r in current_user.held_roles]
    return form


@bp.route("/account/tokens", methods=["GET", "POST"])
def account_tokens():
    form = _token_form()
    status = 200
    secret = None
    if form.validate_on_submit():
        try:
            _, secret = create_api_token(
                current_user,
                name=form.name.data or "",
                expires_in=timedelta(days=form.expires_in_days.data or 0),
                scopes={Role(s) for s in form.scopes.data or []},
                client_addr=staff_client_addr(),
            )
        except DomainError as exc:
            getattr(form, exc.field or "scopes", form.scopes).errors = [exc.message]
            status = exc.status
        else:
            db.session.commit()
    elif request.method == "POST":
        status = 400
    return render_template(
        "staff/account/tokens.html",
        form=form,
        secret=secret,
        tokens=list_api_tokens(current_user),
        now=utcnow(),
        revoke_form=ConfirmForm(),
    ), status


@bp.route("/account/tokens/<public_id>/revoke", methods=["POST"])
def account_token_revoke(public_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    token = revoke_api_token(current_user, public_id, client_addr=staff_client_addr())
    db.session.commit()
    flash(f"Token “{token.name}” is revoked.", "info")
    return redirect(url_for("staff.account_tokens"))
