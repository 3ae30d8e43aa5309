"""The header of every rule page: level, phase, a "Copy review link" button, and the
tombstone notice of a retired rule.

Added under the page title while the page is read, from the rule's front matter,
so no rule page writes it by hand. The button's script is ``_static/rule-link.js``;
it copies ``[IO101 eager-load-response-data](<this page's URL>)``, taking the URL
from the page's canonical link (``html_baseurl``, the one published address), so a
review link is the same whichever host the reader browses, a local preview included.
"""

from __future__ import annotations

from html import escape

from docutils import nodes
from sphinx import addnodes

from .markup import xref
from .rules import Rule, rule_link, rule_of

PHASE_NAMES = {
    1: "latency-critical routes",
    2: "background tasks and other paths",
    3: "review checks",
}


def rule_header(app, rule: Rule) -> list[nodes.Node]:
    label = f"{rule.code} {rule.name}"
    line = nodes.paragraph(classes=["rule-meta"])
    badge = nodes.inline(
        "",
        f"Decision level: {rule.level}",
        classes=["rule-badge", f"rule-level-{rule.level}"],
    )
    level = xref("term", rule.level, rule.docname, badge)  # what "advisory" means
    line += level
    line += nodes.inline(
        "",
        f"Phase {rule.phase}: {PHASE_NAMES[rule.phase]}",
        classes=["rule-badge", "rule-phase"],
    )
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
    title = section.next_node(nodes.title)
    position = section.index(title) + 1 if title is not None else 0
    # Main index entries: a search for the code or the name ranks this page first.
    anchor = section["ids"][0] if section["ids"] else ""
    entries = [
        ("single", text, anchor, "main", None) for text in (rule.code, rule.name)
    ]
    section.insert(position, addnodes.index(entries=entries))
    position += 1
    for offset, node in enumerate(rule_header(app, rule)):
        section.insert(position + offset, node)


def setup(app):
    app.setup_extension(f"{__package__}.rules")
    app.connect("doctree-read", _add_header)
    app.add_js_file("rule-link.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
