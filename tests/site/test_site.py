"""The site contract: every example is a tested snippet, and the build is strict."""

from __future__ import annotations

import difflib
import re
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from guide_runtime.capture import stable_output
from guide_runtime.configurations import ROOT
from guide_runtime.contract import check_project
from tests.site.small_sites import build_small_site, copy_checkout


def test_the_guide_keeps_its_own_contract() -> None:
    problems = check_project(ROOT)
    assert not problems, "\n".join(map(str, problems))


def test_every_snippet_module_has_a_test_module() -> None:
    for snippet in (ROOT / "snippets").glob("*.py"):
        if snippet.name != "__init__.py":
            assert list((ROOT / "tests").rglob(f"test_{snippet.name}")), snippet


# --- The checker, fed bad input -------------------------------------------------

GOOD_SNIPPET = """\
async def shown(session):
    return 1


# region setup
LIMIT = 10
# endregion setup
"""
GOOD_TEST = "from snippets.demo import LIMIT, shown\n\ndef test():\n    shown, LIMIT\n"
GOOD_PAGE = """\
# Demo

```{literalinclude} ../snippets/demo.py
:pyobject: shown
```

```{literalinclude} ../snippets/demo.py
:start-after: "# region setup"
:end-before: "# endregion setup"
```
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal project that keeps the contract; each test breaks one thing."""
    for folder in ("guides", "snippets", "tests"):
        (tmp_path / folder).mkdir()
    (tmp_path / "index.md").write_text("# Home\n")
    (tmp_path / "guides" / "demo.md").write_text(GOOD_PAGE)
    (tmp_path / "snippets" / "demo.py").write_text(GOOD_SNIPPET)
    (tmp_path / "tests" / "test_demo.py").write_text(GOOD_TEST)
    return tmp_path


def messages(root: Path) -> list[str]:
    return [str(problem) for problem in check_project(root)]


def test_the_minimal_project_is_clean(project: Path) -> None:
    assert messages(project) == []


@pytest.mark.parametrize(
    "block",
    [
        "```python\nx = 1\n```",
        "```py\nx = 1\n```",
        "```{code-block} python\nx = 1\n```",
        ":::{note}\n```python\nx = 1\n```\n:::",
        "````{tab-set}\n```{code} pycon\n>>> 1\n```\n````",
        "```{eval-rst}\n.. code-block:: python\n\n   x = 1\n```",
    ],
)
def test_typed_in_python_is_refused(project: Path, block: str) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(GOOD_PAGE + "\n" + block + "\n")
    [problem] = messages(project)
    assert problem.startswith("guides/demo.md:")
    assert "Python typed into" in problem
    assert "literalinclude" in problem


def test_other_languages_may_be_typed_in(project: Path) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(GOOD_PAGE + "\n```sql\nSELECT 1\n```\n\n```text\nok\n```\n")
    assert messages(project) == []


def test_missing_snippet_file(project: Path) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(GOOD_PAGE.replace("demo.py\n:pyobject", "gone.py\n:pyobject"))
    found = messages(project)
    assert any(
        p.startswith("guides/demo.md:3:") and "snippets/gone.py does not exist" in p
        for p in found
    ), found


def test_missing_region_marker(project: Path) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(GOOD_PAGE.replace("region setup", "region teardown"))
    found = messages(project)
    assert any(
        p.startswith("guides/demo.md:7:")
        and "has no region 'teardown'" in p
        and "# region teardown" in p
        for p in found
    ), found
    # ...and the real region is now shown nowhere.
    assert any("region 'setup' is on no page" in p for p in found), found


def test_missing_pyobject(project: Path) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(GOOD_PAGE.replace(":pyobject: shown", ":pyobject: hidden"))
    found = messages(project)
    assert any("defines no public top-level 'hidden'" in p for p in found), found


def test_unclosed_region(project: Path) -> None:
    snippet = project / "snippets" / "demo.py"
    snippet.write_text(GOOD_SNIPPET.replace("# endregion setup\n", ""))
    found = messages(project)
    assert any(
        p.startswith("snippets/demo.py:5:") and "never closed" in p for p in found
    ), found


def test_line_numbers_are_refused(project: Path) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(GOOD_PAGE.replace(":pyobject: shown", ":lines: 1-2"))
    found = messages(project)
    assert any("selects lines by number (:lines:)" in p for p in found), found


def test_whole_file_include_is_refused(project: Path) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(GOOD_PAGE.replace(":pyobject: shown\n", ""))
    found = messages(project)
    assert any("shows the whole file" in p for p in found), found


def test_include_from_outside_snippets_is_refused(project: Path) -> None:
    page = project / "guides" / "demo.md"
    page.write_text(
        GOOD_PAGE.replace("../snippets/demo.py\n:pyobject", "../conf.py\n:pyobject")
    )
    found = messages(project)
    assert any(
        "pages show code from snippets/ (examples) and implicit_io/ (the toolkit) only"
        in p
        for p in found
    ), found


PACKAGE_MODULE = """\
def api():
    return 2


# region shown_api
def shown_api():
    return api()


# endregion shown_api
"""


def _add_package_module(project: Path, test_name: str, test_body: str) -> None:
    (project / "implicit_io").mkdir()
    (project / "implicit_io" / "tool.py").write_text(PACKAGE_MODULE)
    (project / "tests" / test_name).write_text(test_body)
    page = project / "guides" / "demo.md"
    page.write_text(
        GOOD_PAGE
        + '```{literalinclude} ../implicit_io/tool.py\n:start-after: "# region '
        'shown_api"\n:end-before: "# endregion shown_api"\n```\n'
    )


@pytest.mark.parametrize("test_name", ["test_tool.py", "test_implicit_io_tool.py"])
def test_package_code_is_shown_and_tested_like_examples(
    project: Path, test_name: str
) -> None:
    # Its API (``api``) need not be on a page; what a page shows must be tested.
    good = "from implicit_io.tool import shown_api\n\ndef test():\n    shown_api\n"
    _add_package_module(project, test_name, good)
    assert messages(project) == []


def test_package_region_its_test_never_uses(project: Path) -> None:
    _add_package_module(project, "test_tool.py", "import implicit_io.tool\n")
    [problem] = messages(project)
    assert problem.startswith("implicit_io/tool.py:5:")
    assert "shows shown_api, which tests/test_tool.py never uses" in problem


def test_region_on_no_page(project: Path) -> None:
    snippet = project / "snippets" / "demo.py"
    snippet.write_text(
        GOOD_SNIPPET + "\n# region extra\nOTHER = 2\n# endregion extra\n"
    )
    (project / "tests" / "test_demo.py").write_text(GOOD_TEST + "OTHER\n")
    [problem] = messages(project)
    assert problem.startswith("snippets/demo.py:9:")
    assert "region 'extra' is on no page" in problem


def test_public_function_on_no_page(project: Path) -> None:
    snippet = project / "snippets" / "demo.py"
    snippet.write_text(GOOD_SNIPPET + "\n\ndef unseen():\n    pass\n")
    (project / "tests" / "test_demo.py").write_text(GOOD_TEST + "unseen\n")
    [problem] = messages(project)
    assert "'unseen' is on no page" in problem


def test_region_no_test_exercises(project: Path) -> None:
    (project / "tests" / "test_demo.py").write_text(
        "from snippets.demo import shown\n\ndef test():\n    shown\n"
    )
    [problem] = messages(project)
    assert problem.startswith("snippets/demo.py:5:")
    assert "region 'setup' shows LIMIT, which tests/test_demo.py never uses" in problem


def test_snippet_without_test_module(project: Path) -> None:
    (project / "tests" / "test_demo.py").unlink()
    [problem] = messages(project)
    assert problem == (
        "snippets/demo.py:1: has no test module: create test_demo.py that "
        "runs its examples, in the tests/ folder of its family (tests/examples/ "
        "for a page's examples)."
    )


def test_region_names_may_not_prefix_each_other(project: Path) -> None:
    snippet = project / "snippets" / "demo.py"
    snippet.write_text(
        GOOD_SNIPPET + "\n# region setup_more\nMORE = 1\n# endregion setup_more\n"
    )
    found = messages(project)
    assert any("'setup' is a prefix of 'setup_more'" in p for p in found), found


# --- The built site ---------------------------------------------------------------


def test_strict_build_shows_the_tested_versions(built_site: Path) -> None:
    home = (built_site / "index.html").read_text()
    assert metadata.version("sqlalchemy") in home
    assert metadata.version("aiosqlite") in home


def test_pages_load_nothing_from_the_internet(built_site: Path) -> None:
    # A canonical link names the published address; the browser fetches nothing.
    remote = re.compile(
        r"""<(script|link(?! rel="canonical")|img|iframe)\b[^>]*\b(src|href)="""
        r"""["'](https?:)?//"""
    )
    for page in built_site.rglob("*.html"):
        match = remote.search(page.read_text())
        assert match is None, f"{page.relative_to(built_site)} loads {match.group(0)}"


def test_captured_output_is_on_the_page(built_site: Path) -> None:
    page = (built_site / "guides" / "eager-loading.html").read_text()
    assert "2 statements sent" in page
    assert "greenlet_spawn has not been called" in page


def test_no_sql_is_claimed_only_where_a_database_was_given(built_site: Path) -> None:
    # run_sync:legacy_report_called_directly has a session and fails before any SQL.
    assert "No SQL sent" in (built_site / "guides" / "run-sync.html").read_text()
    # migration:greenlet_requirement reads package metadata; it has no database.
    migration = (built_site / "guides" / "migration.html").read_text()
    assert "greenlet&gt;=1; extra == " in migration.replace("&quot;", '"')
    assert "No SQL sent" not in migration


def test_a_parallel_build_equals_a_serial_one(built_site: Path) -> None:
    # The suite builds in parallel, as make html does; one process must agree.
    # The serial build keeps its output beside the site's, as the site keeps its
    # own: on a fresh checkout (CI) both are cold builds; in the editing loop both
    # are incremental, and only what changed is read and written again.
    # It runs in this process, like the small sites' builds (tests/small_sites.py).
    # Kept in _build like the site, so that the next run only updates it (in the
    # one worker of the site's tests).
    serial = built_site.with_name("html-serial")
    build = build_small_site(ROOT, serial)
    assert build.returncode == 0, build.stderr
    parallel = {p.relative_to(built_site) for p in built_site.rglob("*.html")}
    assert {p.relative_to(serial) for p in serial.rglob("*.html")} == parallel
    for page in sorted(parallel):
        one, two = (serial / page).read_text(), (built_site / page).read_text()
        difference = difflib.unified_diff(
            one.split(">"), two.split(">"), "serial", "parallel", lineterm="", n=1
        )
        assert one == two, f"{page}:\n" + "\n".join(list(difference)[:40])


def test_copy_button_is_installed(built_site: Path) -> None:
    assert (built_site / "_static" / "copybutton.js").is_file()
    config = textwrap.dedent((built_site / "_static" / "copybutton.js").read_text())
    assert "linenos" in config


def test_the_build_fails_on_bad_input_and_names_the_file(tmp_path: Path) -> None:
    # The real extensions and snippets, with one bad page in place of the guide.
    site = tmp_path / "site"
    copy_checkout(site, "guides")
    (site / "index.md").write_text("# Home\n\n```{toctree}\nguides/bad\n```\n")
    (site / "guides").mkdir()
    (site / "guides" / "bad.md").write_text(
        "# Bad\n"
        + "\n```python\nprint('typed in')\n```\n"
        + "\n```{captured-run} eager_loading:post_titles_by_author\n"
        + ":expect: error\n```\n"
        + "\n```{captured-run} nowhere:function\n```\n"
        + "\n```{generated-table} nowhere:rows\n```\n"
        + "\n```{round-trips} nowhere:_seed\n:parents: 1\n\nnowhere:run Row\n```\n"
    )
    # No rule pages in this copy: a registry without rules.
    (site / "registry_without_rules.py").write_text("RULES = {}\n")
    registry = "-Drule_registry=registry_without_rules:RULES"
    build = build_small_site(site, site / "_build" / "html", registry)
    assert build.returncode != 0
    log = build.stderr
    assert re.search(r"guides/bad.md:\d+: Python typed into the page", log), log
    assert "marked ':expect: error' but returned {'ada'" in log, log
    assert "snippets/nowhere.py does not exist" in log, log
    # The other directives that run snippets name a missing module the same way.
    for directive, target in (("generated-table", "rows"), ("round-trips", "_seed")):
        assert f"{directive} 'nowhere:{target}': snippets/nowhere.py does not" in log


def guide_pages(site: Path) -> list[Path]:
    """The pages written in guides/ and the home page (not generated code pages)."""
    return [site / "index.html", *sorted((site / "guides").rglob("*.html"))]


def test_captured_output_is_the_same_on_every_build(built_site: Path) -> None:
    """No object ids or addresses: two builds show the same bytes."""
    noise = re.compile(r"\d{6,} param|0x[0-9a-f]{6,}")
    for page in guide_pages(built_site):
        match = noise.search(page.read_text())
        assert match is None, f"{page.relative_to(built_site)} shows {match[0]}"


@pytest.mark.only_on(
    engine="sqlite",
    sqlalchemy="2.1",
    reason="the anonymous parameter it checks is in the SQL of the StatementError "
    "2.1 raises on aiosqlite; a bare MissingGreenlet (2.0, asyncpg) names no SQL",
)
def test_an_anonymous_parameter_is_shown_renumbered(built_site: Path) -> None:
    troubleshooting = (built_site / "guides" / "troubleshooting.html").read_text()
    assert "%(param_1)s" in troubleshooting


def test_stable_output_renumbers_parameters_in_order() -> None:
    text = "[{'%(140 param)s': 1, '%(99 param)s': 2}] %(140 param)s <User at 0x7f12ab>"
    assert stable_output(text) == (
        "[{'%(param_1)s': 1, '%(param_2)s': 2}] %(param_1)s <User>"
    )


@pytest.mark.only_on(
    engine="sqlite",
    sqlalchemy="2.1",
    reason="only a wrapped failed load leaves the warning: aiosqlite on 2.1; "
    "2.0 and asyncpg raise a bare MissingGreenlet and leave none",
)
def test_the_never_awaited_warning_links_its_explanation(built_site: Path) -> None:
    page = (built_site / "guides" / "eager-loading.html").read_text()
    assert "was never awaited" in page
    assert re.search(r'href="troubleshooting.html#never-awaited"', page), page


def test_each_example_links_its_whole_module(built_site: Path) -> None:
    page = (built_site / "guides" / "eager-loading.html").read_text()
    assert 'href="../_snippets/eager_loading.html"' in page
    module = (built_site / "_snippets" / "eager_loading.html").read_text()
    source = (ROOT / "snippets" / "eager_loading.py").read_text()
    first_import = next(line for line in source.splitlines() if "import" in line)
    assert first_import.split()[-1] in module  # imports included


def test_included_code_ends_without_blank_lines(built_site: Path) -> None:
    for page in (built_site / "guides").rglob("*.html"):
        assert "\n\n</pre>" not in page.read_text(), page


def test_sqlalchemy_documentation_references_are_links(built_site: Path) -> None:
    linked = 0
    for page in guide_pages(built_site):
        html = page.read_text()
        text = re.sub(r'<a [^>]*href="https://docs\.sqlalchemy\.org[^"]*"', "<a", html)
        linked += html.count('href="https://docs.sqlalchemy.org')
        assert "https://docs.sqlalchemy.org" not in re.sub(r"<[^>]+>", "", text), page
    assert linked >= 25


def test_the_stylesheet_is_well_formed() -> None:
    """A lost brace (a merge slip) silently drops every rule after it."""
    css = re.sub(
        r"/\*.*?\*/", "", (ROOT / "_static" / "guide.css").read_text(), flags=re.S
    )
    depth = 0
    for char in css:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0


def test_the_landing_page_starts_with_reading_paths(built_site: Path) -> None:
    home = (built_site / "index.html").read_text()
    paths = [
        "New to async SQLAlchemy",
        "Holding an error message",
        "Reviewing code",
        "Adopting enforcement in a service",
    ]
    positions = [home.index(path) for path in paths]
    assert positions == sorted(positions)
    assert positions[-1] < home.index('class="rule-index')
    article = home[home.index("<article") : home.index("</article>")]
    assert "toctree-l1" not in article  # the sidebar is not repeated


def test_counts_are_generated_from_the_registry(built_site: Path) -> None:
    from _ext.rules import load_rules
    from implicit_io.rules import RULES

    count = sum(not rule.retired for rule in load_rules(ROOT, RULES).values())
    policy = (built_site / "guides" / "policy.html").read_text()
    assert f"The policy has {count} rules" in policy
    assert f"Each of the {count} rules" in (built_site / "index.html").read_text()


def test_glossary_terms_link_their_definition_at_first_use(built_site: Path) -> None:
    concepts = (built_site / "guides" / "concepts.html").read_text()
    for anchor in ("term-N-1", "term-event-loop", "term-lazy-load"):
        assert concepts.count(f'href="glossary.html#{anchor}"') == 1, anchor
    rule = (built_site / "guides" / "rules" / "io101.html").read_text()
    assert 'href="../glossary.html#term-advisory"' in rule  # the level, explained
