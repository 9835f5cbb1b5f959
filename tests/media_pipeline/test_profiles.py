"""Rendition profiles are the pipeline's only data; network limits belong to publishing."""

from __future__ import annotations

import media_pipeline
from media_pipeline import profiles


def test_profiles_carry_no_social_network_limits() -> None:
    # Publishing owns what each network accepts (as data of its own); a second copy
    # here would drift from it.
    for module in (media_pipeline, profiles):
        assert not hasattr(module, "NETWORK_LIMITS")
        assert not hasattr(module, "NetworkLimits")
        assert not hasattr(module, "network_problems")
