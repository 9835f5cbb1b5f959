from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from sqlalchemy import select

from portal.extensions import db
from portal.http.edge import safe_next_url, staff_client_addr
from portal.models import User
from portal.services.authz import Permission, permissions_of
from portal.services.errors import AuthenticationFailed
from portal.services.users import authenticate, record_logout
from portal.staff import bp
from portal.staff.account_views import after_password
from portal.staff.authz import requires
from portal.staff.forms import LoginForm, LogoutForm


# Staff requests only: building the sign-out form makes a CSRF token, which writes the
# session, and a public page must set no cookie at all.
@bp.context_processor
def inject_staff_helpers():
    granted = permissions_of(current_user) if current_user.is_authenticated else frozenset()
    return {"logout_form": LogoutForm(formdata=None), "granted": granted, "Permission": Permission}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("staff.dashboard"))
    # Only a target safe_next_url would follow is carried through the form.
    form = LoginForm(next=safe_next_url(request.args.get("next"), ""))
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
            # With MFA the session starts only after the second step.
            return after_password(user, form.next.data)
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


@bp.route("/admin/users")
@requires(Permission.USER_MANAGE)
def user_list():
    users = db.session.scalars(
        select(User).where(User.agency_id == current_user.agency_id).order_by(User.email)
    ).all()
    return render_template("staff/users.html", users=users)


# The audit log pages (search, export) are in portal/staff/admin_views.py.
