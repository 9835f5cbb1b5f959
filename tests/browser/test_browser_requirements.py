"""Missing browser tooling skips the browser tests on a developer's machine and fails
them in CI (TATTLETALE_TEST_REQUIRE_SERVICES), where a skip would hide a broken run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs pytest in a subprocess

ROOT = Path(__file__).resolve().parents[2]
JOURNEY = "tests/browser/test_footage_journey.py::test_footage_journey_upload_edit_approve"


def run_journey_without_chromium(*, require_services: bool) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TATTLETALE_TEST_REQUIRE_SERVICES", "TATTLETALE_TEST_DATABASE_URL")
    }
    env["TATTLETALE_TEST_CHROMIUM"] = str(ROOT / "no-such-dir" / "chromium")
    if require_services:
        env["TATTLETALE_TEST_REQUIRE_SERVICES"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs", JOURNEY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_browser_tests_skip_without_chromium_by_default() -> None:
    result = run_journey_without_chromium(require_services=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "chromium is not installed" in result.stdout


def test_browser_tests_fail_without_chromium_when_services_are_required() -> None:
    result = run_journey_without_chromium(require_services=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout
    assert "is required (TATTLETALE_TEST_REQUIRE_SERVICES) but not installed" in result.stdout
