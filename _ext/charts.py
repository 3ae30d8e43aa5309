"""Charts drawn at build time from the data the tables show, offline and accessible.

- Every ``{round-trips}`` table is followed by an inline SVG bar chart of the same
  counts (statements per loading strategy as the parents grow, log scale).
- ``{enforcement-phases}`` draws the enforcement phases (``rules.PHASE_NAMES``) with
  the rules of each, from the rule registry.

No script, web font or image file; the SVG scales with its viewBox and the phases
reflow into a column on a phone; text and lines in ``currentColor``, fills from the
theme's CSS variables (dark mode); the SVG's ``<title>`` and ``<desc>`` say every
number.
"""

from __future__ import annotations

import math
from html import escape

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from .rules import PHASE_NAMES

# --- The round-trip chart ------------------------------------------------------------

#: Geometry, in the SVG's own units (it scales to the column's width).
WIDTH = 360
LEFT = 8
BAR_WIDTH = 270  # the longest bar; the value is written after it
BAR_HEIGHT = 10
ROW = 30  # a strategy: its name, then its bar
GROUP_GAP = 14


def _log_length(value: int, largest: int) -> float:
    """A bar's length on a log scale (1 statement is a short bar, 0 none)."""
    if value <= 0:
        return 0.0
    return max(2.0, BAR_WIDTH * math.log10(value + 1) / math.log10(largest + 1))


def round_trip_chart(
    header: list[str], rows: list[tuple[str, list[int]]], chart_id: str = "round-trips"
) -> str:
    """The round-trip table as an accessible inline SVG: a group of bars per size
    (``header[1:]``), a bar per strategy (``rows``: name, counts), one log scale;
    ``chart_id`` prefixes its title's and description's ids (unique on the page)."""
    sizes = header[1:]
    if not rows or any(len(counts) != len(sizes) for _, counts in rows):
        raise ValueError("every row needs one count per size in the header")
    largest = max(max(counts) for _, counts in rows) or 1
    summary = "; ".join(
        f"{name}: "
        + ", ".join(
            f"{count} at {size}" for size, count in zip(sizes, counts, strict=True)
        )
        for name, counts in rows
    )
    parts: list[str] = []
    y = 0
    for column, size in enumerate(sizes):
        y += 18
        parts.append(
            f'<text class="chart-group" x="{LEFT}" y="{y}">{escape(size)}</text>'
        )
        y += 6
        for name, counts in rows:
            count = counts[column]
            length = _log_length(count, largest)
            parts.append(
                f'<text class="chart-label" x="{LEFT}" y="{y + 11}">{escape(name)}</text>'
            )
            parts.append(
                f'<rect class="chart-bar" x="{LEFT}" y="{y + 15}" '
                f'width="{length:.1f}" height="{BAR_HEIGHT}" rx="2"/>'
            )
            parts.append(
                f'<text class="chart-value" x="{LEFT + length + 5:.1f}" '
                f'y="{y + 24}">{count}</text>'
            )
            y += ROW
        y += GROUP_GAP
    height = y
    title = "Statements sent per loading strategy, as the number of parents grows"
    return (
        f'<svg class="chart round-trip-chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(summary)}. Bars on a log scale.</desc>'
        + "".join(parts)
        + "</svg>"
    )


# --- The enforcement phases ------------------------------------------------------------


def phases_diagram(phases: list[tuple[int, str, list[tuple[str, str]]]]) -> str:
    """The enforcement phases as an HTML figure: each phase's number, name and rules
    (code, name), in order, each a step towards the next."""
    steps = []
    for number, name, rules in phases:
        items = "".join(
            f'<li><span class="phase-rule-code">{escape(code)}</span> {escape(title)}</li>'
            for code, title in rules
        )
        steps.append(
            '<li class="phase-step">'
            f'<p class="phase-title"><span class="phase-number">Phase {number}</span> '
            f"{escape(name)}</p>"
            f'<ul class="phase-rules" aria-label="Rules of phase {number}">{items}</ul>'
            "</li>"
        )
    counts = ", ".join(f"phase {n}: {len(rules)} rules" for n, _, rules in phases)
    return (
        '<figure class="phases-diagram">'
        f'<ol class="phase-steps">{"".join(steps)}</ol>'
        f"<figcaption>Enforcement grows phase by phase ({escape(counts)}); each phase "
        "adds its rules to those before it.</figcaption>"
        "</figure>"
    )


class EnforcementPhases(SphinxDirective):
    """``{enforcement-phases}``: each phase of the rule registry with its rules."""

    def run(self) -> list[nodes.Node]:
        live = sorted(
            (rule for rule in self.env.guide_rules.values() if not rule.retired),
            key=lambda rule: rule.code,
        )
        phases = [
            (number, name, [(r.code, r.name) for r in live if r.phase == number])
            for number, name in PHASE_NAMES.items()
        ]
        html = phases_diagram(phases)
        # The page's text already names every rule: keep the search index as it was.
        return [nodes.raw("", html, format="html", classes=["no-search"])]


def round_trip_figure(
    header: list[str], rows: list[tuple[str, list[int]]], chart_id: str
) -> nodes.raw:
    """The chart of a round-trips table, to show right after it."""
    svg = round_trip_chart(header, rows, chart_id)
    html = (
        f'<figure class="chart-figure">{svg}<figcaption>The table above as a '
        "chart: one bar per strategy and size, on a log scale.</figcaption></figure>"
    )
    # The table holds the same words and numbers: the search index has them.
    return nodes.raw("", html, format="html", classes=["no-search"])


def setup(app):
    app.setup_extension(f"{__package__}.rules")
    app.add_directive("enforcement-phases", EnforcementPhases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
