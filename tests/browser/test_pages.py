"""Every page, at desktop and phone widths, light and dark, as a reader meets it.

Served by nginx under the published sub-path. No console errors, no failed request
and nothing fetched from another host or from outside the sub-path, no page-wide
horizontal scroll, no content clipped at the page's edge, and no table or diagram
that hides part of itself in a sideways-scrolling box (checked down to 360 px), and
no serious or critical axe-core violation. An unknown address gets the 404 page,
which is checked like every other page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Browser, Page, Request

from tests.plugins.site import SITE_DIR
from tools.published import moved_pages

VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
NARROWEST = 360
SCHEMES = ("light", "dark")
BLOCKING = {"serious", "critical"}

#: Violations that come from the theme and cannot be fixed by an override, with
#: their upstream reference: rule id → reason. Empty: every one found is fixed.
THEME_VIOLATIONS: dict[str, str] = {}

#: Every built page below the site root (the site is built before collection). The
#: generated code pages (snippet modules, test modules) share one template each: one
#: of each stands for all.
GENERATED = {"_snippets": "eager_loading.html", "_proofs": "test_eager_loading.html"}
#: An address no page has: nginx answers it with the 404 page (404.html itself is
#: served only that way), and moved pages' old addresses only redirect.
UNKNOWN = "guides/no-such/page.html"
NOT_VISITED = {"404.html", *moved_pages()}
PAGES = [
    *sorted(
        address
        for path in SITE_DIR.rglob("*.html")
        if not {"_static", "_sources", *GENERATED} & set(path.parts)
        and (address := path.relative_to(SITE_DIR).as_posix()) not in NOT_VISITED
    ),
    *(f"{folder}/{page}" for folder, page in GENERATED.items()),
    UNKNOWN,
]

# Elements reaching past the right edge of the page with no scrolling box around
# them: a reader on a phone cannot see their end.
CLIPPED = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const element of document.querySelectorAll("article *")) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1) continue;
    let scrolls = false;
    let up = element.parentElement;
    for (; up && up.tagName !== "ARTICLE"; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "auto" || overflow === "scroll") { scrolls = true; break; }
    }
    const name = `${element.tagName.toLowerCase()}.${element.className}`;
    if (!scrolls) found.push(`${name} by ${Math.round(box.right - width)} px`);
  }
  return found.slice(0, 5);
}"""
# Tables and diagrams fit the column on a phone: none may hide part of itself in a
# box that scrolls sideways (code blocks may: their lines are kept).
HIDDEN_IN_SCROLL = """() => {
  const found = [];
  const selector = "article table, article figure, article svg, article img";
  for (const element of document.querySelectorAll(selector)) {
    if (element.closest("div.highlight")) continue;
    for (let up = element; up && up.tagName !== "ARTICLE"; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if ((overflow === "auto" || overflow === "scroll")
          && up.scrollWidth > up.clientWidth + 1) {
        const shown = Math.round(100 * up.clientWidth / up.scrollWidth);
        const classes = element.className.baseVal ?? element.className;
        const name = `${element.tagName.toLowerCase()}.${classes}`;
        found.push(`${name} shows ${shown} % of its width`);
        break;
      }
    }
  }
  return [...new Set(found)].slice(0, 5);
}"""
#: Two frames, or a second at most. Every wait on the page has a bound: a run once
#: hung here for 25 minutes on one page (guides/run-sync.html, a loaded machine)
#: waiting for the page, which held CI until its limit.
SETTLE = """() => new Promise(done => {
  requestAnimationFrame(() => requestAnimationFrame(done));
  setTimeout(done, 1000);
})"""
#: Colour transitions (a tab label's fades in 0.25 s) finished: what a reader sees
#: once the page has switched scheme, not a colour halfway between the two.
TRANSITIONS_DONE = """() => Promise.race([
  Promise.all(document.getAnimations().map(animation => animation.finished)),
  new Promise((_, fail) => setTimeout(() => fail(new Error(
    "animations still running after 5 s: " + document.getAnimations().map(
      a => a.animationName || a.transitionProperty).join(", "))), 5000)),
])"""
# What axe checks where. Only colour contrast depends on the colour scheme, so the
# dark scheme is checked for contrast alone. Code blocks look the same at every
# width: their (many, slow to check) highlighted tokens are contrast-checked at
# desktop width only; every other rule runs on the whole page at both widths.
CONTRAST = {"runOnly": {"type": "rule", "values": ["color-contrast"]}}
NOT_CONTRAST = {"rules": {"color-contrast": {"enabled": False}}}
WITHOUT_CODE = {"exclude": ["div.highlight pre"]}
AXE_RUNS = {
    ("desktop", "light"): [(None, {})],
    ("phone", "light"): [(None, NOT_CONTRAST), (WITHOUT_CODE, CONTRAST)],
    ("desktop", "dark"): [(None, CONTRAST)],
    ("phone", "dark"): [(WITHOUT_CODE, CONTRAST)],
}
AXE_RUN = """([context, options]) => axe.run(context || document,
  {...options, resultTypes: ["violations"]}).then(results =>
  results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    count: v.nodes.length,
    targets: v.nodes.slice(0, 3).map(n => n.target.join(" "))})))"""


@dataclass
class Watch:
    """What went wrong while a page loaded."""

    origin: str
    problems: list[str] = field(default_factory=list)
    #: The one response that may be an error: an unknown address's 404 page.
    expected_404: str | None = None

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("request", self._local_only)

    def _console(self, message) -> None:
        if message.location.get("url") == self.expected_404 and message.text.startswith(
            "Failed to load resource: the server responded with a status of 404"
        ):
            return  # the browser's own note of the expected 404
        if message.type == "error":
            self.problems.append(f"console: {message.text} {message.location}")

    def _failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.url} {request.failure}")

    def _response(self, response) -> None:
        if response.status == 404 and response.url == self.expected_404:
            return
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _local_only(self, request: Request) -> None:
        if not request.url.startswith((self.origin, "data:", "blob:")):
            self.problems.append(f"external request: {request.url}")


def blocking_violations(page: Page, viewport: str, scheme: str) -> list[str]:
    return [
        f"{v['impact']} {v['id']} x{v['count']}: {v['help']} at {v['targets']}"
        for context, options in AXE_RUNS[viewport, scheme]
        for v in page.evaluate(AXE_RUN, [context, options])
        if v["impact"] in BLOCKING and v["id"] not in THEME_VIOLATIONS
    ]


def layout_problems(page: Page, narrow: bool = False) -> list[str]:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth"
        " - document.documentElement.clientWidth"
    )
    problems = [f"page scrolls sideways by {overflow} px"] if overflow > 0 else []
    problems += [f"clipped: {c}" for c in page.evaluate(CLIPPED)]
    if narrow:
        problems += [f"scrolls: {c}" for c in page.evaluate(HIDDEN_IN_SCROLL)]
    return problems


def resize(page: Page, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.evaluate(SETTLE)  # let the page's resize handlers run


@pytest.mark.parametrize("path", PAGES)
def test_page_reads_well_everywhere(browser: Browser, site_url: str, path: str):
    context = browser.new_context(
        viewport={"width": VIEWPORTS["desktop"][0], "height": VIEWPORTS["desktop"][1]}
    )
    page = context.new_page()
    watch = Watch(site_url, expected_404=site_url + UNKNOWN)
    watch.attach(page)
    problems: list[str] = []
    try:
        response = page.goto(site_url + path, wait_until="load")
        assert response is not None
        assert response.status == (404 if path == UNKNOWN else 200), response.url
        page.evaluate(AXE_SCRIPT)
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            page.evaluate(TRANSITIONS_DONE)
            for name, (width, height) in VIEWPORTS.items():
                resize(page, width, height)
                where = f"{name} {scheme}"
                narrow = width <= VIEWPORTS["phone"][0]
                problems += [f"{where}: {p}" for p in layout_problems(page, narrow)]
                found = blocking_violations(page, name, scheme)
                problems += [f"{where}: {v}" for v in found]
        resize(page, NARROWEST, VIEWPORTS["phone"][1])
        problems += [f"{NARROWEST} px: {p}" for p in layout_problems(page, True)]
    finally:
        context.close()
    problems += watch.problems
    assert not problems, f"{path}:\n" + "\n".join(problems)
