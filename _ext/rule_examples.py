"""The Example and Use-instead sections of rule pages, from tested snippets.

A rule's front matter names a failing and a passing snippet function::

    rule:
      example: eager_loading:post_titles_by_author_lazy
      use_instead: eager_loading:post_titles_by_author

and the page shows each with::

    ```{rule-example} example
    ```

which renders the function's source (``literalinclude`` with ``:pyobject:``) and a
``captured-run`` of it: ``:expect: error`` for the example, which must fail, and
``:expect: ok`` for ``use_instead``, which must succeed. Every build checks that
each live rule names both, that the functions exist, and that the page shows them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.directives.code import LiteralInclude
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from .recorded_output import CapturedRun
from .rules import Rule, rule_of

KINDS = ("example", "use_instead")


def _public_functions(path: Path) -> set[str]:
    return {
        node.name
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    }


def check_examples(srcdir: Path, rules: dict[str, Rule]) -> list[str]:
    """Problems with the rules' named examples, each 'file: what to fix'."""
    problems = []
    for rule in rules.values():
        source = (srcdir / f"{rule.docname}.md").read_text(encoding="utf-8")
        problems += check_rule(srcdir, rule, source)
    return problems


def check_rule(srcdir: Path, rule: Rule, source: str) -> list[str]:
    """Problems with one rule's named examples, given its page's source."""
    problems = []
    where = f"{rule.docname}.md"
    named = {kind: getattr(rule, kind) for kind in KINDS if getattr(rule, kind)}
    if not rule.retired:
        for kind in KINDS:
            if kind not in named:
                problems.append(
                    f"{where}: the rule front matter names no {kind}. Add "
                    f"'{kind}: module:function' naming a snippet function that "
                    + (
                        "fails the way the rule forbids."
                        if kind == "example"
                        else "does what the rule asks."
                    )
                )
    for kind, target in named.items():
        module, function = target.split(":")
        snippet = srcdir / "snippets" / f"{module}.py"
        if not snippet.is_file():
            problems.append(
                f"{where}: {kind} {target!r} names snippets/{module}.py, which "
                "does not exist. Fix the module name."
            )
        elif function not in _public_functions(snippet):
            problems.append(
                f"{where}: {kind} {target!r}: snippets/{module}.py defines no "
                f"public top-level function {function!r}. Fix the name."
            )
        if not re.search(rf"^[`:]{{3,}}\{{rule-example\}}\s+{kind}\s*$", source, re.M):
            problems.append(
                f"{where}: names {kind} {target!r} but never shows it. Add "
                f"'```{{rule-example}} {kind}' to its section."
            )
    return problems


class RuleExample(SphinxDirective):
    """``{rule-example} example`` or ``{rule-example} use_instead`` on a rule page."""

    required_arguments = 1
    option_spec: ClassVar = {}

    def run(self) -> list[nodes.Node]:
        kind = directives.choice(self.arguments[0], KINDS)
        rule = rule_of(self.env, self.env.docname)
        if rule is None:
            raise self.error("rule-example belongs on a rule page (guides/rules/).")
        target = getattr(rule, kind)
        if target is None:
            return []  # a retired rule may have lost its snippets; checked at start
        module, function = target.split(":")
        caption = (
            "Fails: the pattern this rule forbids"
            if kind == "example"
            else "Passes: what to write instead"
        )
        source = self._run(
            LiteralInclude,
            [f"/snippets/{module}.py"],
            {"pyobject": function, "caption": caption},
        )
        options = {"expect": "error" if kind == "example" else "ok"}
        if rule.seed:
            options["seed"] = rule.seed
        run = self._run(CapturedRun, [target], options)
        return [*source, *run]

    def _run(self, directive, arguments, options) -> list[nodes.Node]:
        return directive(
            self.name,
            arguments,
            options,
            StringList(),
            self.lineno,
            self.content_offset,
            self.block_text,
            self.state,
            self.state_machine,
        ).run()


def _check_read_page(app, docname: str, source: list[str]) -> None:
    """Each rule page as Sphinx reads it (again when a snippet it shows changes)."""
    rule = rule_of(app.env, docname)
    for problem in check_rule(Path(app.srcdir), rule, source[0]) if rule else ():
        logging.getLogger(__name__).warning(
            "rule example: %s", problem, type="rules", subtype="examples"
        )


def setup(app):
    app.setup_extension(f"{__package__}.rules")
    app.setup_extension(f"{__package__}.recorded_output")
    app.connect("source-read", _check_read_page)
    app.add_directive("rule-example", RuleExample)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
