"""Periodic work of the outcomes (portal/services/outcomes.py): page views counted
in Redis moved into the database, and tips that became actionable recorded as leads."""

from __future__ import annotations

from portal.jobs.periodic import periodic
from portal.services.outcomes import flush_page_views, record_new_leads, refresh_totals


@periodic("outcomes.flush_page_views", every_s=60)
def flush_views() -> None:
    flush_page_views()


@periodic("outcomes.record_leads", every_s=300)
def record_leads() -> None:
    record_new_leads()


@periodic("outcomes.refresh_totals", every_s=300)
def refresh_appeal_totals() -> None:
    refresh_totals()
