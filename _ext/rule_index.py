"""The rules at a glance: the ``{rule-index}`` table and ``rules.json``.

``{rule-index}`` renders one row per rule (code, name, level, phase, summary, each
code linking its page). Every HTML build also writes ``rules.json`` at the site
root, for tools and review bots::

    {"base_url": "https://docs.example.internal/orm-io/",
     "rules": [{"code": "IO101", "name": "...", "level": "advisory", "phase": 1,
                "summary": "...", "url": "guides/rules/io101.html",
                "retired": false, "replaced_by": null}, ...]}

Each ``url`` is relative to the site root; ``base_url`` is where the site is published
(``html_baseurl``: the toolkit's ``IMPLICIT_IO_DOCS_URL``), so ``base_url + url`` is
the address a review should cite.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

from .rules import Rule, rule_link

JSON_NAME = "rules.json"
COLUMNS = (("Code", 10), ("Name", 30), ("Level", 12), ("Phase", 8), ("Summary", 60))


def _cell(*children: nodes.Node) -> nodes.entry:
    paragraph = nodes.paragraph()
    paragraph += children
    entry = nodes.entry()
    entry += paragraph
    return entry


def summary_nodes(summary: str) -> list[nodes.Node]:
    """A summary's `code` spans as code: identifiers keep their straight quotes."""
    parts = summary.split("`")
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced backticks in rule summary {summary!r}")
    return [
        nodes.literal(part, part) if odd else nodes.Text(part)
        for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts))
        if part
    ]


#: Column headings that name a glossary term: the reader can look them up.
HEADER_TERMS = {"Level": "decision level", "Phase": "phase"}


def _header(title: str, docname: str) -> nodes.Node:
    if title not in HEADER_TERMS:
        return nodes.Text(title)
    ref = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="term",
        reftarget=HEADER_TERMS[title],
        refexplicit=True,
        refdoc=docname,
    )
    ref += nodes.inline(title, title)
    return ref


class RuleIndex(SphinxDirective):
    """A table of every rule, in code order."""

    def run(self) -> list[nodes.Node]:
        rules: dict[str, Rule] = self.env.guide_rules
        table = nodes.table(classes=["rule-index"])
        group = nodes.tgroup(cols=len(COLUMNS))
        table += group
        group += [nodes.colspec(colwidth=width) for _, width in COLUMNS]
        head_row = nodes.row()
        head_row += [_cell(_header(title, self.env.docname)) for title, _ in COLUMNS]
        group += nodes.thead("", head_row)
        body = nodes.tbody()
        group += body
        for code in sorted(rules):
            rule = rules[code]
            # The table changes whenever a rule page's front matter does.
            self.env.note_dependency(str(Path(self.env.srcdir, f"{rule.docname}.md")))
            summary = summary_nodes(rule.summary)
            if rule.retired:
                summary = [
                    nodes.strong("", "Retired: "),
                    nodes.Text("replaced by "),
                    rule_link(rules[rule.replaced_by], self.env.docname),
                    nodes.Text("."),
                ]
            row = nodes.row(classes=["rule-retired"] if rule.retired else [])
            row += [
                _cell(rule_link(rule, self.env.docname)),
                _cell(nodes.Text(rule.name)),
                _cell(nodes.Text(rule.level)),
                _cell(nodes.Text(str(rule.phase))),
                _cell(*summary),
            ]
            body += row
        return [table]


def rules_json(rules: dict[str, Rule], uri_of, base_url: str) -> dict:
    return {
        "base_url": base_url,
        "rules": [
            {
                "code": rule.code,
                "name": rule.name,
                "level": rule.level,
                "phase": rule.phase,
                "summary": rule.summary,
                "url": uri_of(rule.docname),
                "retired": rule.retired,
                "replaced_by": rule.replaced_by,
            }
            for rule in (rules[code] for code in sorted(rules))
        ],
    }


def _write_json(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    index = rules_json(
        app.guide_rules, app.builder.get_target_uri, app.config.html_baseurl
    )
    Path(app.outdir, JSON_NAME).write_text(
        json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def setup(app):
    app.setup_extension(f"{__package__}.rules")
    app.add_directive("rule-index", RuleIndex)
    app.connect("build-finished", _write_json)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
