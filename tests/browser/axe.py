"""axe-core in the page under test: the accessibility rules of WCAG 2.1 A and AA.

The vendored ``vendor/axe.min.js`` (see vendor/README.md) is put into the page by the
test, never served by the portal. The pages' Content-Security-Policy allows scripts
from their own origin only, so an inline ``<script>`` with the file's content would be
refused (and the CSP report would fail the test): the script tag's URL is on the
page's own origin and the test answers it from the file, without the portal.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route

AXE_FILE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
#: Not a portal route: the test answers it itself.
AXE_PATH = "/__test__/axe.min.js"

#: WCAG 2.0 and 2.1, levels A and AA (what Section 508 and EN 301 549 refer to), and
#: axe's best practices (landmarks, heading order, one main, ...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
#: Impacts that fail a test; "moderate" and "minor" are printed only.
BLOCKING = frozenset({"serious", "critical"})


@functools.cache
def axe_source() -> bytes:
    data = AXE_FILE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == AXE_SHA256, f"{AXE_FILE} is not the vendored axe-core: {digest}"
    return data


def _answer_axe(route: Route) -> None:
    route.fulfill(status=200, content_type="text/javascript", body=axe_source())


def run_axe(page: Page) -> list[dict[str, Any]]:
    """The page's violations as axe reports them (every impact)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    url = origin + AXE_PATH
    page.route(url, _answer_axe)
    try:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.add_script_tag(url=url)
    finally:
        page.unroute(url, _answer_axe)
    return page.evaluate(
        """async (tags) => {
            const result = await window.axe.run(document, {
                runOnly: {type: "tag", values: tags},
                resultTypes: ["violations"],
            });
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({
                    target: n.target, html: n.html, summary: n.failureSummary,
                })),
            }));
        }""",
        AXE_TAGS,
    )


def describe(violations: list[dict[str, Any]], where: str) -> str:
    """A report a person can act on: rule, impact, what to fix, and each element."""
    lines = [f"axe-core found {len(violations)} violation(s) on {where}:"]
    for violation in violations:
        lines.append(
            f"- [{violation['impact']}] {violation['id']}: {violation['help']}"
            f" ({violation['helpUrl']})"
        )
        for node in violation["nodes"][:8]:
            target = " ".join(
                json.dumps(t) if not isinstance(t, str) else t for t in node["target"]
            )
            lines.append(f"    at {target}: {node['html'][:160]}")
            for summary_line in (node["summary"] or "").splitlines():
                lines.append(f"        {summary_line}")
        if len(violation["nodes"]) > 8:
            lines.append(f"    ... and {len(violation['nodes']) - 8} more")
    return "\n".join(lines)


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in BLOCKING]


def assert_accessible(page: Page, where: str = "") -> list[dict[str, Any]]:
    """Fail on any serious or critical violation; returns the lesser ones."""
    violations = run_axe(page)
    where = where or page.url
    serious = blocking(violations)
    assert not serious, describe(serious, where)
    return violations
