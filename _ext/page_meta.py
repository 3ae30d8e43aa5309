"""Policy metadata: front matter shown as a card, with a review reminder.

A policy page declares (validated by ``guide_runtime.front_matter.PolicyPage``)::

    ---
    policy:
      status: adopted              # draft | adopted | retired
      decision_level: advisory     # advisory | mandatory
      applies_to: [api-runtime, workers, tests]
      last_reviewed: 2026-06-17    # a date, YYYY-MM-DD
      review_every: 6 months       # N days | N weeks | N months
      owner: Platform engineering
    ---

A field that does not validate fails the strict build, naming the file and the fix.
The card goes under the title; ``{policy-card} /guides/policy`` shows another page's.
Past its review date a page says "review overdue", and so does the build log, not as
a warning: a green build must not turn red because time passed.
"""

from __future__ import annotations

import calendar
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from guide_runtime.pages import FrontMatterError, front_matter

from .front_matter import page_front_matter
from .markup import per_page, store, under_title, xref

logger = logging.getLogger(__name__)
#: sphinx-design's card classes: the card looks like the site's other cards.
CARD = ["sd-card", "sd-sphinx-override", "sd-mb-3", "sd-shadow-sm"]


@dataclass(frozen=True)
class PageMeta:
    docname: str
    #: The page's validated ``policy:`` mapping (plain values).
    policy: dict[str, Any]

    @property
    def review_due(self) -> date:
        """``review_every`` after ``last_reviewed`` (a shorter month: its last day)."""
        number, unit = self.policy["review_every"].split()
        count, reviewed = int(number), self.policy["last_reviewed"]
        if unit.startswith("day"):
            return reviewed + timedelta(days=count)
        if unit.startswith("week"):
            return reviewed + timedelta(weeks=count)
        months = reviewed.month - 1 + count
        year, month = reviewed.year + months // 12, months % 12 + 1
        return date(year, month, min(reviewed.day, calendar.monthrange(year, month)[1]))

    def overdue(self, today: date) -> bool:
        return today > self.review_due


def page_metas(
    front_matters: dict[str, dict], today: date
) -> tuple[dict[str, PageMeta], list[str]]:
    """The policy pages among validated front matters (by docname), and the
    problems that depend on the day."""
    found: dict[str, PageMeta] = {}
    problems: list[str] = []
    for name, data in sorted(front_matters.items()):
        policy = data.get("policy")
        if policy is None:
            continue
        if policy["last_reviewed"] > today:
            problems.append(
                f"{name}.md: last_reviewed {policy['last_reviewed']} is in the "
                "future. Write the date of the last review."
            )
            continue
        found[name] = PageMeta(name, policy)
    return found, problems


def overdue_message(meta: PageMeta) -> str:
    policy = meta.policy
    return (
        f"{meta.docname}.md: review overdue: last reviewed {policy['last_reviewed']}, "
        f"due {meta.review_due} (every {policy['review_every']}). {policy['owner']}: "
        "review the page, then set last_reviewed to the date of the review."
    )


def _field(name: str, *value: nodes.Node) -> nodes.field:
    field = nodes.field()
    field += nodes.field_name("", name)
    field += nodes.field_body("", nodes.paragraph("", "", *value))
    return field


def card(meta: PageMeta, today: date, refdoc: str, link: bool) -> list[nodes.Node]:
    """The metadata card (sphinx-design card classes), and the overdue notice."""
    policy = meta.policy
    title = nodes.paragraph(classes=["sd-card-text"])
    if link:  # the inline is replaced by the page's own title
        shown = nodes.inline("", meta.docname)
        title += xref("doc", f"/{meta.docname}", refdoc, shown, refexplicit=False)
    else:
        title += nodes.Text("Policy status")
    header = nodes.container("", title, classes=["sd-card-header", "page-meta-header"])
    status = nodes.inline(
        "", policy["status"], classes=[f"page-meta-status-{policy['status']}"]
    )
    fields = nodes.field_list(classes=["page-meta"])
    fields += [
        _field("Status", status),
        _field("Decision level", nodes.Text(policy["decision_level"])),
        _field("Applies to", nodes.Text(", ".join(policy["applies_to"]))),
        _field("Owner", nodes.Text(policy["owner"])),
        _field("Last reviewed", nodes.Text(str(policy["last_reviewed"]))),
        _field(
            "Next review",
            nodes.Text(f"{meta.review_due} (every {policy['review_every']})"),
        ),
    ]
    body = nodes.container("", fields, classes=["sd-card-body"])
    classes = [*CARD, "page-meta-card"]
    shown: list[nodes.Node] = [nodes.container("", header, body, classes=classes)]
    if meta.overdue(today):
        notice = nodes.admonition(classes=["warning", "review-overdue"])
        notice += nodes.title(text="Review overdue")
        notice += nodes.paragraph(
            text=f"This policy was last reviewed on {policy['last_reviewed']} and was due "
            f"for review on {meta.review_due}. Until {policy['owner']} reviews it, treat "
            "details that depend on library versions with care."
        )
        shown.append(notice)
    return shown


def _remember(env, docname: str, source: str, overdue: bool) -> None:
    """Which page's card a page shows, and whether it said overdue."""
    store(env, "page_meta_shown")[docname] = (source, overdue)


class PolicyCard(SphinxDirective):
    """``{policy-card} /guides/policy``: another page's card, linking to it."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        source = self.arguments[0].strip("/").removesuffix(".md")
        path = Path(self.env.srcdir, f"{source}.md")
        # From its file: this build may not have read that page yet.
        try:
            data = front_matter(Path(self.env.srcdir), path).model_dump()
        except (OSError, FrontMatterError):
            data = {}
        today = date.today()
        meta = page_metas({source: data}, today)[0].get(source)
        if meta is None:
            raise self.error(
                f"policy-card: {source}.md has no valid 'policy:' front matter. "
                "Name a policy page, or fix its metadata."
            )
        self.env.note_dependency(str(path))
        _remember(self.env, self.env.docname, source, meta.overdue(today))
        return card(meta, today, self.env.docname, link=True)


def _metas(env) -> tuple[dict[str, PageMeta], list[str]]:
    return page_metas(getattr(env, "guide_front_matter", {}), date.today())


def _remind(app, env) -> None:
    """Every build: a future review date is a warning, an overdue review a notice."""
    metas, problems = _metas(env)
    for problem in problems:
        logger.warning("page metadata: %s", problem, type="page_meta", subtype="field")
    for meta in metas.values():
        if meta.overdue(date.today()):
            # Information, not a warning: -W must not fail a build for the calendar.
            logger.info(overdue_message(meta))
            if app.quiet:  # -q hides info; this reminder should still be seen
                print(overdue_message(meta), file=sys.stderr)


def _add_card(app, doctree: nodes.document) -> None:
    docname = app.env.docname
    today = date.today()
    meta = page_metas({docname: page_front_matter(app.env, docname)}, today)[0]
    section = doctree.next_node(nodes.section)
    if docname not in meta or section is None:
        return
    _remember(app.env, docname, docname, meta[docname].overdue(today))
    under_title(section, card(meta[docname], today, docname, link=False))


def stale_cards(
    shown: dict[str, tuple[str, bool]], metas: dict[str, PageMeta], today: date
) -> list[str]:
    """Pages whose card no longer tells the truth about being overdue."""
    return [
        name
        for name, (source, overdue) in shown.items()
        if source in metas and metas[source].overdue(today) != overdue
    ]


def _outdated(app, env, added, changed, removed) -> list[str]:
    # An unchanged page is not re-read, but the calendar may have moved past its
    # review date since its card was rendered: re-read exactly those pages.
    shown = getattr(env, "page_meta_shown", {})
    return stale_cards(shown, _metas(env)[0], date.today())


def setup(app):
    app.setup_extension(f"{__package__}.front_matter")
    app.connect("env-updated", _remind)
    app.connect("doctree-read", _add_card)
    app.connect("env-get-outdated", _outdated)
    per_page(app, "page_meta_shown")
    app.add_directive("policy-card", PolicyCard)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
