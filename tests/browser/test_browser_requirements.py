"""Where the suite must prove the browser journeys (CI sets
TATTLETALE_TEST_REQUIRE_SERVICES), a missing Chromium fails the browser tests instead
of skipping them: a machine without a browser cannot pass by testing less."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BROWSER_TEST = "tests/browser/test_upload_page_defaults.py"


def _run_browser_test(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TATTLETALE_TEST_")}
    environ.update(env, TATTLETALE_TEST_CHROMIUM=str(tmp_path / "no-chromium-here"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", BROWSER_TEST],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_browser_requirements_missing_chromium_fails_when_required(tmp_path: Path) -> None:
    done = _run_browser_test(tmp_path, TATTLETALE_TEST_REQUIRE_SERVICES="1")
    assert done.returncode == 1, done.stdout
    assert "no-chromium-here is required but not installed" in done.stdout
    assert "skipped" not in done.stdout


def test_browser_requirements_missing_chromium_skips_on_a_laptop(tmp_path: Path) -> None:
    done = _run_browser_test(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
