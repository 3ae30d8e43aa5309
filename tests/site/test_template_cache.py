"""Compiled theme templates are kept between builds (_ext/template_cache.py)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from tests.site.small_sites import build_small_site, small_conf

INDEX = "# Home\n\n```{toctree}\npage\n```\n"


def _site(root: Path, *extensions: str, **settings: str) -> Path:
    (root / "page.md").parent.mkdir(parents=True)
    (root / "conf.py").write_text(
        small_conf(
            "myst_parser",
            *extensions,
            keep_compiled_templates=False,
            html_theme="furo",
            **settings,
        )
    )
    (root / "index.md").write_text(INDEX)
    (root / "page.md").write_text("# A page\n\nSome *prose*.\n")
    return root


def _compiling(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the template files Jinja compiles from now on."""
    compiled: list[str] = []
    compile_source = jinja2.Environment.compile

    def counted(self, source, name=None, filename=None, *args, **kwargs):
        if filename is not None:
            compiled.append(name)
        return compile_source(self, source, name, filename, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    return compiled


def _pages(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): p.read_text() for p in out.glob("*.html")}


def test_a_second_build_reads_the_compiled_templates_and_writes_the_same_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    site = _site(
        tmp_path / "site", "template_cache", template_cache_dir=str(store / "templates")
    )

    compiling = _compiling(monkeypatch)

    first = build_small_site(site, site / "first")
    assert first.returncode == 0, first.stderr
    assert "page.html" in compiling
    kept = {p: p.stat().st_mtime_ns for p in (store / "templates").iterdir()}
    assert len(kept) == len(set(compiling))

    compiling.clear()
    second = build_small_site(site, site / "second")
    assert second.returncode == 0, second.stderr
    # Every template read back, none compiled or written again.
    assert compiling == []
    assert {p: p.stat().st_mtime_ns for p in (store / "templates").iterdir()} == kept

    plain = _site(tmp_path / "plain")
    without = build_small_site(plain, plain / "out")
    assert without.returncode == 0, without.stderr
    assert _pages(site / "second") == _pages(site / "first") == _pages(plain / "out")
