"""The proof of work a tip or a tipster reply carries (portal/services/challenges.py),
checked the same way for the site's forms and the API."""

from __future__ import annotations

from portal.http import ratelimit
from portal.services.challenges import required_bits, verify_and_spend


def check_proof(purpose: str, token: str, counter: str) -> int | None:
    """Spend the proof when one came; without one (no JavaScript), count the
    submission against the stricter limit instead: seconds to wait when that is used
    up, else None. A bad proof raises ``ProofRejected``."""
    if required_bits() == 0:
        return None
    if not counter:
        # The form carries a challenge whether or not a script solved it: no
        # solution is the path without JavaScript.
        return ratelimit.count_public("unproven")
    verify_and_spend(purpose, token, counter)
    return None
