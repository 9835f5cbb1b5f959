"""The accessibility check can fail: on a page with known violations it reports
each one, by rule, with the element, and counts only serious and critical ones."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route

from tests.browser.axe import AXE_FILE, axe_source, blocking, describe, run_axe
from tests.browser.conftest import LiveServer

pytestmark = [pytest.mark.browser]

BROKEN = """<!doctype html><html lang="en"><head><title>Broken</title></head>
<body><main><h1>Broken on purpose</h1>
<img src="/static/none.png">
<p style="color:#aaa;background:#fff">Pale grey on white</p>
<form><input type="text" name="who"></form>
</main></body></html>"""


def test_axe_reports_the_violations_of_a_broken_page(page: Page, live_server: LiveServer) -> None:
    url = f"{live_server.url}/__test__/broken"

    def answer(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=BROKEN)

    page.route(url, answer)
    page.goto(url)
    violations = run_axe(page)
    found = {v["id"]: v["impact"] for v in violations}
    # Each stated by the WCAG rule it breaks: 1.1.1, 1.4.3 and 4.1.2 / 1.3.1.
    assert found.get("image-alt") == "critical"
    assert found.get("color-contrast") == "serious"
    assert found.get("label") == "critical"
    assert {v["id"] for v in blocking(violations)} >= {"image-alt", "color-contrast", "label"}
    report = describe(blocking(violations), "the broken page")
    assert "[critical] image-alt" in report and '<img src="/static/none.png">' in report


def test_vendored_axe_is_the_recorded_release() -> None:
    source = axe_source()
    assert source.startswith(b"/*! axe v4.14.1")
    assert (AXE_FILE.parent / "LICENSE").read_text().startswith("Mozilla Public License")
