"""The rules at a glance: the ``{rule-index}`` table and ``rules.json``.

``{rule-index}``: one row per rule (code linking its page, name, level, phase,
summary). Every HTML build writes ``rules.json`` at the site root for tools and
review bots: ``{"base_url": ..., "rules": [{"code", "name", "level", "phase",
"summary", "url", "retired", "replaced_by"}, ...]}``, each ``url`` relative to
``base_url`` (``html_baseurl``, the toolkit's ``IMPLICIT_IO_DOCS_URL``): together,
the address a review should cite.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from .markup import inline_code, table, xref
from .rules import Rule, rule_link

JSON_NAME = "rules.json"
JSON_FIELDS = ("code", "name", "level", "phase", "summary")
#: The columns; those that name a glossary term link it: the reader can look it up.
COLUMNS = {"Code": None, "Name": None, "Level": "decision level", "Phase": "phase"}
COLUMNS |= {"Summary": None}


class RuleIndex(SphinxDirective):
    """A table of every rule, in code order."""

    def run(self) -> list[nodes.Node]:
        rules: dict[str, Rule] = self.env.guide_rules
        here = self.env.docname
        header = [
            [
                xref("term", term, here, nodes.inline(title, title))
                if term
                else nodes.Text(title)
            ]
            for title, term in COLUMNS.items()
        ]
        rows = [header]
        for code in sorted(rules):
            rule = rules[code]
            summary = inline_code(rule.summary)
            if rule.retired:
                replacement = rule_link(rules[rule.replaced_by], here)
                summary = [nodes.strong("", "Retired: "), nodes.Text("replaced by ")]
                summary += [replacement, nodes.Text(".")]
            cells = [rule_link(rule, here), rule.name, rule.level, str(rule.phase)]
            cells = [
                [c] if isinstance(c, nodes.Node) else [nodes.Text(c)] for c in cells
            ]
            rows.append([*cells, summary])
        index = table(rows, "rule-index")
        for row, code in zip(
            index.findall(nodes.row), [None, *sorted(rules)], strict=True
        ):
            if code and rules[code].retired:
                row["classes"].append("rule-retired")
        return [index]


def rules_json(rules: dict[str, Rule], uri_of, base_url: str) -> dict:
    listed = []
    for rule in (rules[code] for code in sorted(rules)):
        entry = {field: getattr(rule, field) for field in JSON_FIELDS}
        entry |= {"url": uri_of(rule.docname), "retired": rule.retired}
        listed.append(entry | {"replaced_by": rule.replaced_by})
    return {"base_url": base_url, "rules": listed}


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
