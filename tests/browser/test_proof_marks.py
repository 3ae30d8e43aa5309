"""Proof marks inform without interrupting: one quiet mark per claim, whose detail
opens on tap, click, Enter or Space and closes on Escape, readable on a phone.

The markup is the contract the {proof} role emits (one ``span.proof`` per citation:
a ``button.proof-mark`` controlling a hidden ``span.proof-detail``). The behaviour is
checked on a page of that markup with the site's own stylesheet and script, and on
the built site's pages once the role emits it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from guide_runtime.configurations import ROOT

STATIC = ROOT / "_static"
CONTRACT = """
<!doctype html><html lang="en"><head><title>Proof marks</title></head><body>
<article role="main"><p>A lazy load inside an await is refused
<span class="proof" data-proof-summary="proven on 2 of 4 configurations">
<button type="button" class="proof-mark" aria-expanded="false"
 aria-controls="proof-1">proven on 2/4</button>
<span class="proof-detail" id="proof-1" hidden>
<a href="_proofs/test_concepts.html#test_x">test_concepts::test_x</a>
<span>SQLite · 2.1: passed</span>
<span>PostgreSQL · 2.1: skipped — only on SQLite: the driver's message differs</span>
<span>PostgreSQL · 2.0: not recorded — no suite ran on it for this code</span>
<span>cases: select, selectin, joined, raise</span>
</span></span>, and the rest of the sentence follows.</p>
<p>Another claim<span class="proof" data-proof-summary="proven on 4 of 4">
<button type="button" class="proof-mark" aria-expanded="false"
 aria-controls="proof-2">proven on 4/4</button>
<span class="proof-detail" id="proof-2" hidden><span>SQLite · 2.1: passed</span></span>
</span>.</p></article></body></html>
"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 360, "height": 740}, has_touch=True)
    page.set_content(CONTRACT)
    page.add_style_tag(path=STATIC / "guide.css")
    page.add_script_tag(path=STATIC / "proof-marks.js")
    try:
        yield page
    finally:
        page.close()


def _state(page: Page, number: int) -> tuple[str | None, bool]:
    mark = page.locator(f'button[aria-controls="proof-{number}"]')
    return mark.get_attribute("aria-expanded"), page.locator(
        f"#proof-{number}"
    ).is_visible()


def test_the_mark_says_what_it_proves_without_hover(page: Page) -> None:
    mark = page.get_by_role("button", name="proven on 2/4")
    assert mark.is_visible()
    assert _state(page, 1) == ("false", False)
    # Quiet: no bordered badge, no symbol that reads as a failed test.
    assert mark.evaluate("b => getComputedStyle(b).borderTopStyle") == "none"
    assert "✗" not in page.locator("article").inner_text()


def test_a_tap_opens_and_closes_the_detail(page: Page) -> None:
    mark = page.get_by_role("button", name="proven on 2/4")
    mark.tap()
    assert _state(page, 1) == ("true", True)
    detail = page.locator("#proof-1")
    assert "skipped — only on SQLite" in detail.inner_text()
    assert "cases: select, selectin, joined, raise" in detail.inner_text()
    assert _state(page, 2) == ("false", False)  # the other claim stays closed
    mark.tap()
    assert _state(page, 1) == ("false", False)


def test_the_keyboard_opens_it_and_escape_closes_it(page: Page) -> None:
    page.keyboard.press("Tab")
    assert (
        page.evaluate("() => document.activeElement.getAttribute('aria-controls')")
        == "proof-1"
    )
    page.keyboard.press("Enter")
    assert _state(page, 1) == ("true", True)
    page.keyboard.press("Tab")  # into the detail: its test link
    assert page.evaluate("() => document.activeElement.tagName") == "A"
    page.keyboard.press("Escape")
    assert _state(page, 1) == ("false", False)
    assert (
        page.evaluate("() => document.activeElement.getAttribute('aria-controls')")
        == "proof-1"
    )
    page.keyboard.press("Space")
    assert _state(page, 1) == ("true", True)


def test_an_open_detail_fits_a_phone(page: Page) -> None:
    page.get_by_role("button", name="proven on 2/4").tap()
    right = page.locator("#proof-1").evaluate("e => e.getBoundingClientRect().right")
    assert right <= 360
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360


def test_the_sites_proof_marks_follow_the_contract(
    browser: Browser, site_url: str
) -> None:
    page = browser.new_page()
    try:
        page.goto(site_url + "guides/eager-loading.html")
        marks = page.locator("article button.proof-mark")
        assert marks.count() > 0, "the {proof} role emits one mark per citation"
        for index in range(marks.count()):
            mark = marks.nth(index)
            detail = page.locator(f"#{mark.get_attribute('aria-controls')}")
            assert mark.get_attribute("aria-expanded") == "false"
            assert detail.count() == 1 and not detail.is_visible()
        first = marks.first
        first.click()
        assert page.locator(f"#{first.get_attribute('aria-controls')}").is_visible()
        # One mark per citation: no sentence carries a row of badges.
        citations = page.locator("article span.proof").count()
        assert citations == marks.count()
    finally:
        page.close()
