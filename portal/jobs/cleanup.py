"""Periodic removal of what interrupted work left behind (see
:func:`portal.services.storage.remove_leftovers`)."""

from __future__ import annotations

import logging

from portal.jobs.periodic import periodic
from portal.services.storage import remove_leftovers

log = logging.getLogger(__name__)


@periodic("storage.remove_leftovers", every_s=3600)
def remove_storage_leftovers() -> None:
    """Hourly; the local runner's scheduler also runs it as it starts, so what a
    killed process left is removed on the next start once it is older than the bound."""
    leftovers = remove_leftovers()
    if leftovers.work_entries or leftovers.store_writes:
        log.info(
            "removed leftovers of interrupted work",
            extra={"work_entries": leftovers.work_entries, "store_writes": leftovers.store_writes},
        )
