"""Generated pages are rewritten only when they change (_ext/generated_pages.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.site.small_sites import build_small_site, small_conf

CONF = small_conf("myst_parser", "proofs", html_theme="furo")
INDEX = "# Home\n\n```{toctree}\na\nb\n```\n"
B_PAGE = "# Page B\n\nAlso {proof}`test_two::test_it`.\n"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """Two pages in the navigation, each citing a test of its own module."""
    site = tmp_path / "site"
    (site / "tests").mkdir(parents=True)
    (site / "conf.py").write_text(CONF)
    (site / "index.md").write_text(INDEX)
    (site / "a.md").write_text("# Page A\n\nProven {proof}`test_one::test_it`.\n")
    (site / "b.md").write_text(B_PAGE)
    for name in ("one", "two"):
        (site / "tests" / f"test_{name}.py").write_text("def test_it():\n    pass\n")
    return site


def _build(site: Path, out: Path) -> dict[str, tuple[int, str]]:
    """Each generated page after a strict build: (mtime, HTML)."""
    build = build_small_site(site, out)
    assert build.returncode == 0, build.stderr
    return {
        page.name: (page.stat().st_mtime_ns, page.read_text())
        for page in sorted((out / "_proofs").glob("*.html"))
    }


def test_only_changed_pages_are_rewritten_and_match_a_cold_build(
    site: Path, tmp_path: Path
) -> None:
    out = site / "_build"
    first = _build(site, out)
    assert set(first) == {"test_one.html", "test_two.html"}

    test_one = site / "tests" / "test_one.py"
    test_one.write_text(test_one.read_text() + "\n\ndef test_more():\n    pass\n")
    edited = _build(site, out)
    assert edited["test_two.html"] == first["test_two.html"]  # not written again
    assert edited["test_one.html"][0] != first["test_one.html"][0]
    assert "test_more" in edited["test_one.html"][1]

    # A new title changes every page's navigation: every generated page follows.
    (site / "b.md").write_text(B_PAGE.replace("# Page B", "# Page B, renamed"))
    renamed = _build(site, out)
    assert all(renamed[name][0] != edited[name][0] for name in renamed)
    assert all("Page B, renamed" in html for _, html in renamed.values())

    cold = _build(site, tmp_path / "cold")
    assert {name: html for name, (_, html) in renamed.items()} == {
        name: html for name, (_, html) in cold.items()
    }


def test_a_deleted_page_is_written_again(site: Path) -> None:
    out = site / "_build"
    _build(site, out)
    (out / "_proofs" / "test_two.html").unlink()
    assert "test_two.html" in _build(site, out)


def test_a_page_no_producer_yields_any_more_is_removed(site: Path) -> None:
    out = site / "_build"
    assert "test_two.html" in _build(site, out)
    (site / "b.md").write_text("# Page B\n")  # no page cites test_two any more
    assert set(_build(site, out)) == {"test_one.html"}
