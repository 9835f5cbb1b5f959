"""Admin pages for the agency's channels: list, connect, test, disconnect.

Connecting with OAuth leaves the portal: the connect form stores the channel and shows
a link to the network's consent page (a link, not a redirect: the pages' CSP allows
forms to submit only to this site, redirects included); the network sends the browser
back to :func:`channel_oauth_callback` with the state this session was given.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.extensions import db
from portal.http.errors import render_error
from portal.publishing import connections
from portal.publishing.models import ChannelStatus
from portal.services.authz import Permission
from portal.services.errors import DomainError, PermissionDenied
from portal.staff import bp
from portal.staff.account_forms import ConfirmForm
from portal.staff.authz import requires
from portal.staff.channel_forms import KeyConnectForm, OAuthConnectForm, PasswordConnectForm

# The browser session's OAuth attempt: {"state", "channel", "until"}. One at a time.
OAUTH_SESSION_KEY = "channel_oauth"
OAUTH_SECONDS = 600
FORMS: dict[str, type[FlaskForm]] = {
    "oauth": OAuthConnectForm,
    "app_password": PasswordConnectForm,
    "key": KeyConnectForm,
}


def _callback_url() -> str:
    return url_for("staff.channel_oauth_callback", _external=True)


@bp.route("/admin/channels")
@requires(Permission.CHANNEL_MANAGE)
def channel_list():
    return render_template(
        "staff/channels.html",
        channels=connections.list_channels(current_user.agency_id),
        networks=connections.connectable_networks(),
        confirm_form=ConfirmForm(),
        Status=ChannelStatus,
    )


@bp.route("/admin/channels/connect/<network>", methods=["GET", "POST"])
@requires(Permission.CHANNEL_MANAGE)
def channel_connect(network: str):
    cls = connections.connectable(network)
    kind = str(getattr(cls, "connect_with", ""))
    form: Any = FORMS[kind]()
    if request.method == "GET" and request.args.get("name"):
        form.name.data = request.args["name"][:200]  # reconnect: the same channel
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            return _connect(network, kind, form)
        except DomainError as exc:
            db.session.commit()  # the audit entry of a refusal
            form.name.errors = [exc.message]
            status = exc.status
    return render_template(
        "staff/channel_connect.html",
        form=form,
        kind=kind,
        network=network,
        adapter=cls,
        callback_url=_callback_url(),
    ), status


def _connect(network: str, kind: str, form: Any) -> Any:
    data = {k: (v or "") for k, v in form.data.items() if k != "csrf_token"}
    if kind == "oauth":
        start = connections.start_oauth(
            current_user, network=network, redirect_uri=_callback_url(), **data
        )
        db.session.commit()
        session[OAUTH_SESSION_KEY] = {
            "state": start.state,
            "channel": start.channel_id,
            "until": int(time.time()) + OAUTH_SECONDS,
        }
        return render_template(
            "staff/channel_authorize.html", url=start.authorize_url, network=network
        )
    if kind == "app_password":
        row = connections.connect_password(current_user, network=network, **data)
        key = None
    else:
        row, key = connections.connect_key(current_user, network=network, **data)
    db.session.commit()
    if key:
        return render_template("staff/channel_key.html", channel=row, key=key)
    flash(f"{row.name} is connected.", "info")
    return redirect(url_for("staff.channel_list"))


@bp.route("/admin/channels/callback")
@requires(Permission.CHANNEL_MANAGE)
def channel_oauth_callback():
    # Single use: whatever the outcome, this session's attempt ends here.
    pending: Any = session.pop(OAUTH_SESSION_KEY, None)
    if not isinstance(pending, dict) or int(pending.get("until", 0)) < time.time():
        abort(400, "No connection was started in this session (or it took too long).")
    if request.args.get("error"):
        flash("The network did not authorize the connection.", "error")
        return redirect(url_for("staff.channel_list"))
    try:
        row = connections.finish_oauth(
            current_user,
            channel_id=str(pending.get("channel") or ""),
            session_state=str(pending.get("state") or ""),
            state=request.args.get("state", ""),
            code=request.args.get("code", ""),
            redirect_uri=_callback_url(),
        )
    except PermissionDenied as exc:
        db.session.commit()  # the audit entry of the refusal
        return render_error(403, exc.message)
    except DomainError as exc:
        db.session.commit()  # the used-up state and the audit entry
        flash(exc.message, "error")
        return redirect(url_for("staff.channel_list"))
    db.session.commit()
    flash(f"{row.name} is connected as {row.settings.get('account_name', '')}.", "info")
    return redirect(url_for("staff.channel_list"))


@bp.route("/admin/channels/<channel_id>/test", methods=["POST"])
@requires(Permission.CHANNEL_MANAGE)
def channel_test(channel_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    row = connections.get_channel(current_user.agency_id, channel_id)
    ok, message = connections.check_channel(current_user, row)
    db.session.commit()
    if ok:
        flash(f"{row.name}: connected as {message}.", "info")
    else:
        flash(f"{row.name}: {message}", "error")
    return redirect(url_for("staff.channel_list"))


@bp.route("/admin/channels/<channel_id>/disconnect", methods=["POST"])
@requires(Permission.CHANNEL_MANAGE)
def channel_disconnect(channel_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    row = connections.get_channel(current_user.agency_id, channel_id)
    connections.disconnect_channel(current_user, row)
    db.session.commit()
    flash(f"{row.name} is disconnected; its credentials are deleted.", "info")
    return redirect(url_for("staff.channel_list"))
