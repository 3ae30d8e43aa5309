"""The claims inventory (proofs/claims.toml, tools/claims.py): every sentence that
cites a test is listed, every cited test exists, and a quantified sentence's range
is covered by the tests it cites."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from guide_runtime.configurations import (
    ALL_CONFIGURATIONS,
    ROOT,
    Configuration,
    case_dimensions,
)
from tests.plugins.configurations import runs_on
from tools import claims

# --- The cited tests, as pytest collects them --------------------------------------


@dataclass(frozen=True)
class Case:
    """One collected test case: where it runs, and its parametrize id."""

    test: str  # ``test_module::test_name`` (or ``::Class::test_name``), as cited
    case: str  # the parametrize id, "" for a test without cases
    configurations: frozenset[Configuration]
    xfail: bool

    @property
    def dimensions(self) -> dict[str, str]:
        return case_dimensions(self.case)


def _test_modules() -> dict[str, Path]:
    """Test modules by file stem, as ``{proof}`` finds them (a service's own suite,
    a folder with its own pytest.ini, is not the guide's)."""
    tests = ROOT / "tests"
    found: dict[str, Path] = {}
    for path in sorted(tests.rglob("test_*.py")):
        folders = [f for f in path.parents if f.is_relative_to(tests)]
        if not any((folder / "pytest.ini").is_file() for folder in folders):
            found.setdefault(path.stem, path)
    return found


def _admitted(item: pytest.Item) -> frozenset[Configuration]:
    markers = [marker.kwargs for marker in item.iter_markers("only_on")]
    return frozenset(
        c for c in ALL_CONFIGURATIONS if all(runs_on(m, c) for m in markers)
    )


def _case(module: str, item: pytest.Item) -> Case:
    function = getattr(item, "originalname", item.name)
    cls = getattr(item, "cls", None)
    name = f"{cls.__name__}::{function}" if cls is not None else function
    callspec = getattr(item, "callspec", None)
    return Case(
        test=f"{module}::{name}",
        case=callspec.id if callspec is not None else "",
        configurations=_admitted(item),
        xfail=item.get_closest_marker("xfail") is not None,
    )


def _collect(session: pytest.Session, path: Path) -> list[pytest.Item]:
    """A module's items, collected in this process (the module is imported once)."""
    items: list[pytest.Item] = []
    stack: list[pytest.Collector | pytest.Item] = [
        pytest.Module.from_parent(session, path=path)
    ]
    while stack:
        node = stack.pop()
        if isinstance(node, pytest.Item):
            items.append(node)
        else:
            stack.extend(node.collect())
    return items


@pytest.fixture(scope="module")
def inventory() -> list[dict[str, Any]]:
    return claims.load(ROOT / claims.INVENTORY)


@pytest.fixture(scope="module")
def cases(
    request: pytest.FixtureRequest, inventory: list[dict[str, Any]]
) -> dict[str, list[Case]]:
    """Every case of every cited module, by test. A whole-suite run has collected
    them already; a run of fewer modules collects the others here."""
    modules = _test_modules()
    cited = {test.partition("::")[0] for entry in inventory for test in entry["tests"]}
    by_path: dict[Path, list[pytest.Item]] = {}
    for item in request.session.items:
        by_path.setdefault(Path(item.path), []).append(item)
    found: dict[str, list[Case]] = {}
    for module in sorted(cited & set(modules)):
        path = modules[module]
        items = by_path.get(path) or _collect(request.session, path)
        for item in items:
            case = _case(module, item)
            found.setdefault(case.test, []).append(case)
    return found


# --- The inventory against the pages and the tests ----------------------------------


def test_the_inventory_lists_every_citing_sentence_of_the_pages() -> None:
    text, dropped = claims.regenerate(ROOT)
    current = (ROOT / claims.INVENTORY).read_text()
    assert not dropped, "annotated sentences no longer on the pages: " + "; ".join(
        f"{d['page']}: {d['sentence'][:60]!r}" for d in dropped
    )
    assert current == text, (
        f"{claims.INVENTORY} is out of date with the pages: run "
        "`.venv/bin/python tools/claims.py`, then annotate any new quantified claim"
    )


def test_every_cited_test_exists(
    inventory: list[dict[str, Any]], cases: dict[str, list[Case]]
) -> None:
    missing = sorted(
        {
            f"{entry['page']}:{entry['line']}: {test}"
            for entry in inventory
            for test in entry["tests"]
            if test not in cases
        }
    )
    assert not missing, "cited tests that do not exist:\n" + "\n".join(missing)


def test_every_quantified_claim_declares_its_range_or_its_scope(
    inventory: list[dict[str, Any]],
) -> None:
    bare = [
        f"{entry['page']}:{entry['line']} {entry['quantifiers']}: "
        f"{entry['sentence'][:80]!r}"
        for entry in inventory
        if entry["quantifiers"]
        and not entry.get("range")
        and not str(entry.get("scope", "")).strip()
    ]
    assert not bare, (
        "quantified claims with neither a range nor a scope in "
        f"{claims.INVENTORY}:\n" + "\n".join(bare)
    )


def uncovered(
    declared: Mapping[str, Iterable[str]], found: Iterable[Case]
) -> list[str]:
    """What of a declared range no cited case covers (empty when covered).

    ``engine`` and ``sqlalchemy`` name configurations (each combination of the
    named values, the other dimension taken whole when one is named); every other
    dimension names parametrize ids ``name=value``, each of which some case not
    marked xfail must have, on each of those configurations.
    """
    found = [case for case in found if not case.xfail]
    named = {k: tuple(v) for k, v in declared.items()}
    configured = {
        k: v for k, v in named.items() if k in claims.CONFIGURATION_DIMENSIONS
    }
    if configured:
        engines = configured.get("engine", claims.CONFIGURATION_DIMENSIONS["engine"])
        lines = configured.get(
            "sqlalchemy", claims.CONFIGURATION_DIMENSIONS["sqlalchemy"]
        )
        places = [
            Configuration(e, line) for e, line in itertools.product(engines, lines)
        ]
    else:
        places = [None]  # on some configuration, whichever
    dimensions = {k: v for k, v in named.items() if k not in configured}
    wanted = [
        dict(zip(dimensions, values, strict=True))
        for values in itertools.product(*dimensions.values())
    ]
    missing: list[str] = []
    for place in places:
        for combination in wanted:
            covered = any(
                (
                    (place is None and bool(case.configurations))
                    or place in case.configurations
                )
                and all(case.dimensions.get(k) == v for k, v in combination.items())
                for case in found
            )
            if not covered:
                where = f" on {place.key}" if place is not None else ""
                what = "-".join(f"{k}={v}" for k, v in combination.items()) or "a case"
                missing.append(f"{what}{where}")
    return missing


def test_every_declared_range_is_covered_by_the_cited_tests(
    inventory: list[dict[str, Any]], cases: dict[str, list[Case]]
) -> None:
    problems: list[str] = []
    for entry in inventory:
        declared = entry.get("range")
        if not declared:
            continue
        found = [case for test in entry["tests"] for case in cases.get(test, [])]
        unknown = [
            f"{name}={value}"
            for name, values in declared.items()
            if name in claims.CONFIGURATION_DIMENSIONS
            for value in values
            if value not in claims.CONFIGURATION_DIMENSIONS[name]
        ]
        gaps = unknown or uncovered(declared, found)
        if gaps:
            problems.append(
                f"{entry['page']}:{entry['line']}: {entry['sentence'][:70]!r} "
                f"declares {declared}, but {', '.join(entry['tests'])} "
                f"cover(s) no {', '.join(gaps)}"
            )
    assert not problems, "\n".join(problems)


# --- The checker itself, on small inputs ------------------------------------------

SQLITE_21 = Configuration("sqlite", "2.1")
EVERYWHERE = frozenset(ALL_CONFIGURATIONS)


def _cases(*ids: str, where=EVERYWHERE, xfail: tuple[str, ...] = ()) -> list[Case]:
    return [Case("t::x", case, frozenset(where), case in xfail) for case in ids]


def test_a_range_wider_than_the_parametrization_is_named() -> None:
    found = _cases("pool=default", "pool=null")
    assert uncovered({"pool": ["default", "null"]}, found) == []
    assert uncovered({"pool": ["default", "null", "busy"]}, found) == ["pool=busy"]


def test_a_case_marked_xfail_covers_nothing() -> None:
    found = _cases("lazy=select", "lazy=noload", xfail=("lazy=noload",))
    assert uncovered({"lazy": ["select", "noload"]}, found) == ["lazy=noload"]


def test_a_range_of_configurations_needs_a_test_that_runs_there() -> None:
    only_sqlite_21 = _cases("", where={SQLITE_21})
    assert (
        uncovered({"sqlalchemy": ["2.1"], "engine": ["sqlite"]}, only_sqlite_21) == []
    )
    assert uncovered({"sqlalchemy": ["2.0", "2.1"]}, only_sqlite_21) == [
        "a case on sqlite-sqlalchemy-2.0",
        "a case on postgresql-sqlalchemy-2.0",
        "a case on postgresql-sqlalchemy-2.1",
    ]


def test_a_range_crosses_its_dimensions_with_its_configurations() -> None:
    found = _cases("pool=null", where={SQLITE_21}) + _cases("pool=busy")
    assert (
        uncovered({"pool": ["busy"], "engine": ["sqlite", "postgresql"]}, found) == []
    )
    assert uncovered({"pool": ["null"], "engine": ["sqlite"]}, found) == [
        "pool=null on sqlite-sqlalchemy-2.0"
    ]


PAGE = """\
---
rule:
  summary: "Every rule {proof}`test_x::test_front_matter`."
---

# A page

Rollback expires every object
({proof}`test_x::test_rollback`). A commit
expires them by default ({proof}`test_x::test_commit`, {proof}`test_x::test_other`),
e.g. `session.commit()`.

```python
x = "{proof}`test_x::test_in_code`. Always."
```

- On both lines the read fails, as {proof}`test_x::test_item` shows
  (see it; {proof}`test_x::test_see`).
- Four things expire `all_attributes()`.

| Case | Proof |
| --- | --- |
| whatever | {proof}`test_x::test_row` |
"""


def test_the_generator_reads_each_citing_sentence_of_a_page() -> None:
    found = claims.claims_in(PAGE, "guides/p.md")
    assert [(c.line, c.tests, c.quantifiers) for c in found] == [
        (8, ("test_x::test_rollback",), ("every",)),
        (9, ("test_x::test_commit", "test_x::test_other"), ()),
        (17, ("test_x::test_item", "test_x::test_see"), ("both",)),
        (23, ("test_x::test_row",), ("whatever",)),
    ]
    assert found[0].sentence == "Rollback expires every object."
    # A citation in parentheses is left out; one the sentence reads is named.
    assert found[1].sentence == (
        "A commit expires them by default, e.g. `session.commit()`."
    )
    assert found[2].sentence == (
        "On both lines the read fails, as [test_x::test_item] shows (see it)."
    )


def test_quantifiers_in_code_or_links_do_not_count() -> None:
    assert claims.quantifiers("`expire_all()` and [the guide](every.md)") == ()
    assert claims.quantifiers("Four things expire, on 2.0 and 2.1 alike") == (
        "four things",
        "2.0 and 2.1",
    )


def test_regenerating_keeps_what_was_written_by_hand() -> None:
    old = [
        {
            "page": "p.md",
            "line": 3,
            "sentence": "Always fails.",
            "tests": ["t::a"],
            "range": {"pool": ["null"]},
        },
        {
            "page": "p.md",
            "line": 9,
            "sentence": "Every load, as was.",
            "tests": ["t::b"],
            "scope": "one load",
        },
        {
            "page": "p.md",
            "line": 12,
            "sentence": "Gone.",
            "tests": ["t::c"],
            "scope": "x",
        },
    ]
    new = [
        claims.Claim("p.md", 5, "Always fails.", ("t::a",), ("always",)),
        # Reworded: found again by its page and its tests.
        claims.Claim("p.md", 11, "Every load, reworded.", ("t::b",), ("every",)),
    ]
    entries, dropped = claims.merge(new, old)
    assert entries[0]["line"] == 5 and entries[0]["range"] == {"pool": ["null"]}
    assert entries[1]["scope"] == "one load"
    assert [d["sentence"] for d in dropped] == ["Gone."]
    text = claims.dump(entries)
    assert claims.load_text(text) == entries
