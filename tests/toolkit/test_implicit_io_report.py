"""Reports and baselines as data: merging, what is new, what is removable.

The runs that write and read them (pytest-xdist, CI shards, the ratchet) are in
tests/toolkit/test_plugin_reports.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from implicit_io.guard import ImplicitLoad
from implicit_io.report import Baseline, Report, ReportError, main, merge, summary


def load(attribute: str, where: str = "app.py:3") -> ImplicitLoad:
    return ImplicitLoad("IO102", "lazy", attribute, f"{where} in f", "/r/io102")


def report_of(*loads: tuple[str, str]) -> Report:
    report = Report()
    for attribute, test in loads:
        report.add(load(attribute, f"{test}.py:1"), test)
    return report


def test_merging_adds_counts_and_keeps_the_first_place() -> None:
    first = report_of(("User.posts", "a"), ("User.posts", "a"))
    second = report_of(("User.posts", "b"), ("Post.comments", "b"))
    merged = merge([first, second])
    posts = merged.loads["IO102", "User.posts"]
    assert (posts.count, posts.first, posts.tests) == (3, "a.py:1", {"a", "b"})
    assert merged.total == 4
    assert [e.attribute for e in merged.most_frequent()] == [
        "User.posts",
        "Post.comments",
    ]


def test_the_first_place_does_not_depend_on_order_or_split() -> None:
    """Workers and shards finish in any order; the first place is that of the test
    whose id sorts first, so every split of a suite reports the same one."""
    loads = [("User.posts", "test_b"), ("User.posts", "test_a"), ("User.posts", "")]
    in_order = report_of(*loads).to_dict()
    assert in_order == report_of(*reversed(loads)).to_dict()
    [entry] = in_order["loads"]
    assert (entry["first"], entry["first_test"]) == ("test_a.py:1", "test_a")
    shards = [report_of(load) for load in loads]
    assert merge(shards).to_dict() == in_order
    assert merge(list(reversed(shards))).to_dict() == in_order
    # Within one test, its first load is the first place, as a serial run sees it.
    report = Report()
    report.add(load("User.posts", "x.py:9"), "test_a")
    report.add(load("User.posts", "x.py:3"), "test_a")
    assert report.loads["IO102", "User.posts"].first == "x.py:9"


def test_a_report_survives_its_json(tmp_path: Path) -> None:
    report = report_of(("User.posts", "a"))
    report.allowed["IO102", "Order.customer"] = 2
    report.write(tmp_path / "r.json")
    assert Report.read(tmp_path / "r.json").to_dict() == report.to_dict()


def test_the_baseline_says_what_is_new_and_what_is_removable(tmp_path: Path) -> None:
    baseline = Baseline.of(report_of(("User.posts", "a"), ("Post.comments", "a")))
    today = report_of(("User.posts", "a"), ("User.roles", "b"))
    assert [e.attribute for e in baseline.new_in(today)] == ["User.roles"]
    assert baseline.removable(today) == [("IO102", "Post.comments")]
    pruned = baseline.pruned(today)
    assert pruned.counts == {("IO102", "User.posts"): 1}  # never gains User.roles
    pruned.write(tmp_path / "b.json")
    assert Baseline.read(tmp_path / "b.json") == pruned
    assert summary(today, baseline)[-3:] == [
        "baseline: 2 entr(ies), 1 still seen, 1 new",
        "1 baseline entr(ies) no longer seen: removable (implicit-io-report prune, "
        "after a run of the whole suite):",
        "        IO102  Post.comments",
    ]


def test_show_fails_on_new_loads_when_asked(tmp_path: Path, capsys) -> None:
    report_of(("User.posts", "a")).write(tmp_path / "r.json")
    Baseline({}).write(tmp_path / "b.json")
    arguments = [
        "show",
        str(tmp_path / "r.json"),
        "--baseline",
        str(tmp_path / "b.json"),
    ]
    assert main(arguments) == 0
    assert main([*arguments, "--fail-on-new"]) == 1
    assert "     1  IO102  User.posts  first at a.py:1  NEW" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "not an implicit-io report"),
        ("{", "not JSON"),
        ('{"implicit_io_report": 1, "loads": [{}], "allowed": []}', "malformed"),
    ],
)
def test_a_bad_report_is_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "r.json").write_text(text)
    with pytest.raises(ReportError, match=message):
        Report.read(tmp_path / "r.json")
