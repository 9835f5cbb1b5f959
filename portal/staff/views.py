from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import AuditEvent, User
from portal.services.audit import record_event
from portal.services.authz import Permission, permissions_of
from portal.services.cases import get_case_for, visible_cases_query
from portal.services.errors import AuthenticationFailed
from portal.services.sessions import start_session
from portal.services.users import authenticate, record_logout
from portal.staff import bp
from portal.staff.authz import requires
from portal.staff.forms import LoginForm, LogoutForm
from portal.web import safe_next_url, staff_client_addr


@bp.app_context_processor
def inject_staff_helpers():
    granted = permissions_of(current_user) if current_user.is_authenticated else frozenset()
    return {"logout_form": LogoutForm(formdata=None), "granted": granted, "Permission": Permission}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("staff.dashboard"))
    form = LoginForm(next=request.args.get("next", ""))
    status = 200
    if form.validate_on_submit():
        try:
            user = authenticate(
                form.email.data or "", form.password.data or "", client_addr=staff_client_addr()
            )
        except AuthenticationFailed as exc:
            form.password.errors = [exc.message]
            status = 401
        else:
            # A fresh session at sign-in: nothing from before (a planted session id,
            # flashed messages of another visitor on a shared terminal) carries over.
            session.clear()
            start_session(user, client_addr=staff_client_addr())
            db.session.commit()
            login_user(user)
            return redirect(safe_next_url(form.next.data, url_for("staff.dashboard")))
    elif request.method == "POST":
        status = 400
    return render_template("staff/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        record_logout(current_user, client_addr=staff_client_addr())
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("staff.login"))


@bp.route("/")
def dashboard():
    cases = db.session.scalars(visible_cases_query(current_user).limit(50)).all()
    return render_template("staff/dashboard.html", cases=cases)


@bp.route("/cases/<public_id>")
@requires(Permission.CASE_VIEW)
def case_detail(public_id: str):
    case = get_case_for(current_user, public_id)
    return render_template("staff/case_detail.html", case=case)


@bp.route("/admin/users")
@requires(Permission.USER_MANAGE)
def user_list():
    users = db.session.scalars(
        select(User).where(User.agency_id == current_user.agency_id).order_by(User.email)
    ).all()
    return render_template("staff/users.html", users=users)


@bp.route("/admin/audit")
@requires(Permission.AUDIT_VIEW)
def audit_log():
    # Reading the audit log is itself an audited event.
    record_event(
        "audit.view",
        actor=current_user,
        object_type="audit_log",
        client_addr=staff_client_addr(),
    )
    db.session.commit()
    events = db.session.scalars(
        select(AuditEvent)
        .where(or_(AuditEvent.agency_id == current_user.agency_id, AuditEvent.agency_id.is_(None)))
        .order_by(AuditEvent.id.desc())
        .limit(200)
    ).all()
    return render_template("staff/audit.html", events=events)
