"""Every page, at desktop and phone widths, light and dark, as a reader meets it.

No console errors, no failed request and nothing fetched from another host, no
page-wide horizontal scroll, and no serious or critical axe-core violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from tests.conftest import SITE_DIR

VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
SCHEMES = ("light", "dark")
BLOCKING = {"serious", "critical"}

#: Violations that come from the theme and cannot be fixed by an override, with
#: their upstream reference: rule id → reason. Empty: every one found is fixed.
THEME_VIOLATIONS: dict[str, str] = {}

#: Every built page, by path below the site root (generated at collection time
#: from the build of the main suite; the test itself checks the fresh build).
PAGES = sorted(
    path.relative_to(SITE_DIR).as_posix()
    for path in SITE_DIR.rglob("*.html")
    if "_static" not in path.parts and "_sources" not in path.parts
) or ["index.html"]

_axe = Axe()


@dataclass
class Watch:
    """What went wrong while a page loaded."""

    origin: str
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on(
            "console",
            lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"),
        )
        page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        page.on(
            "requestfailed",
            lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"),
        )
        page.on(
            "response",
            lambda r: (
                r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}")
            ),
        )
        page.on("request", self._local_only)

    def _local_only(self, request) -> None:
        url = request.url
        if not url.startswith((self.origin, "data:", "blob:")):
            self.problems.append(f"external request: {url}")


def blocking_violations(page: Page) -> list[str]:
    results = _axe.run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] not in BLOCKING or violation["id"] in THEME_VIOLATIONS:
            continue
        targets = [" ".join(map(str, n["target"])) for n in violation["nodes"][:3]]
        found.append(
            f"{violation['impact']} {violation['id']} ×{len(violation['nodes'])}: "
            f"{violation['help']} at {targets}"
        )
    return found


def page_overflow(page: Page) -> int:
    """How far the page scrolls sideways (0: not at all)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth"
        " - document.documentElement.clientWidth"
    )


@pytest.mark.parametrize("path", PAGES)
def test_page_reads_well_everywhere(browser: Browser, site_url: str, path: str):
    context = browser.new_context(
        viewport=dict(zip(("width", "height"), VIEWPORTS["desktop"], strict=True))
    )
    page = context.new_page()
    watch = Watch(site_url)
    watch.attach(page)
    problems: list[str] = []
    try:
        page.goto(site_url + path, wait_until="load")
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            for name, (width, height) in VIEWPORTS.items():
                page.set_viewport_size({"width": width, "height": height})
                where = f"{name} {scheme}"
                overflow = page_overflow(page)
                if overflow > 0:
                    problems.append(f"{where}: page scrolls sideways by {overflow} px")
                problems += [f"{where}: {v}" for v in blocking_violations(page)]
    finally:
        context.close()
    problems += watch.problems
    assert not problems, f"{path}:\n" + "\n".join(problems)
