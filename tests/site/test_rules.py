"""Rules: stable codes and URLs, the generated index and JSON, bad input refused."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from bs4 import BeautifulSoup, SoupStrainer
from sphinx.errors import ConfigError
from sqlalchemy.ext.asyncio import AsyncSession

from _ext.rule_page import SECTIONS, check_page, check_rule
from _ext.rules import load_rules, rule_page_problems, with_examples
from guide_runtime.configurations import ROOT
from guide_runtime.contract import check_project
from guide_runtime.pages import FrontMatterError, front_matter
from implicit_io.guard import KnownException
from implicit_io.rule_links import KNOWN_RULES, docs_base_url
from implicit_io.rules import RULES, Rule
from implicit_io.statement_budgets import StatementBudgetExceeded
from snippets.rules import (
    _SLOW_QUERY_SECONDS,
    EventLoopBlocked,
    documented_exception,
    event_loop_must_keep_running,
    legacy_report_within_budget,
    post_counts_awaited_within_budget,
    post_counts_eager_within_budget,
    preloaded_report_within_budget,
    undocumented_exception,
    warehouse_report_in_a_thread,
    warehouse_report_on_the_loop,
)
from tests.plugins.site import SITE_GROUP
from tests.site.small_sites import build_small_site, copy_checkout

# The published rules and their URLs. Reviews link to these pages for years: a code
# or URL may be added here, never removed or changed. Retire a rule instead.
PUBLISHED = {
    "IO101": "guides/rules/io101.html",
    "IO102": "guides/rules/io102.html",
    "IO103": "guides/rules/io103.html",
    "IO104": "guides/rules/io104.html",
    "IO105": "guides/rules/io105.html",
    "IO106": "guides/rules/io106.html",
    "IO107": "guides/rules/io107.html",
    "IO201": "guides/rules/io201.html",
    "IO202": "guides/rules/io202.html",
    "IO203": "guides/rules/io203.html",
    "IO204": "guides/rules/io204.html",
    "IO301": "guides/rules/io301.html",
    "IO302": "guides/rules/io302.html",
    "IO401": "guides/rules/io401.html",
    "IO402": "guides/rules/io402.html",
}


def broken_promises(site: Path) -> list[str]:
    """Every published code or URL the built site no longer serves."""
    problems = []
    listed = {
        rule["code"]: rule
        for rule in json.loads((site / "rules.json").read_text())["rules"]
    }
    for code, url in PUBLISHED.items():
        if code not in listed:
            problems.append(f"{code} is missing from rules.json")
        elif listed[code]["url"] != url:
            problems.append(f"{code} moved from {url} to {listed[code]['url']}")
        if not (site / url).is_file():
            problems.append(f"{code}: {url} is not in the built site")
    return problems


def test_every_published_rule_is_still_served(built_site: Path) -> None:
    assert broken_promises(built_site) == []


def test_removing_a_rule_breaks_the_promise(built_site: Path, tmp_path: Path) -> None:
    # A copy of what broken_promises reads: rules.json and the rule pages.
    site = tmp_path / "site"
    shutil.copytree(built_site / "guides" / "rules", site / "guides" / "rules")
    shutil.copy(built_site / "rules.json", site / "rules.json")
    assert broken_promises(site) == []
    index = json.loads((site / "rules.json").read_text())
    index["rules"] = [rule for rule in index["rules"] if rule["code"] != "IO104"]
    (site / "rules.json").write_text(json.dumps(index))
    (site / "guides" / "rules" / "io203.html").unlink()
    assert broken_promises(site) == [
        "IO104 is missing from rules.json",
        "IO203: guides/rules/io203.html is not in the built site",
    ]


def test_the_registry_holds_exactly_the_published_codes() -> None:
    rules = load_rules(ROOT, RULES)
    assert sorted(rules) == sorted(PUBLISHED)
    for code, rule in rules.items():
        assert f"{rule.docname}.html" == PUBLISHED[code]


def test_rules_json_describes_every_rule(built_site: Path) -> None:
    rules = load_rules(ROOT, RULES)
    listed = json.loads((built_site / "rules.json").read_text())["rules"]
    assert [rule["code"] for rule in listed] == sorted(PUBLISHED)
    for entry in listed:
        rule = rules[entry["code"]]
        assert entry == {
            "code": rule.code,
            "name": rule.name,
            "level": rule.level,
            "phase": rule.phase,
            "summary": rule.summary,
            "url": PUBLISHED[rule.code],
            "retired": False,
            "replaced_by": None,
        }


def test_the_rules_index_links_every_rule(built_site: Path) -> None:
    for page, prefix in (
        ("guides/rules/index.html", ""),
        ("index.html", "guides/rules/"),
    ):
        html = (built_site / page).read_text()
        for code, url in PUBLISHED.items():
            target = prefix + Path(url).name
            assert re.search(rf'href="{re.escape(target)}"[^>]*>.*?{code}', html), (
                page,
                code,
            )


def test_every_rule_page_shows_level_phase_and_review_link(built_site: Path) -> None:
    for code, url in PUBLISHED.items():
        html = (built_site / url).read_text()
        rule = load_rules(ROOT, RULES)[code]
        assert f"Decision level: {rule.level}" in html
        assert f"Phase {rule.phase}:" in html
        assert f'data-label="{code} {rule.name}"' in html
        assert "_static/rule-link.js" in html
    script = (built_site / "_static" / "rule-link.js").read_text()
    assert 'link[rel="canonical"]' in script and "window.location" in script


def test_every_rule_shows_a_failing_and_a_passing_run(built_site: Path) -> None:
    for code in PUBLISHED:
        html = (built_site / PUBLISHED[code]).read_text()
        assert "Fails: the pattern this rule forbids" in html, code
        assert "Passes: what to write instead" in html, code
        page = BeautifulSoup(html, "html.parser", parse_only=SoupStrainer("section"))
        # Only the example raised: on every configuration recorded (one tab each).
        example, instead = (
            page.select("section#example"),
            page.select("section#use-instead"),
        )
        assert example[0].select(".captured-error"), code
        assert not instead[0].select(".captured-error"), code


# --- Bad input -------------------------------------------------------------------

GOOD_RULE = """\
---
rule:
  code: {code}
---

# {code} · demo-rule

""" + "".join(f"## {section}\n\nText.\n\n" for section in SECTIONS)
#: A registry of one rule, for pages of a small site.
DEMO = {"IO101": Rule("IO101", "demo-rule", "advisory", 1, "A demo.")}


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "guides" / "rules"
    folder.mkdir(parents=True)
    (folder / "io101.md").write_text(GOOD_RULE.format(code="IO101"))
    return folder


def _refusal(rules_dir: Path, registry: dict = DEMO) -> str:
    """The registry's refusal (the build stops at its start)."""
    with pytest.raises(ConfigError) as raised:
        load_rules(rules_dir.parent.parent, registry)
    return str(raised.value)


def _page_problems(rules_dir: Path, registry: dict = DEMO) -> list[str]:
    """What the build reports of the rule pages: each page's front matter as it is
    read, then the pages against the registry."""
    root, pages, problems = rules_dir.parent.parent, {}, []
    for path in sorted(rules_dir.glob("io*.md")):
        where = path.relative_to(root).as_posix()
        try:
            pages[where] = front_matter(root, path).model_dump()["rule"]
        except FrontMatterError as error:
            problems.append(str(error))
    return problems + rule_page_problems(pages, registry)


def test_a_duplicate_code_is_refused(rules_dir: Path) -> None:
    (rules_dir / "io102.md").write_text(GOOD_RULE.format(code="IO101"))
    assert _page_problems(rules_dir) == [
        "guides/rules/io102.md: rule code IO101 is already used by "
        "guides/rules/io101.md. Codes are never reused; pick the next free one."
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("code: IO101", "code: X1", "(the rule's code, like IO101), not 'X1'"),
        (
            "code: IO101",
            "code: IO101\n  example: eager_loading",
            "as 'module:function'",
        ),
        # The rule's own description lives in the registry only.
        ("code: IO101", "code: IO101\n  name: demo", "unknown field 'rule.name'"),
        ("code: IO101", "code: IO109", "rule IO109 is not in the registry"),
    ],
    ids=["code", "example", "copied", "unregistered"],
)
def test_a_bad_rule_page_is_refused(
    rules_dir: Path, old: str, new: str, message: str
) -> None:
    page = rules_dir / "io101.md"
    page.write_text(GOOD_RULE.format(code="IO101").replace(old, new))
    [refusal] = _page_problems(rules_dir)
    assert refusal.startswith("guides/rules/io101.md: ")
    assert message in refusal


def test_a_rule_page_without_a_rule_mapping_is_refused(rules_dir: Path) -> None:
    page = rules_dir / "io101.md"
    page.write_text(
        GOOD_RULE.format(code="IO101").replace("rule:\n  code: IO101\n", "")
    )
    assert _page_problems(rules_dir) == [
        "guides/rules/io101.md: add a 'rule:' mapping to the front matter (its code, "
        "example and use_instead)."
    ]


def test_a_rule_page_named_for_another_code_is_refused(rules_dir: Path) -> None:
    (rules_dir / "io101.md").write_text(GOOD_RULE.format(code="IO102"))
    other = {**DEMO, "IO102": replace(DEMO["IO101"], code="IO102", name="other")}
    assert _page_problems(rules_dir, other) == [
        "guides/rules/io101.md: holds rule IO102; rename the file to io102.md so its "
        "URL is stable."
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": "IO102", "name": "other"}, "guides/rules/io102.md does not exist"),
        ({"replaced_by": "IO199"}, "IO101 is replaced_by unknown rule IO199"),
        ({"summary": "Use `lazy= always."}, "summary has an unbalanced backtick"),
        ({"phase": 4}, "phase 4 is not one of the enforcement phases [1, 2, 3]"),
    ],
    ids=["no-page", "replaced", "backtick", "phase"],
)
def test_a_registry_rule_the_site_cannot_show_is_refused(
    rules_dir: Path, change: dict, message: str
) -> None:
    changed = replace(DEMO["IO101"], **change)
    assert message in _refusal(rules_dir, {**DEMO, changed.code: changed})


def _example_problems(root: Path) -> list[str]:
    """What the build reports of every rule page's named examples."""
    problems = []
    for rule in load_rules(root, DEMO).values():
        path = root / f"{rule.docname}.md"
        rule = with_examples(rule, front_matter(root, path).rule.model_dump())
        problems += check_rule(root, rule, path.read_text(encoding="utf-8"))
    return problems


def _skeleton_problems(rules_dir: Path, text: str) -> list[str]:
    page = rules_dir / "io101.md"
    page.write_text(text)
    rule = load_rules(rules_dir.parent.parent, DEMO)["IO101"]
    return check_page(page, "guides/rules/io101.md", rule)


def test_a_complete_skeleton_passes(rules_dir: Path) -> None:
    assert _skeleton_problems(rules_dir, GOOD_RULE.format(code="IO101")) == []


def test_a_missing_section_is_refused(rules_dir: Path) -> None:
    text = GOOD_RULE.format(code="IO101").replace("## Exceptions\n\nText.\n\n", "")
    [problem] = _skeleton_problems(rules_dir, text)
    assert problem.startswith("guides/rules/io101.md:28: section '## Exceptions'")
    assert "is missing. Add it after '## How it is enforced'" in problem


def test_an_out_of_order_section_is_refused(rules_dir: Path) -> None:
    text = GOOD_RULE.format(code="IO101").replace("## Why", "## Tmp", 1)
    text = text.replace("## Example", "## Why", 1).replace("## Tmp", "## Example", 1)
    [problem] = _skeleton_problems(rules_dir, text)
    assert problem.startswith(
        "guides/rules/io101.md:16: section '## Why' is out of order: move it "
        "after '## What it requires'."
    )


def test_an_unknown_section_is_refused(rules_dir: Path) -> None:
    text = GOOD_RULE.format(code="IO101").replace("## Why", "## Rationale")
    [problem] = _skeleton_problems(rules_dir, text)
    assert "'## Rationale' is not a rule-page section. Rename it to '## Why'" in problem


def test_a_section_after_references_is_refused(rules_dir: Path) -> None:
    text = GOOD_RULE.format(code="IO101") + "## See also\n"
    [problem] = _skeleton_problems(rules_dir, text)
    assert "'## See also' comes after '## References'" in problem


def test_headings_in_code_blocks_do_not_count(rules_dir: Path) -> None:
    text = GOOD_RULE.format(code="IO101") + "```text\n## Not a heading\n```\n"
    assert _skeleton_problems(rules_dir, text) == []


def test_a_wrong_title_is_refused(rules_dir: Path) -> None:
    text = GOOD_RULE.format(code="IO101").replace("# IO101 · demo-rule", "# Demo")
    [problem] = _skeleton_problems(rules_dir, text)
    assert problem == (
        "guides/rules/io101.md:6: the page must have one title, '# IO101 · demo-rule'."
    )


def test_examples_must_name_existing_snippet_functions(rules_dir: Path) -> None:
    root = rules_dir.parent.parent
    (root / "snippets").mkdir()
    (root / "snippets" / "demo.py").write_text("async def works(session): ...\n")
    page = rules_dir / "io101.md"
    page.write_text(
        GOOD_RULE.format(code="IO101").replace(
            "code: IO101",
            "code: IO101\n  example: demo:fails\n  use_instead: gone:works",
        )
    )
    problems = _example_problems(root)
    assert problems == [
        "guides/rules/io101.md: example 'demo:fails': snippets/demo.py defines no "
        "public top-level function 'fails'. Fix the name.",
        "guides/rules/io101.md: names example 'demo:fails' but never shows it. Add "
        "'```{rule-example} example' to its section.",
        "guides/rules/io101.md: use_instead 'gone:works' names snippets/gone.py, "
        "which does not exist. Fix the module name.",
        "guides/rules/io101.md: names use_instead 'gone:works' but never shows it. "
        "Add '```{rule-example} use_instead' to its section.",
    ]


def test_a_live_rule_without_examples_is_refused(rules_dir: Path) -> None:
    root = rules_dir.parent.parent
    problems = _example_problems(root)
    assert [p.split(". Add")[0] for p in problems] == [
        "guides/rules/io101.md: the rule front matter names no example",
        "guides/rules/io101.md: the rule front matter names no use_instead",
    ]


# --- Whole builds of a changed copy of this site --------------------------------
# Each variant copies the site, changes it, and builds it strictly, once per worker
# that needs it (a session fixture: a module one would be built again each time
# pytest-xdist hands the worker this module's tests between other modules').


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _break_rule_input(site: Path) -> None:
    rules = site / "guides" / "rules"
    (site / "guides" / "reference.md").write_text("# Ref\n\nSee {rule}`IO199`.\n")
    _edit(rules / "io103.md", "## Exceptions\n", "## Caveats\n")
    _edit(rules / "io102.md", "code: IO102", "code: IO102\n  owner: me")
    _edit(
        rules / "io101.md",
        "example: eager_loading:post_titles_by_author_lazy",
        "example: eager_loading:post_titles_lazy",
    )


def _duplicate_a_code(site: Path) -> None:
    _edit(site / "guides" / "rules" / "io104.md", "code: IO104", "code: IO103")


RETIRED_REGISTRY = """\
from dataclasses import replace

from implicit_io.rules import RULES as LIVE

RULES = {**LIVE, "IO105": replace(LIVE["IO105"], replaced_by="IO104")}
"""


def _retire_a_rule(site: Path) -> None:
    # The registry a service's toolkit would ship with IO105 retired; the copy's
    # conf.py puts its own folder first on the path.
    (site / "registry_with_io105_retired.py").write_text(RETIRED_REGISTRY)


# name: (change, builder). Each variant copies only the rule pages; only the
# retired rule's pages are read, so the others use the dummy builder (no HTML). That
# build must be green under -W; in a copy holding only the rule pages, the
# links to the other pages and the snippet contract are incomplete by design, so
# those two warning types (and only those) are suppressed there. It is also
# published elsewhere (VARIANT_ENV): one HTML build serves its three tests, whose
# checks do not overlap (the tombstone's content; every page's address; the bytes
# of the shown output). One of them compares it with the built site, in the built
# site's worker; the other two run there too (SITE_GROUP), so one worker builds it.
VARIANTS = {
    "bad_input": (_break_rule_input, "dummy"),
    "duplicate": (_duplicate_a_code, "dummy"),
    "retired_and_published_elsewhere": (_retire_a_rule, "html"),
}
ELSEWHERE = "https://wiki.corp.test/platform/orm-io/"
RETIRED_VARIANT_PAGES = [
    f"guides/rules/{name}.md" for name in ("index", "io104", "io105", "io302")
]
VARIANT_ENV = {"retired_and_published_elsewhere": {"IMPLICIT_IO_DOCS_URL": ELSEWHERE}}
VARIANT_OPTIONS = {
    # Only the pages it breaks are read: reading the rest finds nothing.
    "bad_input": [
        "-Dinclude_patterns=index.md,guides/reference.md,guides/rules/io10[123].md"
    ],
    "duplicate": ["-Dinclude_patterns=index.md,guides/rules/io10[34].md"],
    # The retired rule, its replacement, the index, and a page whose output holds
    # a measured pause: what its three tests read.
    "retired_and_published_elsewhere": [
        "-Drule_registry=registry_with_io105_retired:RULES",
        f"-Dinclude_patterns=index.md,{','.join(RETIRED_VARIANT_PAGES)}",
    ],
}
PARTIAL_SITE = (
    "-Dsuppress_warnings=myst.xref_missing,ref.doc,ref.ref,ref.term,snippets.contract,"
    "toc.not_readable"
)
RULES_ONLY_INDEX = "# Home\n\n```{toctree}\n:glob:\n\nguides/rules/*\n```\n"


def _copy_rule_pages(site: Path) -> None:
    copy_checkout(site)
    for page in (site / "guides").glob("*.md"):
        page.unlink()
    (site / "index.md").write_text(RULES_ONLY_INDEX)


@dataclass
class VariantBuild:
    site: Path
    returncode: int
    log: str


@pytest.fixture(scope="session")
def variant_build(tmp_path_factory: pytest.TempPathFactory):
    """Each variant built once per worker, when a test first asks for it."""
    done: dict[str, VariantBuild] = {}

    def finished(name: str) -> VariantBuild:
        if name not in done:  # several tests may read one build
            change, builder = VARIANTS[name]
            site = tmp_path_factory.mktemp(name) / "site"
            _copy_rule_pages(site)
            change(site)
            with _environment(VARIANT_ENV.get(name, {})):
                build = build_small_site(
                    site,
                    site / "_build" / "html",
                    "-b",
                    builder,
                    PARTIAL_SITE,
                    *VARIANT_OPTIONS.get(name, []),
                )
            done[name] = VariantBuild(site, build.returncode, build.stderr)
        return done[name]

    return finished


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """These environment variables set for the block (a session fixture cannot use
    monkeypatch, which is per test)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_bad_rule_input_fails_the_build_naming_file_and_fix(variant_build) -> None:
    build = variant_build("bad_input")
    assert build.returncode != 0
    log = build.log
    assert re.search(
        r"guides/reference.md:\d+: ERROR: unknown rule code 'IO199'\. Known "
        r"codes: IO101, .*Fix the code, or add guides/rules/io199.md",
        log,
    ), log
    assert re.search(
        r"guides/rules/io103.md:\d+: '## Caveats' is not a rule-page section\. "
        r"Rename it to '## Exceptions'",
        log,
    ), log
    assert (
        "guides/rules/io101.md: example 'eager_loading:post_titles_lazy': "
        "snippets/eager_loading.py defines no public top-level function"
    ) in log, log
    # Front matter that does not validate is reported once, as what it is.
    assert (
        "guides/rules/io102.md: front matter: unknown field 'rule.owner': remove it"
    ) in log, log
    assert "io102.md: add a 'rule:' mapping" not in log, log


def test_a_duplicate_code_fails_the_build(variant_build) -> None:
    build = variant_build("duplicate")
    assert build.returncode != 0
    assert (
        "guides/rules/io104.md: rule code IO103 is already used by "
        "guides/rules/io103.md. Codes are never reused; pick the next free one."
    ) in build.log, build.log


@pytest.mark.xdist_group(SITE_GROUP)
def test_a_retired_rule_keeps_its_page_as_a_tombstone(variant_build) -> None:
    build = variant_build("retired_and_published_elsewhere")
    assert build.returncode == 0, build.log
    html = build.site / "_build" / "html"
    page = (html / "guides" / "rules" / "io105.html").read_text()
    assert "IO105 is retired" in page
    assert re.search(r'Follow <a [^>]*href="io104.html"', page), page
    listed = {
        r["code"]: r for r in json.loads((html / "rules.json").read_text())["rules"]
    }
    assert listed["IO105"]["retired"] is True
    assert listed["IO105"]["replaced_by"] == "IO104"
    assert listed["IO105"]["url"] == PUBLISHED["IO105"]
    index = (html / "guides" / "rules" / "index.html").read_text()
    assert re.search(r'<tr class="rule-retired[^"]*">.*?IO105.*?Retired', index, re.S)


@pytest.mark.xdist_group(SITE_GROUP)
def test_one_published_address_everywhere(variant_build) -> None:
    """IMPLICIT_IO_DOCS_URL moves the canonical links, rules.json and the toolkit."""
    build = variant_build("retired_and_published_elsewhere")
    assert build.returncode == 0, build.log
    html = build.site / "_build" / "html"
    pages = sorted(html.rglob("*.html"))
    written = {page.relative_to(html).as_posix() for page in pages}
    assert {"index.html", "guides/rules/io105.html", "search.html"} <= written
    assert any(name.startswith(("_proofs/", "_snippets/")) for name in written)
    for page in pages:
        path = page.relative_to(html).as_posix()
        assert f'<link rel="canonical" href="{ELSEWHERE}{path}"' in page.read_text(), (
            path
        )
    assert json.loads((html / "rules.json").read_text())["base_url"] == ELSEWHERE
    printed = subprocess.run(
        [sys.executable, "-c", PRINT_RULE_URLS],
        cwd=ROOT,
        env={**os.environ, **VARIANT_ENV["retired_and_published_elsewhere"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert printed == [ELSEWHERE + PUBLISHED[code] for code in KNOWN_RULES]


PRINT_RULE_URLS = (
    "from implicit_io.rule_links import KNOWN_RULES, rule_url\n"
    "for code in KNOWN_RULES: print(rule_url(code))"
)


def test_the_default_build_has_the_default_address(built_site: Path) -> None:
    assert json.loads((built_site / "rules.json").read_text())["base_url"] == (
        docs_base_url()
    )
    page = (built_site / "guides" / "rules" / "io101.html").read_text()
    canonical = f"{docs_base_url()}guides/rules/io101.html"
    assert f'<link rel="canonical" href="{canonical}"' in page


def test_the_snippet_contract_counts_rule_examples_as_shown(tmp_path: Path) -> None:
    for folder in ("guides/rules", "snippets", "tests"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "index.md").write_text("# Home\n")
    (tmp_path / "snippets" / "demo.py").write_text(
        "async def fails(session): ...\n\n\nasync def works(session): ...\n"
    )
    (tmp_path / "tests" / "test_demo.py").write_text(
        "from snippets.demo import fails, works\n\nfails, works\n"
    )
    page = GOOD_RULE.format(code="IO101").replace(
        "code: IO101", "code: IO101\n  example: demo:fails\n  use_instead: demo:works"
    )
    (tmp_path / "guides" / "rules" / "io101.md").write_text(
        page + "```{rule-example} example\n```\n"
    )
    assert [str(p) for p in check_project(tmp_path)] == [
        "snippets/demo.py:4: 'works' is on no page. Show it with {literalinclude} "
        ":pyobject: works, make it private (_works), or delete it."
    ]


# --- snippets/rules.py: examples that fail the check enforcing their rule -------


async def test_awaiting_in_a_loop_breaks_the_two_statement_budget(
    session: AsyncSession,
) -> None:
    with pytest.raises(StatementBudgetExceeded, match="at most 2 statement") as raised:
        await post_counts_awaited_within_budget(session)
    # One statement for the users, then one per user: the N+1 is in the message.
    assert "4 sent" in str(raised.value)
    assert len(re.findall(r"WHERE \S+ = post\.author_id", str(raised.value))) == 3


async def test_eager_loading_stays_within_the_budget(session: AsyncSession) -> None:
    counts = await post_counts_eager_within_budget(session)
    assert counts == {"ada": 2, "grace": 1, "linus": 0}


async def test_a_statement_count_exposes_lazy_loads_in_run_sync(
    session: AsyncSession,
) -> None:
    with pytest.raises(StatementBudgetExceeded, match="exactly 2") as raised:
        await legacy_report_within_budget(session)
    assert "4 sent" in str(raised.value)


async def test_the_preloaded_report_meets_its_count(session: AsyncSession) -> None:
    report = await preloaded_report_within_budget(session)
    assert report["ada"] == ["Notes on engines", "On sessions"]


def test_an_exception_without_rationale_is_refused() -> None:
    with pytest.raises(ValueError, match="give the rationale"):
        undocumented_exception()
    entry = documented_exception()
    assert isinstance(entry, KnownException)
    assert entry.rule == "IO102" and "ticket" in entry.rationale


async def test_a_blocking_warehouse_call_trips_the_watchdog() -> None:
    with pytest.raises(EventLoopBlocked, match="did not run for") as raised:
        await warehouse_report_on_the_loop()
    # The slow warehouse's query is a sleep on the loop; the pause reported covers it.
    pause_ms = int(re.search(r"for (\d+) ms", str(raised.value))[1])
    assert pause_ms >= _SLOW_QUERY_SECONDS * 1000


async def test_a_threaded_warehouse_call_keeps_the_loop_running() -> None:
    assert await warehouse_report_in_a_thread() == {"east": 1500, "west": 800}


async def test_the_watchdog_passes_code_that_awaits() -> None:
    async with event_loop_must_keep_running():
        await asyncio.sleep(0.1)


def test_summaries_show_identifiers_as_code_with_straight_quotes(built_site: Path):
    index = (built_site / "guides" / "rules" / "index.html").read_text()
    assert "\u201d" not in index and "\u201c" not in index
    assert re.search(
        r'<code[^>]*><span class="pre">lazy="dynamic"</span>',
        index.replace("&quot;", '"'),
    ), index


PRE = re.compile(r"<pre>.*?</pre>", re.S)
# A measured pause (IO302's watchdog) is honestly different on every run.
MEASURED = re.compile(r"\b\d+ ms\b")


def shown_code(page: Path, base_url: str) -> list[str]:
    """Every code and output block of a page, with the site's address as a marker."""
    html = page.read_text().replace(base_url, "<base>/")
    return [MEASURED.sub("<n> ms", block) for block in PRE.findall(html)]


def test_two_builds_show_the_same_captured_output(
    built_site: Path, variant_build
) -> None:
    """Another process, another build: the same bytes (but for the address it cites)."""
    build = variant_build("retired_and_published_elsewhere")
    assert build.returncode == 0, build.log
    shown = [page.replace(".md", ".html") for page in RETIRED_VARIANT_PAGES[1:]]
    for code, url in PUBLISHED.items():
        if url not in shown:
            continue  # the variant builds only some rule pages
        ours = shown_code(built_site / url, docs_base_url())
        theirs = shown_code(build.site / "_build" / "html" / url, ELSEWHERE)
        assert ours, code
        assert theirs == ours, code
