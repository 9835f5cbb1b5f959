"""Times shown to people, in the agency's own zone.

Every time is stored in UTC; staff read them in their agency's IANA zone (the
``|local`` template filter), and captions say when an incident happened in local time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DEFAULT_FORMAT = "%Y-%m-%d %H:%M %Z"


def zone_of(name: str | None) -> ZoneInfo:
    """The named zone; UTC for an empty or unknown name (a zone removed from the tz
    database must not take the staff pages down with it)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@cache
def known_zones() -> frozenset[str]:
    """The tz database's zone names (read from disk once per process)."""
    return frozenset(available_timezones())


def is_known_zone(name: str) -> bool:
    return name in known_zones()


def to_local(moment: datetime, zone: str | None) -> datetime:
    """``moment`` (UTC; a naive value is taken as UTC) in ``zone``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone_of(zone))


def format_local(moment: datetime | None, zone: str | None, fmt: str = DEFAULT_FORMAT) -> str:
    """``moment`` written in ``zone`` with its abbreviation ("2026-03-10 10:00 EDT");
    an empty string for no time."""
    if moment is None:
        return ""
    return to_local(moment, zone).strftime(fmt)
