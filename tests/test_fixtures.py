"""The shared fixtures leave the process as they found it."""

from __future__ import annotations

import logging

from config import Settings
from portal import create_app
from tests.conftest import logging_restored


def test_fixtures_logging_restored_undoes_what_create_app_configures(
    settings: Settings,
) -> None:
    root, werkzeug = logging.getLogger(), logging.getLogger("werkzeug")
    root.setLevel(logging.ERROR)
    werkzeug.setLevel(logging.NOTSET)
    handlers = list(root.handlers)

    with logging_restored():
        create_app(settings)
        # What the app configures for the whole process (settings: INFO, text).
        assert root.level == logging.INFO and werkzeug.level == logging.WARNING
        added = [h for h in root.handlers if h not in handlers]
        assert len(added) == 1 and isinstance(added[0], logging.StreamHandler)

    assert root.handlers == handlers
    assert root.level == logging.ERROR and werkzeug.level == logging.NOTSET
