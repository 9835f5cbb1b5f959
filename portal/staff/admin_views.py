"""Admin pages for the audit log: search, page through and export it.

Reading the log is itself recorded (``audit.view``, ``audit.export``, with the
search used), so an insider browsing it for whom a colleague investigated leaves a
trace too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Response, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import Engine

from portal.extensions import db
from portal.http.edge import staff_client_addr
from portal.models import AuditEvent
from portal.services.audit import AuditFilter, iter_events, record_event, search_events
from portal.services.authz import Permission
from portal.staff import bp
from portal.staff.account_forms import AuditSearchForm
from portal.staff.authz import requires

PAGE_SIZE = 50
EXPORT_COLUMNS = (
    "id",
    "occurred_at",
    "actor_label",
    "actor_id",
    "agency_id",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "client_addr",
    "details",
    "prev_hash",
    "entry_hash",
)
# A cell starting with one of these is a formula to a spreadsheet: an attacker who
# can put text in the log (a login name, say) must not get it run on the admin's PC.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _filter_from(form: AuditSearchForm) -> AuditFilter:
    return AuditFilter(
        actor=form.actor.data or "",
        action=form.action.data or "",
        object_id=form.object_id.data or "",
        outcome=form.outcome.data or "",
        since=form.since.data,
        until=form.until.data,
    )


def _search_form() -> AuditSearchForm:
    return AuditSearchForm(formdata=request.args)


@bp.route("/admin/audit")
@requires(Permission.AUDIT_VIEW)
def audit_log():
    form = _search_form()
    if not form.validate():
        return render_template("staff/audit.html", form=form, events=[], next_url=None), 400
    search = _filter_from(form)
    record_event(
        "audit.view",
        agency_id=current_user.agency_id,
        actor=current_user,
        object_type="audit_log",
        client_addr=staff_client_addr(),
        details=search.as_details(),
    )
    db.session.commit()
    events = search_events(
        current_user.agency_id, search, before_id=form.before.data, limit=PAGE_SIZE + 1
    )
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "before" and v}
    next_url = None
    if len(events) > PAGE_SIZE:
        events = events[:PAGE_SIZE]
        next_url = url_for("staff.audit_log", **args, before=events[-1].id)
    export_url = url_for("staff.audit_export", **args)
    return render_template(
        "staff/audit.html", form=form, events=events, next_url=next_url, export_url=export_url
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _csv_rows(engine: Engine, agency_id: int, search: AuditFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        data = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(EXPORT_COLUMNS)
    yield flush()
    for event in iter_events(engine, agency_id, search):
        writer.writerow([_cell(value) for value in _export_values(event)])
        yield flush()


def _export_values(event: AuditEvent) -> list[object]:
    return [
        event.id,
        event.occurred_at.isoformat(),
        event.actor_label,
        event.actor_id,
        event.agency_id,
        event.action,
        event.object_type,
        event.object_id,
        event.outcome,
        event.client_addr,
        json.dumps(event.details, sort_keys=True),
        event.prev_hash,
        event.entry_hash,
    ]


@bp.route("/admin/audit/export.csv")
@requires(Permission.AUDIT_VIEW)
def audit_export():
    form = _search_form()
    if not form.validate():
        return render_template("staff/audit.html", form=form, events=[], next_url=None), 400
    search = _filter_from(form)
    agency_id = current_user.agency_id
    # Recorded and committed before the first byte: an export cut short still shows.
    record_event(
        "audit.export",
        agency_id=current_user.agency_id,
        actor=current_user,
        object_type="audit_log",
        client_addr=staff_client_addr(),
        details=search.as_details(),
    )
    db.session.commit()
    response = Response(_csv_rows(db.engine, agency_id, search), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
