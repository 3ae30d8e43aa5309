"""Policy metadata: validated front matter, shown as a card, with a review reminder.

A policy page declares, in its front matter::

    ---
    policy:
      status: adopted              # draft | adopted | retired
      decision_level: advisory     # advisory | mandatory
      applies_to: [api-runtime, workers, tests]
      last_reviewed: 2026-06-17    # a date, YYYY-MM-DD
      review_every: 6 months       # N days | N weeks | N months
      owner: Platform engineering
    ---

Every build checks every page's ``policy:`` mapping; a missing or malformed field
is reported with the file and the fix, and the strict build fails. The card goes
under the page title; ``{policy-card} /guides/policy`` shows another page's card.
A page past its review date shows a "review overdue" notice and the build log says
so, but that is not a warning: a green build must not turn red because time passed.
"""

from __future__ import annotations

import calendar
import re
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from .yaml_loading import safe_load

STATUSES = ("draft", "adopted", "retired")
LEVELS = ("advisory", "mandatory")
AUDIENCES = ("api-runtime", "workers", "tests")
FIELDS = (
    "status",
    "decision_level",
    "applies_to",
    "last_reviewed",
    "review_every",
    "owner",
)
INTERVAL = re.compile(r"^([1-9]\d*) (day|week|month)s?$")
PAGE_GLOBS = ("index.md", "guides/**/*.md")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageMeta:
    docname: str
    status: str
    decision_level: str
    applies_to: tuple[str, ...]
    last_reviewed: date
    review_every: str
    owner: str

    @property
    def review_due(self) -> date:
        number, unit = INTERVAL.match(self.review_every).groups()
        count = int(number)
        if unit == "day":
            return self.last_reviewed + timedelta(days=count)
        if unit == "week":
            return self.last_reviewed + timedelta(weeks=count)
        months = self.last_reviewed.month - 1 + count
        year, month = self.last_reviewed.year + months // 12, months % 12 + 1
        day = min(self.last_reviewed.day, calendar.monthrange(year, month)[1])
        return date(year, month, day)

    def overdue(self, today: date) -> bool:
        return today > self.review_due


def _front_matter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    loaded = safe_load(match[1]) if match else None
    return loaded if isinstance(loaded, dict) else {}


def validate(
    where: str, data: object, today: date
) -> tuple[PageMeta | None, list[str]]:
    """The page's metadata, or the problems with it (each 'file: what to fix')."""
    if not isinstance(data, dict):
        return None, [
            f"{where}: 'policy:' must be a mapping with the fields {', '.join(FIELDS)}."
        ]
    problems = [
        f"{where}: policy front matter lacks '{key}'. Add it (fields: {', '.join(FIELDS)})."
        for key in FIELDS
        if key not in data
    ]
    problems += [
        f"{where}: unknown policy field '{key}'. Remove it, or use one of: {', '.join(FIELDS)}."
        for key in data
        if key not in FIELDS
    ]
    status, level = data.get("status"), data.get("decision_level")
    applies, reviewed = data.get("applies_to"), data.get("last_reviewed")
    every, owner = data.get("review_every"), data.get("owner")
    if "status" in data and status not in STATUSES:
        problems.append(
            f"{where}: unknown status {status!r}. Use one of: {', '.join(STATUSES)}."
        )
    if "decision_level" in data and level not in LEVELS:
        problems.append(
            f"{where}: decision_level {level!r} must be one of: {', '.join(LEVELS)}."
        )
    if "applies_to" in data and (
        not isinstance(applies, list)
        or not applies
        or any(item not in AUDIENCES for item in applies)
        or len(set(applies)) != len(applies)
    ):
        problems.append(
            f"{where}: applies_to {applies!r} must be a list of distinct values from: "
            f"{', '.join(AUDIENCES)}, like [api-runtime, workers]."
        )
    if "last_reviewed" in data:
        if type(reviewed) is not date:
            problems.append(
                f"{where}: last_reviewed {reviewed!r} must be a date written YYYY-MM-DD, "
                "unquoted, like 2026-06-17."
            )
        elif reviewed > today:
            problems.append(
                f"{where}: last_reviewed {reviewed} is in the future. Write the date "
                "of the last review."
            )
    if "review_every" in data and not (
        isinstance(every, str) and INTERVAL.match(every)
    ):
        problems.append(
            f"{where}: review_every {every!r} must read like '6 months', '90 days' "
            "or '8 weeks'."
        )
    if "owner" in data and not (isinstance(owner, str) and owner.strip()):
        problems.append(f"{where}: owner must name the team that owns the page.")
    if problems:
        return None, problems
    return PageMeta(
        docname=where.removesuffix(".md"),
        status=status,
        decision_level=level,
        applies_to=tuple(applies),
        last_reviewed=reviewed,
        review_every=every,
        owner=owner.strip(),
    ), []


def load_page_meta(srcdir: Path, today: date) -> tuple[dict[str, PageMeta], list[str]]:
    """Every page's valid metadata by docname, and the problems found."""
    found: dict[str, PageMeta] = {}
    problems: list[str] = []
    pages = sorted({page for glob in PAGE_GLOBS for page in srcdir.glob(glob)})
    for page in pages:
        where = page.relative_to(srcdir).as_posix()
        try:
            front = _front_matter(page.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            problems.append(f"{where}: front matter is not valid YAML: {error}")
            continue
        if "policy" not in front:
            continue
        meta, page_problems = validate(where, front["policy"], today)
        problems += page_problems
        if meta is not None:
            found[meta.docname] = meta
    return found, problems


def overdue_message(meta: PageMeta) -> str:
    return (
        f"{meta.docname}.md: review overdue: last reviewed {meta.last_reviewed}, "
        f"due {meta.review_due} (every {meta.review_every}). {meta.owner}: review the "
        "page, then set last_reviewed to the date of the review."
    )


def _field(name: str, *value: nodes.Node) -> nodes.field:
    body = nodes.paragraph()
    body += value
    field = nodes.field()
    field += nodes.field_name("", name)
    field += nodes.field_body("", body)
    return field


def card(meta: PageMeta, today: date, refdoc: str, link: bool) -> list[nodes.Node]:
    """The metadata card (sphinx-design card classes), and the overdue notice."""
    header = nodes.container(classes=["sd-card-header", "page-meta-header"])
    title = nodes.paragraph(classes=["sd-card-text"])
    if link:
        ref = addnodes.pending_xref(
            "",
            refdomain="std",
            reftype="doc",
            reftarget=f"/{meta.docname}",
            refexplicit=False,
            refdoc=refdoc,
        )
        ref += nodes.inline("", meta.docname)  # replaced by the page's own title
        title += ref
    else:
        title += nodes.Text("Policy status")
    header += title
    fields = nodes.field_list(classes=["page-meta"])
    fields += _field(
        "Status",
        nodes.inline("", meta.status, classes=[f"page-meta-status-{meta.status}"]),
    )
    fields += _field("Decision level", nodes.Text(meta.decision_level))
    fields += _field("Applies to", nodes.Text(", ".join(meta.applies_to)))
    fields += _field("Owner", nodes.Text(meta.owner))
    fields += _field("Last reviewed", nodes.Text(str(meta.last_reviewed)))
    fields += _field(
        "Next review",
        nodes.Text(f"{meta.review_due} (every {meta.review_every})"),
    )
    body = nodes.container(classes=["sd-card-body"])
    body += fields
    box = nodes.container(
        classes=[
            "sd-card",
            "sd-sphinx-override",
            "sd-mb-3",
            "sd-shadow-sm",
            "page-meta-card",
        ]
    )
    box += [header, body]
    shown: list[nodes.Node] = [box]
    if meta.overdue(today):
        notice = nodes.admonition(classes=["warning", "review-overdue"])
        notice += nodes.title(text="Review overdue")
        notice += nodes.paragraph(
            text=f"This policy was last reviewed on {meta.last_reviewed} and was due "
            f"for review on {meta.review_due}. Until {meta.owner} reviews it, treat "
            "details that depend on library versions with care."
        )
        shown.append(notice)
    return shown


def _remember(env, docname: str, source: str, overdue: bool) -> None:
    if not hasattr(env, "page_meta_shown"):
        env.page_meta_shown = {}
    env.page_meta_shown[docname] = (source, overdue)


class PolicyCard(SphinxDirective):
    """``{policy-card} /guides/policy``: another page's card, linking to it."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        docname = self.arguments[0].strip("/").removesuffix(".md")
        meta = self.env.page_meta.get(docname)
        if meta is None:
            raise self.error(
                f"policy-card: {docname}.md has no valid 'policy:' front matter. "
                "Name a policy page, or fix its metadata."
            )
        self.env.note_dependency(str(Path(self.env.srcdir, f"{docname}.md")))
        today = date.today()
        _remember(self.env, self.env.docname, docname, meta.overdue(today))
        return card(meta, today, self.env.docname, link=True)


def _load(app) -> None:
    app.page_meta, problems = load_page_meta(Path(app.srcdir), date.today())
    app.env.page_meta = app.page_meta  # for directives (Sphinx 11 removes env.app)
    for problem in problems:
        logger.warning("page metadata: %s", problem, type="page_meta", subtype="field")
    for meta in app.page_meta.values():
        if meta.overdue(date.today()):
            message = overdue_message(meta)
            # Information, not a warning: -W must not fail a build for the calendar.
            logger.info(message)
            if app.quiet:  # -q hides info; this reminder should still be seen
                print(message, file=sys.stderr)


def _add_card(app, doctree: nodes.document) -> None:
    docname = app.env.docname
    meta = app.page_meta.get(docname)
    section = doctree.next_node(nodes.section)
    if meta is None or section is None:
        return
    today = date.today()
    _remember(app.env, docname, docname, meta.overdue(today))
    title = section.next_node(nodes.title)
    position = section.index(title) + 1 if title is not None else 0
    for offset, node in enumerate(card(meta, today, docname, link=False)):
        section.insert(position + offset, node)


def stale_cards(
    shown: dict[str, tuple[str, bool]], metas: dict[str, PageMeta], today: date
) -> list[str]:
    """Pages whose cached card no longer tells the truth about being overdue."""
    return [
        docname
        for docname, (source, overdue) in shown.items()
        if source in metas and metas[source].overdue(today) != overdue
    ]


def _outdated(app, env, added, changed, removed) -> list[str]:
    # An unchanged page is not re-read, but the calendar may have moved past its
    # review date since its card was rendered: re-read exactly those pages.
    shown = getattr(env, "page_meta_shown", {})
    return stale_cards(shown, app.page_meta, date.today())


def _purge(app, env, docname) -> None:
    getattr(env, "page_meta_shown", {}).pop(docname, None)


def _merge(app, env, docnames, other) -> None:
    for docname in docnames:
        if docname in getattr(other, "page_meta_shown", {}):
            _remember(env, docname, *other.page_meta_shown[docname])


def setup(app):
    app.connect("builder-inited", _load)
    app.connect("doctree-read", _add_card)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.add_directive("policy-card", PolicyCard)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
