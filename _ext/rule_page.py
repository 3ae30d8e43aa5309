"""Everything a rule page gets and is checked for, on every build.

**Its header**, under the title, from the registry: level, phase, a "Copy review
link" button (``_static/rule-link.js`` copies ``[IO101 name](<URL>)`` with the page's
canonical URL, whichever host the reader browses), and a retired rule's tombstone.

**Its sections**: ``# CODE · name``, then exactly the H2 sections of ``SECTIONS``, in
that order (sub-headings inside them are free); a missing, renamed, extra or
out-of-order one is reported with the file, the line and the fix.

**Its examples**: the front matter names a failing and a passing snippet function
(``example:``, ``use_instead:``); ``{rule-example} example`` shows the function's
source and its recorded run, expected to fail (``use_instead``: to pass). A live rule
must name both, the functions must exist, and the page must show them.
"""

from __future__ import annotations

import ast
import re
from html import escape
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin
from sphinx import addnodes
from sphinx.directives.code import LiteralInclude
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from .markup import under_title, xref
from .recorded_output import CapturedRun
from .rules import PHASE_NAMES, Rule, rule_link, rule_of

logger = logging.getLogger(__name__)

# --- The header ----------------------------------------------------------------------


def rule_header(app, rule: Rule) -> list[nodes.Node]:
    label = f"{rule.code} {rule.name}"
    line = nodes.paragraph(classes=["rule-meta"])
    badge = nodes.inline(
        "",
        f"Decision level: {rule.level}",
        classes=["rule-badge", f"rule-level-{rule.level}"],
    )
    line += xref("term", rule.level, rule.docname, badge)  # what "advisory" means
    phase = f"Phase {rule.phase}: {PHASE_NAMES[rule.phase]}"
    line += nodes.inline("", phase, classes=["rule-badge", "rule-phase"])
    if rule.retired:
        line += nodes.inline("", "Retired", classes=["rule-badge", "rule-retired"])
    line += nodes.raw(
        "",
        '<button type="button" class="rule-copy-link" '
        f'data-label="{escape(label)}" '
        f'title="Copy a Markdown link to {escape(rule.code)} for a code review">'
        "Copy review link</button>",
        format="html",
    )
    shown: list[nodes.Node] = [line]
    if rule.retired:
        replacement = app.guide_rules[rule.replaced_by]
        notice = nodes.admonition(classes=["warning", "rule-tombstone"])
        notice += nodes.title(text=f"{rule.code} is retired")
        text = nodes.paragraph()
        text += nodes.Text(f"{rule.code} no longer applies. Follow ")
        text += rule_link(replacement, rule.docname)
        text += nodes.Text(
            f" {replacement.name} instead. This page stays so that links in old "
            "reviews keep working; the text below is the rule as it stood."
        )
        notice += text
        shown.append(notice)
    return shown


def _add_header(app, doctree: nodes.document) -> None:
    rule = rule_of(app.env, app.env.docname)
    section = doctree.next_node(nodes.section)
    if rule is None or section is None:
        return
    # Main index entries: a search for the code or the name ranks this page first.
    anchor = section["ids"][0] if section["ids"] else ""
    entries = [
        ("single", text, anchor, "main", None) for text in (rule.code, rule.name)
    ]
    under_title(section, [addnodes.index(entries=entries), *rule_header(app, rule)])


# --- The sections --------------------------------------------------------------------

SECTIONS = (
    "What it requires",
    "Why",
    "Example",
    "Use instead",
    "How it is enforced",
    "Exceptions",
    "References",
)

_PARSER = MarkdownIt("commonmark").use(front_matter_plugin)


def _headings(text: str) -> list[tuple[int, str, int]]:
    """(level, text, line) of every heading, ignoring code blocks and front matter."""
    tokens = _PARSER.parse(text)
    return [
        (int(token.tag[1]), tokens[index + 1].content.strip(), token.map[0] + 1)
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.map
    ]


def check_page(
    path: Path, where: str, rule: Rule, text: str | None = None
) -> list[str]:
    """Problems with one rule page's headings, each 'file:line: what to fix'."""
    headings = _headings(path.read_text(encoding="utf-8") if text is None else text)
    title = f"{rule.code} · {rule.name}"
    top = [(text, line) for level, text, line in headings if level == 1]
    if [text for text, _ in top] != [title]:
        line = top[0][1] if top else 1
        return [f"{where}:{line}: the page must have one title, '# {title}'."]
    sections = [(text, line) for level, text, line in headings if level == 2]
    seen = [text for text, _ in sections]
    for position, expected in enumerate(SECTIONS):
        if position < len(sections) and sections[position][0] == expected:
            continue
        after = f"after '## {SECTIONS[position - 1]}'" if position else "first"
        line = sections[position][1] if position < len(sections) else top[0][1]
        if expected in seen:
            line = sections[seen.index(expected)][1]
            return [
                f"{where}:{line}: section '## {expected}' is out of order: move it "
                f"{after.replace('first', 'to the top')}. Rule pages use these H2 "
                f"sections in this order: {' · '.join(SECTIONS)}."
            ]
        if position < len(sections) and sections[position][0] not in SECTIONS:
            return [
                f"{where}:{line}: '## {sections[position][0]}' is not a rule-page "
                f"section. Rename it to '## {expected}', or make it an H3 inside one."
            ]
        return [
            f"{where}:{line}: section '## {expected}' is missing. Add it {after}; "
            f"rule pages use these H2 sections in this order: {' · '.join(SECTIONS)}."
        ]
    if len(sections) > len(SECTIONS):
        text, line = sections[len(SECTIONS)]
        return [
            f"{where}:{line}: '## {text}' comes after '## References'. Make it an H3 "
            "inside one of the sections, or delete it."
        ]
    return []


# --- The examples --------------------------------------------------------------------

#: What each example's snippet must do, its caption, and how its run must end.
KINDS = {
    "example": (
        "fails the way the rule forbids.",
        "Fails: the pattern this rule forbids",
        "error",
    ),
    "use_instead": ("does what the rule asks.", "Passes: what to write instead", "ok"),
}


def _public_functions(path: Path) -> set[str]:
    return {
        node.name
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    }


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
                    + KINDS[kind][0]
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
        kind = directives.choice(self.arguments[0], tuple(KINDS))
        rule = rule_of(self.env, self.env.docname)
        if rule is None:
            raise self.error("rule-example belongs on a rule page (guides/rules/).")
        target = getattr(rule, kind)
        if target is None:
            return []  # a retired rule may have lost its snippets; checked at start
        module, function = target.split(":")
        _, caption, expect = KINDS[kind]
        shown = {"pyobject": function, "caption": caption}
        source = self._run(LiteralInclude, [f"/snippets/{module}.py"], shown)
        options = {"expect": expect} | ({"seed": rule.seed} if rule.seed else {})
        return [*source, *self._run(CapturedRun, [target], options)]

    def _run(self, directive, arguments, options) -> list[nodes.Node]:
        where = (self.lineno, self.content_offset, self.block_text)
        state = (self.state, self.state_machine)
        return directive(
            self.name, arguments, options, StringList(), *where, *state
        ).run()


def _check_read_page(app, docname: str, source: list[str]) -> None:
    """Each rule page as Sphinx reads it (again when a snippet it shows changes):
    an edit checks the one page it changed."""
    rule = rule_of(app.env, docname)
    if rule is None:
        return
    path, where = Path(app.srcdir, f"{docname}.md"), f"{docname}.md"
    for problem in check_page(path, where, rule, source[0]):
        logger.warning("rule page: %s", problem, type="rules", subtype="skeleton")
    for problem in check_rule(Path(app.srcdir), rule, source[0]):
        logger.warning("rule example: %s", problem, type="rules", subtype="examples")


def setup(app):
    app.setup_extension(f"{__package__}.rules")
    app.setup_extension(f"{__package__}.recorded_output")
    app.connect("doctree-read", _add_header)
    app.connect("source-read", _check_read_page)
    app.add_directive("rule-example", RuleExample)
    app.add_js_file("rule-link.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
