"""Claims tied to the tests that prove them, and where those tests passed.

    Rollback expires every attribute {proof}`test_expiry_and_refresh::test_rollback_expires`.
    ```{tested-configurations}
    ```

``{proof}`` cites one test (``test_module::test_name`` or ``::Class::test``; a
parametrized test's name covers its cases); a test that does not exist fails the
build. The page shows whether it passed on each configuration, from that suite's
record in ``proofs/`` (failed, skipped, unrun, or a record of other pins or code: not
proven), and links the test's code (``_proofs/test_module.html``).
``tested-configurations`` is the table of the records. Both are rendered as a page
is written, and the pages showing them are written again when a verdict changes.
"""

from __future__ import annotations

import ast
import hashlib
import html
import json
from functools import cache
from pathlib import Path

from docutils import nodes
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from sphinx.util.docutils import SphinxDirective, SphinxRole

from guide_runtime.configurations import (
    ALL_CONFIGURATIONS,
    Record,
    load_records,
    summarize_cases,
)

from .generated_pages import only_changed, source_page
from .markup import per_page, store, text_table

PAGES = "_proofs"
#: This module's own text: what it stores depends on how it computes it.
_SOURCE = Path(__file__).read_text()


class proof_claim(nodes.Inline, nodes.Element):
    """Placeholder for a cited test; filled in when the page is written."""


class tested_configurations(nodes.General, nodes.Element):
    """Placeholder for the table of suite records."""


def test_modules(srcdir: Path) -> dict[str, Path]:
    """Every test module under tests/ by file name (unique: a page cites ``test_x``
    whichever folder holds it), except those of a sample suite with a pytest.ini."""
    tests = Path(srcdir, "tests")
    found: dict[str, Path] = {}
    for path in sorted(tests.rglob("test_*.py")):
        folders = [f for f in path.parents if f.is_relative_to(tests)]
        if not any((folder / "pytest.ini").is_file() for folder in folders):
            found.setdefault(path.stem, path)
    return found


@cache
def _test_lines(path: Path, mtime: float) -> dict[str, int]:
    """``name`` or ``Class::name`` → line of each test (parsed once per version)."""
    found: dict[str, int] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[f"{node.name}::{member.name}"] = member.lineno
    return {name: line for name, line in found.items() if "test" in name}


RoleResult = tuple[list[nodes.Node], list[nodes.system_message]]


class ProofRole(SphinxRole):
    def run(self) -> RoleResult:
        module, sep, name = self.text.strip().partition("::")
        if not sep or not module or not name or "/" in module or module.endswith(".py"):
            return self._fail(
                f"{{proof}} {self.text!r}: write `test_module::test_name`, naming a "
                "module in tests/ without its folder or .py"
            )
        path = self.env.guide_test_modules.get(module)
        if path is None:
            return self._fail(
                f"{{proof}} {self.text!r}: no test module {module}.py under "
                "tests/. Cite a test module of the suite, or write the test that proves this sentence."
            )
        self.env.note_dependency(str(path))
        shown = path.relative_to(self.env.srcdir).as_posix()
        line = _test_lines(path, path.stat().st_mtime).get(name)
        if line is None:
            return self._fail(
                f"{{proof}} {self.text!r}: {shown} has no test {name!r}. "
                "Fix the name, or write the test that proves this sentence."
            )
        test = f"{shown}::{name}"
        return [proof_claim(test=test, module=module, name=name, line=line)], []

    def _fail(self, message: str) -> RoleResult:
        error = self.inliner.reporter.error(message, line=self.lineno)
        return [nodes.problematic(self.rawtext, self.rawtext)], [error]


class TestedConfigurations(SphinxDirective):
    def run(self) -> list[nodes.Node]:
        return [tested_configurations()]


def _records(app) -> dict:
    if not hasattr(app, "_proof_records"):
        app._proof_records = load_records(Path(app.srcdir))
    return app._proof_records


def _verdict(record: Record | None, test: str) -> tuple[bool, str]:
    """(proven, the verdict in words) for one test on one configuration."""
    if record is None:
        return False, "not recorded: no run of this suite is recorded"
    if record.stale:
        return False, f"not recorded for this checkout: {record.stale}"
    outcome = record.outcome(test)
    if outcome == "passed":
        cases = summarize_cases(record.cases(test)).text
        return True, f"passed ({cases})" if cases else "passed"
    if outcome == "skipped":
        why = record.skip_reason(test)
        return False, f"skipped: {why}" if why else "skipped"
    return False, outcome


def _render_claim(app, node: proof_claim, docname: str, number: int) -> nodes.Node:
    """One quiet mark per claim, whose detail (the test, and each configuration's
    verdict in words) opens on tap, click or keyboard (_static/proof-marks.js)."""
    records = _records(app)
    uri = app.builder.get_relative_uri(docname, f"{PAGES}/{node['module']}")
    verdicts = [
        (configuration, *_verdict(records.get(configuration), node["test"]))
        for configuration in ALL_CONFIGURATIONS
    ]
    proven = sum(passed for _, passed, _ in verdicts)
    total = len(verdicts)
    detail = f"proof-{number}"
    lines = [
        f'<a class="proof-test" href="{uri}#L-{node["line"]}">'
        f"{html.escape(node['module'])}::{html.escape(node['name'])}</a>"
    ]
    lines += [
        f'<span class="proof-{"passed" if passed else "unproven"}">'
        f"{html.escape(configuration.short)}: {html.escape(why)}</span>"
        for configuration, passed, why in verdicts
    ]
    markup = (
        f'<span class="proof" data-proof-summary="proven on {proven} of {total} '
        f'configurations"><button type="button" class="proof-mark" '
        f'aria-expanded="false" aria-controls="{detail}">proven on {proven}/{total}'
        f'</button><span class="proof-detail" id="{detail}" hidden>'
        + "".join(lines)
        + "</span></span>"
    )
    # Not search text: the index skips "no-search" nodes (as Sphinx's own do).
    return nodes.inline(
        "", "", nodes.raw("", markup, format="html"), classes=["no-search"]
    )


def _render_table(app) -> nodes.Node:
    rows = [["Configuration", "Recorded run", "Versions", "Tests"]]
    for configuration in ALL_CONFIGURATIONS:
        record = _records(app).get(configuration)
        if record is None:
            rows.append([configuration.label, "none recorded", "—", "—"])
            continue
        versions = ", ".join(f"{k} {v}" for k, v in record.versions.items())
        outcomes = list(record.outcomes.values())
        counts = ", ".join(
            f"{outcomes.count(kind)} {kind}"
            for kind in ("passed", "failed", "skipped")
            if outcomes.count(kind)
        )
        status = "current" if record.stale is None else f"stale: {record.stale}"
        rows.append([configuration.label, status, versions, counts])
    return text_table(rows, "tested-configurations")


def _fill(app, doctree: nodes.document, docname: str) -> None:
    for number, node in enumerate(list(doctree.findall(proof_claim)), start=1):
        node.replace_self(_render_claim(app, node, docname, number))
    for node in list(doctree.findall(tested_configurations)):
        node.replace_self(_render_table(app))


def _records_digest(app) -> str:
    """What every proof badge shows: each record's outcomes and whether it is
    current (which changes with the code or a lock file, not only a record)."""
    judged = {
        configuration.key: [record.outcomes, record.versions, record.stale]
        for configuration, record in _records(app).items()
    }
    return hashlib.sha256(json.dumps(judged, sort_keys=True).encode()).hexdigest()


def _pages_citing_proofs(app, env, added, changed, removed) -> list[str]:
    """When a record or its verdict changed, every page showing proofs is rewritten."""
    digest = _records_digest(app)
    previous = getattr(env, "proof_records_digest", None)
    env.proof_records_digest = digest
    if previous in (None, digest):
        return []
    return sorted(set(store(env, "proof_pages")) - set(removed))


def _note_proof_pages(app, doctree: nodes.document) -> None:
    """Which pages show proofs, and the test modules each cites."""
    cited = {node["module"] for node in doctree.findall(proof_claim)}
    if cited or any(doctree.findall(tested_configurations)):
        store(app.env, "proof_pages")[app.env.docname] = cited


def _test_code_pages(app):
    """One page per cited test module, its code highlighted, each test an anchor."""
    cited = set().union(*store(app.env, "proof_pages").values())
    formatter = HtmlFormatter(linenos="table", lineanchors="L", anchorlinenos=True)

    def highlighted(source: str) -> str:
        code = highlight(source, PythonLexer(), formatter)
        return f"<div class='highlight-python notranslate'>{code}</div>"

    sentence = "The tests the guide's claims cite; each claim links to its test."
    for module, path in app.env.guide_test_modules.items():
        if module in cited:
            title = path.relative_to(app.srcdir).as_posix()
            page = f"{PAGES}/{path.stem}"
            yield source_page(page, path, title, sentence, highlighted, _SOURCE)


def _find_test_modules(app) -> None:
    # Once per build, before the pages are read (by forked readers too).
    app.env.guide_test_modules = test_modules(Path(app.srcdir))


def setup(app):
    app.connect("builder-inited", _find_test_modules)
    app.add_node(proof_claim)
    app.add_node(tested_configurations)
    app.add_role("proof", ProofRole())
    app.add_directive("tested-configurations", TestedConfigurations)
    app.connect("doctree-read", _note_proof_pages)
    app.connect("doctree-resolved", _fill)
    app.connect("env-get-outdated", _pages_citing_proofs)
    per_page(app, "proof_pages")
    app.setup_extension(f"{__package__}.generated_pages")
    app.connect("html-collect-pages", only_changed(_test_code_pages))
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
