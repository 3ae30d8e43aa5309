"""Rules with stable codes, from the toolkit's registry, and the ``{rule}`` role.

The rules are ``implicit_io.rules.RULES`` (``rule_registry`` in conf.py), the one list
the toolkit's messages and ``implicit-io-check --explain`` use too. Each has one page,
``guides/rules/<code>.md``, whose ``rule:`` front matter names its code and tested
examples (rule_page.py). A rule without a page, or a page without a rule, fails the
build. ``{rule}`IO101``` links to the page (an unknown code fails the build, listing
the known ones); ``{{ rule_count }}`` is the number of rules in force.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

from docutils import nodes
from sphinx.errors import ConfigError
from sphinx.util import logging
from sphinx.util.docutils import SphinxRole

from .front_matter import bad_pages, page_front_matter
from .markup import xref

logger = logging.getLogger(__name__)

RULES_DIR = "guides/rules"
#: What each phase of the enforcement model covers (a rule's ``phase``).
PHASE_NAMES = {
    1: "latency-critical routes",
    2: "background tasks and other paths",
    3: "review checks",
}


@dataclass(frozen=True)
class Rule:
    """A rule of the registry, with its page and the examples the page shows."""

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


def registry(location: str) -> dict:
    """The registry ``module:NAME`` names (conf.py's ``rule_registry``)."""
    module, _, name = location.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"rule_registry = {location!r}: {error}. Name the rules' dict as "
            "'module:NAME', like implicit_io.rules:RULES."
        ) from None


def load_rules(srcdir: Path, rules: dict) -> dict[str, Rule]:
    """Each rule of the registry, at its page. Raises ConfigError naming the fix."""
    found: dict[str, Rule] = {}
    for code, rule in sorted(rules.items()):
        where = f"{RULES_DIR}/{code.lower()}.md"
        if not (srcdir / where).is_file():
            raise ConfigError(
                f"{where} does not exist: every rule of the registry has a page, "
                f"and a retired one keeps it. Write {code}'s page."
            )
        if rule.phase not in PHASE_NAMES:
            raise ConfigError(
                f"implicit_io/rules.py: {code}'s phase {rule.phase} is not one of "
                f"the enforcement phases {sorted(PHASE_NAMES)}. Use one of them."
            )
        if rule.summary.count("`") % 2:
            raise ConfigError(
                f"implicit_io/rules.py: {code}'s summary has an unbalanced backtick; "
                "mark code as `lazy=`."
            )
        page = where.removesuffix(".md")
        fields = (rule.name, rule.level, rule.phase, rule.summary, page)
        found[code] = Rule(code, *fields, rule.replaced_by)
    for rule in found.values():
        if rule.replaced_by is not None and rule.replaced_by not in found:
            raise ConfigError(
                f"implicit_io/rules.py: {rule.code} is replaced_by unknown rule "
                f"{rule.replaced_by}. Name the code of the rule that replaces it."
            )
    return found


def with_examples(rule: Rule, page: dict | None) -> Rule:
    """``rule`` with the examples its page's ``rule:`` front matter names."""
    named = page or {}
    return replace(
        rule, **{k: named.get(k) for k in ("example", "use_instead", "seed")}
    )


def rule_page_problems(pages: dict[str, dict | None], rules: dict) -> list[str]:
    """What is wrong between the rule pages (``guides/rules/ioNNN.md`` by path, each
    its validated ``rule:`` mapping, None without one) and the registry."""
    problems, claimed = [], {}
    for where, page in sorted(pages.items()):
        if page is None:
            problems.append(
                f"{where}: add a 'rule:' mapping to the front matter (its code, "
                "example and use_instead)."
            )
            continue
        code = page["code"]
        if code not in rules:
            problems.append(
                f"{where}: rule {code} is not in the registry (implicit_io/rules.py; "
                f"known: {', '.join(sorted(rules))}). Add it there first."
            )
        elif code in claimed:
            problems.append(
                f"{where}: rule code {code} is already used by {claimed[code]}. "
                "Codes are never reused; pick the next free one."
            )
        elif Path(where).stem != code.lower():
            problems.append(
                f"{where}: holds rule {code}; rename the file to {code.lower()}.md "
                "so its URL is stable."
            )
        claimed.setdefault(code, where)
    return problems


def rule_link(rule: Rule, refdoc: str, title: str | None = None):
    """A link to ``rule``'s page from ``refdoc``, showing ``title`` (the code)."""
    text = title or rule.code
    shown = nodes.literal(text, text, classes=["rule-code"])
    return xref("doc", f"/{rule.docname}", refdoc, shown)


def rule_of(env, docname: str) -> Rule | None:
    """The rule whose page ``docname`` is, if it is one, with its page's examples."""
    rule = next((r for r in env.guide_rules.values() if r.docname == docname), None)
    if rule is None:
        return None
    return with_examples(rule, page_front_matter(env, docname).get("rule"))


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
            shown = self.inliner.problematic(self.rawtext, self.rawtext, message)
            return [shown], [message]
        return [rule_link(rule, self.env.docname, title)], []


def _load(app) -> None:
    # Where directives and roles find it (Sphinx 11 removes env.app).
    app.env.guide_rules = app.guide_rules


def _count_substitutions(app, config) -> None:
    """``{{ rule_count }}`` on any page: the rules in force, counted, never typed.

    Set when the configuration is read, so an unchanged rule set leaves the
    configuration unchanged and incremental builds stay incremental.
    """
    rules = load_rules(Path(app.srcdir), registry(config.rule_registry))
    app.guide_rules = rules
    substitutions = dict(getattr(config, "myst_substitutions", None) or {})
    substitutions["rule_count"] = sum(not rule.retired for rule in rules.values())
    config.myst_substitutions = substitutions


def _check_rule_pages(app, env) -> None:
    """Every build, from what the environment holds of each rule page."""
    pages = {  # a page whose front matter did not validate is reported already
        f"{name}.md": page_front_matter(env, name).get("rule")
        for name in env.found_docs
        if re.fullmatch(rf"{RULES_DIR}/io\w+", name) and name not in bad_pages(env)
    }
    for problem in rule_page_problems(pages, app.guide_rules):
        logger.warning("rule page: %s", problem, type="rules", subtype="registry")


def setup(app):
    app.setup_extension(f"{__package__}.front_matter")
    app.connect("env-check-consistency", _check_rule_pages)
    app.add_config_value("rule_registry", "implicit_io.rules:RULES", "env", types=[str])
    app.connect("config-inited", _count_substitutions)
    app.connect("builder-inited", _load)
    app.add_role("rule", RuleRole())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
