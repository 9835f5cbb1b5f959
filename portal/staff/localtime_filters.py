"""Times on staff pages, in the signed-in person's agency zone (``{{ moment|local }}``).

Stored times are UTC; a coordinator in New York planning Tuesday's 10:00 slot must
read 10:00, not 14:00 or 15:00 depending on the season.
"""

from __future__ import annotations

from datetime import datetime

from flask_login import current_user

from portal.services.localtime import DEFAULT_FORMAT, format_local
from portal.staff import bp


def staff_zone() -> str:
    if current_user and current_user.is_authenticated and current_user.agency is not None:
        return str(current_user.agency.timezone or "UTC")
    return "UTC"


@bp.app_template_filter("local")
def local_filter(
    moment: datetime | None, fmt: str = DEFAULT_FORMAT, zone: str | None = None
) -> str:
    """``moment`` in ``zone`` (default: the signed-in person's agency), with the zone's
    abbreviation unless ``fmt`` leaves it out; empty for no time."""
    return format_local(moment, zone or staff_zone(), fmt)
