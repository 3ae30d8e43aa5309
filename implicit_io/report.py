"""Load reports and baselines: what a test run loaded, merged across CI shards.

A *report* (``--implicit-io-report PATH``) holds, per rule and attribute, how
often the guard reported the load, where it first happened and in which tests.
Reports of several CI shards (or of pytest-xdist's workers) merge into one.

A *baseline* (``--implicit-io-baseline PATH``) holds the loads a service
accepted as debt when it started tracking: a baselined load is reported but
passes in enforce mode, a new one fails, and an entry no longer seen is
reported as removable, so that the file only shrinks (``prune``).

    implicit-io-report merge shard-1.json shard-2.json -o report.json
    implicit-io-report show report.json --baseline implicit-io-baseline.json
    implicit-io-report baseline report.json -o implicit-io-baseline.json
    implicit-io-report prune implicit-io-baseline.json report.json

Exit status: 0 done, 1 ``show --fail-on-new`` found loads the baseline does not
hold, 2 a usage error (a missing or malformed file).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command itself never imports SQLAlchemy: it starts faster
    from implicit_io.guard import ImplicitLoad

REPORT_FORMAT = 1
Key = tuple[str, str]  # (rule, "Entity.attribute")


class ReportError(ValueError):
    """A report or baseline file is missing, is not JSON, or is not one."""


@dataclass
class Entry:
    """One rule and attribute: how often, where first, in which tests."""

    rule: str
    attribute: str
    kind: str
    count: int = 0
    #: "path:line" of the first load of ``first_test``, the test id that sorts first
    #: among those that made one: the same place however the suite was split
    #: (pytest-xdist workers, CI shards) or ordered.
    first: str = ""
    tests: set[str] = field(default_factory=set)
    first_test: str = ""

    def offer_first(self, location: str, test: str) -> None:
        """Take ``location`` as ``first`` if ``test`` comes before ``first_test``
        (a load outside any test, ``""``, comes after every test)."""
        if not self.first or _test_order(test) < _test_order(self.first_test):
            self.first, self.first_test = location, test


def _test_order(test: str) -> tuple[bool, str]:
    return (not test, test)


@dataclass
class Report:
    loads: dict[Key, Entry] = field(default_factory=dict)
    allowed: dict[Key, int] = field(default_factory=dict)  # allow-listed (IO401)

    def add(self, load: ImplicitLoad, test: str | None = None) -> None:
        key = load.rule, load.attribute
        entry = self.loads.setdefault(key, Entry(load.rule, load.attribute, load.kind))
        entry.offer_first(load.location, test or "")
        entry.count += 1
        if test:
            entry.tests.add(test)

    def merge(self, other: Report) -> Report:
        """This report plus ``other``'s loads, in either order the same report."""
        for key, theirs in other.loads.items():
            ours = self.loads.setdefault(
                key, Entry(theirs.rule, theirs.attribute, theirs.kind)
            )
            ours.offer_first(theirs.first, theirs.first_test)
            ours.count += theirs.count
            ours.tests |= theirs.tests
        for key, count in other.allowed.items():
            self.allowed[key] = self.allowed.get(key, 0) + count
        return self

    @property
    def total(self) -> int:
        return sum(entry.count for entry in self.loads.values())

    def most_frequent(self) -> list[Entry]:
        return sorted(
            self.loads.values(), key=lambda e: (-e.count, e.rule, e.attribute)
        )

    def to_dict(self) -> dict:
        return {
            "implicit_io_report": REPORT_FORMAT,
            "total": self.total,
            "loads": [
                {
                    "rule": e.rule,
                    "attribute": e.attribute,
                    "kind": e.kind,
                    "count": e.count,
                    "first": e.first,
                    "first_test": e.first_test,
                    "tests": sorted(e.tests),
                }
                for e in self.most_frequent()
            ],
            "allowed": [
                {"rule": rule, "attribute": attribute, "count": count}
                for (rule, attribute), count in sorted(self.allowed.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "report") -> Report:
        if not isinstance(data, dict) or data.get("implicit_io_report") != 1:
            raise ReportError(f"{source}: not an implicit-io report (format 1)")
        report = cls()
        try:
            for item in data["loads"]:
                entry = Entry(
                    item["rule"],
                    item["attribute"],
                    item["kind"],
                    int(item["count"]),
                    item["first"],
                    set(item["tests"]),
                    # Reports written before it name no test: their first place.
                    item.get("first_test", ""),
                )
                report.loads[entry.rule, entry.attribute] = entry
            for item in data["allowed"]:
                report.allowed[item["rule"], item["attribute"]] = int(item["count"])
        except (KeyError, TypeError, ValueError) as error:
            raise ReportError(f"{source}: malformed entry: {error!r}") from None
        return report

    def write(self, path: str | Path) -> None:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    @classmethod
    def read(cls, path: str | Path) -> Report:
        return cls.from_dict(_read_json(path), str(path))


def merge(reports: Iterable[Report]) -> Report:
    merged = Report()
    for report in reports:
        merged.merge(report)
    return merged


@dataclass(frozen=True)
class Baseline:
    """Accepted loads, by rule and attribute, with the count when accepted."""

    counts: dict[Key, int]

    @property
    def keys(self) -> frozenset[Key]:
        return frozenset(self.counts)

    @classmethod
    def of(cls, report: Report) -> Baseline:
        return cls({key: entry.count for key, entry in report.loads.items()})

    def new_in(self, report: Report) -> list[Entry]:
        """The report's loads this baseline does not hold: they fail enforce."""
        return [e for e in report.most_frequent() if (e.rule, e.attribute) not in self]

    def removable(self, report: Report) -> list[Key]:
        """Entries no load of the report matched: fixed, or not run."""
        return sorted(self.counts.keys() - report.loads.keys())

    def pruned(self, report: Report) -> Baseline:
        """Without the entries the report did not see; never with new ones."""
        return Baseline({k: n for k, n in self.counts.items() if k in report.loads})

    def __contains__(self, key: object) -> bool:
        return key in self.counts

    def write(self, path: str | Path) -> None:
        data = {
            "implicit_io_baseline": REPORT_FORMAT,
            "total": sum(self.counts.values()),
            "loads": [
                {"rule": rule, "attribute": attribute, "count": count}
                for (rule, attribute), count in sorted(self.counts.items())
            ],
        }
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: str | Path) -> Baseline:
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("implicit_io_baseline") != 1:
            raise ReportError(f"{path}: not an implicit-io baseline (format 1)")
        try:
            return cls(
                {(i["rule"], i["attribute"]): int(i["count"]) for i in data["loads"]}
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ReportError(f"{path}: malformed entry: {error!r}") from None


def _read_json(path: str | Path) -> object:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ReportError(f"{path}: cannot read it: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not JSON: {error}") from None


def summary(report: Report, baseline: Baseline | None = None) -> list[str]:
    """The lines the plugin and ``show`` print: most frequent first."""
    lines = []
    if not report.loads and not report.allowed:
        lines.append("no implicit loads")
    if report.loads:
        lines.append(f"{report.total} implicit load(s), most frequent first:")
    for entry in report.most_frequent():
        mark = ""
        if baseline is not None:
            mark = (
                "  (baseline)"
                if (entry.rule, entry.attribute) in baseline
                else ("  NEW")
            )
        lines.append(
            f"{entry.count:6d}  {entry.rule}  {entry.attribute}  first at "
            f"{entry.first}{mark}"
        )
    if report.allowed:
        lines.append(f"{sum(report.allowed.values())} allow-listed load(s) (IO401):")
    for (rule, attribute), count in sorted(
        report.allowed.items(), key=lambda item: (-item[1], item[0])
    ):
        lines.append(f"{count:6d}  {rule}  {attribute}")
    if baseline is not None:
        new = baseline.new_in(report)
        removable = baseline.removable(report)
        lines.append(
            f"baseline: {len(baseline.counts)} entr(ies), "
            f"{len(report.loads) - len(new)} still seen, {len(new)} new"
        )
        if removable:
            lines.append(
                f"{len(removable)} baseline entr(ies) no longer seen: removable "
                "(implicit-io-report prune, after a run of the whole suite):"
            )
            lines += [f"        {rule}  {attribute}" for rule, attribute in removable]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="implicit-io-report",
        description="Merge, show and baseline implicit-io load reports. Exit "
        "status: 0 done, 1 new loads (show --fail-on-new), 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="merge shard reports into one")
    merging.add_argument("reports", nargs="+", metavar="REPORT")
    merging.add_argument("-o", "--output", required=True, metavar="PATH")
    showing = commands.add_parser("show", help="print reports (merged) as a table")
    showing.add_argument("reports", nargs="+", metavar="REPORT")
    showing.add_argument("--baseline", metavar="PATH")
    showing.add_argument(
        "--fail-on-new", action="store_true", help="exit 1 on loads not in baseline"
    )
    writing = commands.add_parser("baseline", help="write a baseline from reports")
    writing.add_argument("reports", nargs="+", metavar="REPORT")
    writing.add_argument("-o", "--output", required=True, metavar="PATH")
    pruning = commands.add_parser(
        "prune", help="remove baseline entries the reports no longer see"
    )
    pruning.add_argument("baseline", metavar="BASELINE")
    pruning.add_argument("reports", nargs="+", metavar="REPORT")
    arguments = parser.parse_args(argv)
    try:
        report = merge(Report.read(path) for path in arguments.reports)
        if arguments.command == "merge":
            report.write(arguments.output)
            print(
                f"{arguments.output}: {report.total} load(s) from "
                f"{len(arguments.reports)} report(s)"
            )
            return 0
        if arguments.command == "baseline":
            Baseline.of(report).write(arguments.output)
            print(f"{arguments.output}: {len(report.loads)} entr(ies)")
            return 0
        if arguments.command == "prune":
            baseline = Baseline.read(arguments.baseline)
            pruned = baseline.pruned(report)
            pruned.write(arguments.baseline)
            removed = len(baseline.counts) - len(pruned.counts)
            print(
                f"{arguments.baseline}: {removed} entr(ies) removed, "
                f"{len(pruned.counts)} left"
            )
            return 0
        baseline = Baseline.read(arguments.baseline) if arguments.baseline else None
    except ReportError as error:
        print(f"implicit-io-report: {error}", file=sys.stderr)
        return 2
    print("\n".join(summary(report, baseline)))
    new = baseline.new_in(report) if baseline is not None else report.loads
    return 1 if arguments.fail_on_new and new else 0


if __name__ == "__main__":
    sys.exit(main())
