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

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.errors import ConfigError
from sphinx.util.docutils import SphinxRole

from .yaml_loading import safe_load

RULES_DIR = "guides/rules"
CODE = re.compile(r"^IO[1-9]\d\d$")
NAME = re.compile(r"^[a-z]+(-[a-z]+)*$")
LEVELS = ("advisory", "mandatory")
PHASES = (1, 2, 3)
SNIPPET_TARGET = re.compile(r"^[a-z_][a-z0-9_]*:[A-Za-z_]\w*$")


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


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    return (safe_load(match[1]) or {}) if match else {}


def load_rules(srcdir: Path) -> dict[str, Rule]:
    """Every rule page's metadata, validated. Raises ConfigError naming the file."""
    rules: dict[str, Rule] = {}
    for path in sorted((srcdir / RULES_DIR).glob("io*.md")):
        where = path.relative_to(srcdir).as_posix()
        try:
            data = front_matter(path).get("rule")
        except yaml.YAMLError as error:
            raise ConfigError(
                f"{where}: front matter is not valid YAML: {error}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{where}: add a 'rule:' mapping to the front matter (code, name, level, phase, summary)."
            )
        rule = _validate(where, data)
        if rule.code in rules:
            raise ConfigError(
                f"{where}: rule code {rule.code} is already used by {rules[rule.code].docname}.md. Codes are never reused; pick the next free one."
            )
        if path.stem != rule.code.lower():
            raise ConfigError(
                f"{where}: holds rule {rule.code}; rename the file to {rule.code.lower()}.md so its URL is stable."
            )
        rules[rule.code] = rule
    for rule in rules.values():
        if rule.replaced_by == rule.code:
            raise ConfigError(
                f"{rule.docname}.md: replaced_by names the rule itself. Name the rule that replaces it."
            )
        if rule.replaced_by and rule.replaced_by not in rules:
            raise ConfigError(
                f"{rule.docname}.md: replaced_by names unknown rule {rule.replaced_by}. Name the code of the rule that replaces it (known: {', '.join(sorted(rules))})."
            )
    return rules


def _validate(where: str, data: dict) -> Rule:
    missing = [
        key for key in ("code", "name", "level", "phase", "summary") if key not in data
    ]
    if missing:
        raise ConfigError(
            f"{where}: the 'rule:' front matter lacks {', '.join(missing)}."
        )
    code, name, level, phase = data["code"], data["name"], data["level"], data["phase"]
    if not isinstance(code, str) or not CODE.match(code):
        raise ConfigError(
            f"{where}: rule code {code!r} must look like IO101 (IO and three digits)."
        )
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(
            f"{where}: rule name {name!r} must be kebab-case, like eager-load-response-data."
        )
    if level not in LEVELS:
        raise ConfigError(
            f"{where}: level {level!r} must be one of {', '.join(LEVELS)}."
        )
    if phase not in PHASES:
        raise ConfigError(f"{where}: phase {phase!r} must be one of 1, 2, 3.")
    if str(data["summary"]).count("`") % 2:
        raise ConfigError(
            f"{where}: the summary has an unbalanced backtick; mark code as `lazy=`."
        )
    for key in ("example", "use_instead", "seed"):
        target = data.get(key)
        if target is not None and not (
            isinstance(target, str) and SNIPPET_TARGET.match(target)
        ):
            raise ConfigError(
                f"{where}: {key} {target!r} must name a snippet function as 'module:function' (module in snippets/), like eager_loading:post_titles_by_author."
            )
    return Rule(
        code=code,
        name=name,
        level=level,
        phase=phase,
        summary=str(data["summary"]).strip(),
        docname=where.removesuffix(".md"),
        replaced_by=data.get("replaced_by"),
        example=data.get("example"),
        use_instead=data.get("use_instead"),
        seed=data.get("seed"),
    )


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
