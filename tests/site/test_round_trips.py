"""The round-trips directive's machinery (_ext/round_trips.py); what its table says
about loading strategies is tested in test_eager_loading.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from executed_store import STORE_VARIABLE, cached_run, environment
from round_trips import RoundTrips, tables_in

from tests.site.small_sites import build_small_site, copy_folders, small_conf

TABLE = """\
```{round-trips} eager_loading:_add_authors_with_posts
:parents: 1 2

eager_loading:post_titles_by_author `selectinload`
eager_loading:post_titles_by_author_joined `joinedload`
```
"""
PAGE = f"# Strategies\n\n{TABLE}\nAnd a colon fence:\n\n:::{{note}}\nText.\n:::\n"


def test_tables_are_read_from_the_pages_as_myst_reads_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    broken = TABLE.replace(":parents: 1 2", ":parents: none")
    colon = TABLE.replace("```", ":::")
    page.write_text(f"# Page\n\n{TABLE}\n{broken}\n````markdown\n{TABLE}````\n{colon}")
    tables = list(tables_in([page], ["colon_fence"]))
    # The refused table (its page reports it) and the quoted one are left out.
    assert [table.request() for table in tables] == 2 * [
        {
            "seed": "eager_loading:_add_authors_with_posts",
            "targets": [
                "eager_loading:post_titles_by_author",
                "eager_loading:post_titles_by_author_joined",
            ],
            "sizes": [1, 2],
        }
    ]
    assert tables[0].rows[0] == (
        "eager_loading:post_titles_by_author",
        "`selectinload`",
    )
    assert len(list(tables_in([page]))) == 1  # without colon fences, as MyST


def test_a_table_stored_ahead_is_the_one_its_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    copy_folders(site, "snippets", "tests")  # what the table runs, and its harness
    (site / "conf.py").write_text(small_conf("myst_parser", "round_trips"))
    (site / "index.md").write_text(PAGE)
    monkeypatch.setenv(STORE_VARIABLE, str(tmp_path / "store"))
    [table] = tables_in([site / "index.md"])
    # As a new process would (and the build below does): no environment read
    # while another test had changed it.
    environment.cache_clear()
    # What the work ahead stores under the table's key, made recognisable here: the
    # page must show it rather than measure again.
    recognisable = [[71, 72], [81, 82]]
    cached_run(site, RoundTrips, table.runs, table.request(), lambda: recognisable)
    build = build_small_site(site, site / "out")
    assert build.returncode == 0, build.stderr
    page = (site / "out" / "index.html").read_text()
    assert all(f"<p>{count}</p>" in page for count in (71, 72, 81, 82)), page
