"""Charts and diagrams drawn from the tables' data (_ext/charts.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from _ext.charts import phases_diagram, round_trip_chart
from _ext.rules import PHASE_NAMES, load_rules
from guide_runtime.configurations import ROOT
from implicit_io.rules import RULES

SVG = "{http://www.w3.org/2000/svg}"
HEADER = ["Strategy", "10 parents", "100 parents", "1000 parents"]
ROWS = [
    ("Lazy loads inside run_sync", [11, 101, 1001]),
    ("selectinload", [2, 2, 3]),
    ("joinedload", [1, 1, 1]),
]


def test_the_round_trip_chart_is_an_accessible_svg() -> None:
    svg = ET.fromstring(round_trip_chart(HEADER, ROWS, chart_id="eager"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "eager-title eager-desc"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title.get("id") == "eager-title" and desc.get("id") == "eager-desc"
    # The text alternative says every number, with its strategy and size.
    for name, counts in ROWS:
        for size, count in zip(HEADER[1:], counts, strict=True):
            assert f"{count} at {size}" in desc.text
        assert name in desc.text


def test_each_count_is_a_bar_and_more_statements_a_longer_one() -> None:
    svg = ET.fromstring(round_trip_chart(HEADER, ROWS))
    bars = [float(bar.get("width")) for bar in svg.iter(f"{SVG}rect")]
    values = [
        int(text.text)
        for text in svg.iter(f"{SVG}text")
        if "chart-value" in text.get("class")
    ]
    assert len(bars) == len(values) == len(ROWS) * (len(HEADER) - 1)
    assert values == [
        count for column in range(3) for _, counts in ROWS for count in [counts[column]]
    ]
    pairs = list(zip(bars, values, strict=True))
    for bar, value in pairs:
        for other, other_value in pairs:
            if value > other_value:
                assert bar > other, (value, other_value)


def test_the_chart_scales_to_a_phone_and_follows_the_theme() -> None:
    text = round_trip_chart(HEADER, ROWS)
    svg = ET.fromstring(text)
    assert svg.get("viewBox").split()[2] == "360"  # drawn for a phone's column
    assert svg.get("width") == "100%" and svg.get("height") is None
    # No colour of its own: text is currentColor and bars the theme's (guide.css),
    # so dark mode needs nothing more.
    assert not re.search(r"fill=\"#|stroke=\"#|style=", text)


def test_a_row_without_a_count_per_size_is_refused() -> None:
    with pytest.raises(ValueError, match="one count per size"):
        round_trip_chart(HEADER, [("joinedload", [1, 1])])


def test_the_phases_diagram_lists_each_phase_with_its_rules_in_order() -> None:
    html = phases_diagram(
        [
            (1, "first", [("IO101", "a")]),
            (2, "second", [("IO201", "b"), ("IO202", "c")]),
        ]
    )
    assert (
        html.index("Phase 1")
        < html.index("IO101")
        < html.index("Phase 2")
        < html.index("IO202")
    )
    assert "phase 1: 1 rules, phase 2: 2 rules" in html


def test_the_policy_pages_diagram_is_the_rule_registry(built_site: Path) -> None:
    page = (built_site / "guides" / "policy.html").read_text()
    figure = page[page.index('<figure class="phases-diagram">') :]
    figure = figure[: figure.index("</figure>")]
    steps = figure.split('<li class="phase-step">')[1:]
    assert len(steps) == len(PHASE_NAMES)
    rules = load_rules(ROOT, RULES)
    for number, step in enumerate(steps, start=1):
        assert f"Phase {number}</span> {PHASE_NAMES[number]}" in step
        codes = re.findall(r'phase-rule-code">(IO\d+)<', step)
        assert codes == sorted(
            r.code for r in rules.values() if r.phase == number and not r.retired
        )


def test_each_round_trip_table_has_its_chart_with_the_same_numbers(
    built_site: Path,
) -> None:
    page = (built_site / "guides" / "eager-loading.html").read_text()
    table_at = page.index('class="round-trips')
    table = page[table_at : page.index("</table>", table_at)]
    after = page[page.index("</table>", table_at) :]
    chart = after[after.index("<svg") : after.index("</svg>") + len("</svg>")]
    # Right after the table: before the page's next paragraph.
    assert after.index("<svg") < after.index("<p>")
    numbers = [int(n) for n in re.findall(r"<p>(\d+)</p>", table)]
    shown = [int(n) for n in re.findall(r'class="chart-value"[^>]*>(\d+)<', chart)]
    assert numbers and sorted(shown) == sorted(numbers)
