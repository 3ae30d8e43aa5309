"""Rules with stable codes: a registry read from rule pages, and the ``{rule}`` role.

Each rule is one page, ``guides/rules/<code>.md`` (lower-case code), whose front
matter holds a ``rule:`` mapping::

    ---
    rule:
      code: IO101
      name: eager-load-response-data
      level: advisory          # or: mandatory
      phase: 1                 # the enforcement phase it belongs to (1, 2 or 3)
      summary: One line, what the rule requires.
      example: module:function      # the failing snippet (see rule_examples.py)
      use_instead: module:function  # the passing one
      seed: module:_function        # optional: data both run on (default: sample)
      replaced_by: IO104            # only on a retired rule (a tombstone)
    ---

Anywhere on the site, ``{rule}`IO101``` links to that page; an unknown code fails the
build with the list of known codes. ``{{ rule_count }}`` is the number of rules in
force, counted from the pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.errors import ConfigError
from sphinx.util.docutils import SphinxRole

from guide_runtime.pages import FrontMatterError, front_matter

RULES_DIR = "guides/rules"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    level: str
    phase: int
    summary: str
    docname: str
    replaced_by: str | None = None
    example: str | None = None
    use_instead: str | None = None
    seed: str | None = None

    @property
    def retired(self) -> bool:
        return self.replaced_by is not None


def load_rules(srcdir: Path) -> dict[str, Rule]:
    """Every rule page's metadata, validated. Raises ConfigError naming the file."""
    rules: dict[str, Rule] = {}
    for path in sorted((srcdir / RULES_DIR).glob("io*.md")):
        where = path.relative_to(srcdir).as_posix()
        try:
            page = front_matter(srcdir, path).rule
        except FrontMatterError as error:
            raise ConfigError(str(error)) from None
        if page is None:
            raise ConfigError(
                f"{where}: add a 'rule:' mapping to the front matter (code, name, "
                "level, phase, summary)."
            )
        if page.code in rules:
            raise ConfigError(
                f"{where}: rule code {page.code} is already used by "
                f"{rules[page.code].docname}.md. Codes are never reused; pick the next "
                "free one."
            )
        if path.stem != page.code.lower():
            raise ConfigError(
                f"{where}: holds rule {page.code}; rename the file to "
                f"{page.code.lower()}.md so its URL is stable."
            )
        if page.summary.count("`") % 2:
            raise ConfigError(
                f"{where}: the summary has an unbalanced backtick; mark code as `lazy=`."
            )
        rules[page.code] = Rule(**page.model_dump(), docname=where.removesuffix(".md"))
    for rule in rules.values():
        if rule.replaced_by == rule.code:
            raise ConfigError(
                f"{rule.docname}.md: replaced_by names the rule itself. Name the rule "
                "that replaces it."
            )
        if rule.replaced_by and rule.replaced_by not in rules:
            raise ConfigError(
                f"{rule.docname}.md: replaced_by names unknown rule "
                f"{rule.replaced_by}. Name the code of the rule that replaces it "
                f"(known: {', '.join(sorted(rules))})."
            )
    return rules


def rule_link(
    rule: Rule, refdoc: str, title: str | None = None
) -> addnodes.pending_xref:
    """A link to ``rule``'s page from ``refdoc``, showing ``title`` (the code)."""
    text = title or rule.code
    ref = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="doc",
        reftarget=f"/{rule.docname}",
        refexplicit=True,
        refdoc=refdoc,
    )
    ref += nodes.literal(text, text, classes=["rule-code"])
    return ref


class RuleRole(SphinxRole):
    """``{rule}`IO101``` or ``{rule}`custom text <IO101>```."""

    def run(self):
        match = re.match(r"^(.*?)\s*<(\w+)>$", self.text, re.S)
        title, code = (match[1], match[2]) if match else (self.text, self.text)
        rules: dict[str, Rule] = self.env.guide_rules
        rule = rules.get(code)
        if rule is None:
            message = self.inliner.reporter.error(
                f"unknown rule code {code!r}. Known codes: {', '.join(sorted(rules))}. "
                f"Fix the code, or add {RULES_DIR}/{code.lower()}.md.",
                line=self.lineno,
            )
            return [self.inliner.problematic(self.rawtext, self.rawtext, message)], [
                message
            ]
        return [rule_link(rule, self.env.docname, title)], []


def _load(app) -> None:
    # Read once per build: _count_substitutions read them when the config was.
    if not hasattr(app, "guide_rules"):
        app.guide_rules = load_rules(Path(app.srcdir))
    # Where directives and roles find it (Sphinx 11 removes env.app).
    app.env.guide_rules = app.guide_rules


def _count_substitutions(app, config) -> None:
    """``{{ rule_count }}`` on any page: the rules in force, counted, never typed.

    Set when the configuration is read, so an unchanged rule set leaves the
    configuration unchanged and incremental builds stay incremental.
    """
    rules = app.guide_rules = load_rules(Path(app.srcdir))
    substitutions = dict(getattr(config, "myst_substitutions", None) or {})
    substitutions["rule_count"] = sum(not rule.retired for rule in rules.values())
    config.myst_substitutions = substitutions


def setup(app):
    app.connect("config-inited", _count_substitutions)
    app.connect("builder-inited", _load)
    app.add_role("rule", RuleRole())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
