"""Which configuration a suite runs on, tests that hold only on some, and proof records.

A *configuration* is a database engine and a SQLAlchemy line: ``sqlite`` or
``postgresql``, ``2.1`` or ``2.0``. Each suite (``make test``, ``make test-postgres``,
``make test-sqlalchemy-2.0``, ...) runs every test on one configuration.

A test whose fact holds only on some configurations says so, with the reason::

    @pytest.mark.only_on(engine="postgresql", reason="SQLite has no ...")
    @pytest.mark.only_on(sqlalchemy="2.0", reason="2.1 wraps the error ...")

Elsewhere it is skipped with that reason. A value no suite runs is a usage error.

A suite run with ``--record-proofs`` writes ``proofs/<configuration>.json``: every
test's outcome, the versions it ran on, and fingerprints of the lock file and of
the code under test. The build reads these records (never typed numbers) to say
on which configurations a claim's test passed, and whether the record is current.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Engines and SQLAlchemy lines some suite runs, with the name a reader knows.
ENGINES = {"sqlite": "SQLite (aiosqlite)", "postgresql": "PostgreSQL (asyncpg)"}
SQLALCHEMY_LINES = ("2.1", "2.0")

#: The lock file a suite installed from; the Makefile sets it for each suite.
LOCK_FILE_VARIABLE = "GUIDE_LOCK_FILE"
DEFAULT_LOCK_FILE = "requirements.txt"

#: What a proof depends on besides the pins: the code under test, and its tests.
CODE_FOLDERS = ("snippets", "tests", "implicit_io", "guide_runtime")


@dataclass(frozen=True, order=True)
class Configuration:
    engine: str
    sqlalchemy: str

    @property
    def key(self) -> str:
        return f"{self.engine}-sqlalchemy-{self.sqlalchemy}"

    @property
    def label(self) -> str:
        return f"{ENGINES[self.engine]}, SQLAlchemy {self.sqlalchemy}"

    @property
    def short(self) -> str:
        """The label of a tab or a proof mark: ``SQLite · 2.1``."""
        return f"{ENGINES[self.engine].split()[0]} · {self.sqlalchemy}"


#: What `make test` runs: the pins of requirements.txt on a private SQLite.
DEFAULT = Configuration("sqlite", "2.1")

#: Every configuration some suite runs.
ALL_CONFIGURATIONS = tuple(
    Configuration(engine, line) for line in SQLALCHEMY_LINES for engine in ENGINES
)


def sqlalchemy_line(version: str | None = None) -> str:
    """``2.1`` for 2.1.x; by default, the line of the SQLAlchemy installed here."""
    if version is None:
        # Imported here: the site's build reads records and never needs SQLAlchemy.
        import sqlalchemy

        version = sqlalchemy.__version__
    return ".".join(version.split(".")[:2])


def current(url: str | None = None) -> Configuration:
    """The configuration of this process: its database URL and SQLAlchemy."""
    from sqlalchemy import make_url

    from .database import database_url

    backend = make_url(url or database_url()).get_backend_name()
    return Configuration(backend, sqlalchemy_line())


# --- Proof records --------------------------------------------------------------


def _digest(root: Path, paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_fingerprint(root: Path = ROOT) -> str:
    """A hash of every Python file a proof depends on (examples, toolkit, tests)."""
    files = [
        path
        for folder in CODE_FOLDERS
        for path in (root / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    ]
    return _digest(root, files)


def lock_file() -> str:
    return os.environ.get(LOCK_FILE_VARIABLE, DEFAULT_LOCK_FILE)


def lock_fingerprint(name: str, root: Path = ROOT) -> str:
    return hashlib.sha256((root / name).read_bytes()).hexdigest()


def write_record(
    configuration: Configuration,
    outcomes: Mapping[str, str],
    versions: Mapping[str, str],
    root: Path = ROOT,
    skips: Mapping[str, str] | None = None,
) -> Path:
    """Write the suite's proof record (deterministic: no dates or timings), with
    why each skipped test was skipped."""
    name = lock_file()
    record = {
        "configuration": {
            "engine": configuration.engine,
            "sqlalchemy": configuration.sqlalchemy,
        },
        "lock_file": name,
        "lock_sha256": lock_fingerprint(name, root),
        "code_sha256": code_fingerprint(root),
        "versions": dict(sorted(versions.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "skips": dict(sorted((skips or {}).items())),
    }
    path = root / "proofs" / f"{configuration.key}.json"
    write_if_changed(path, json.dumps(record, indent=1) + "\n")
    return path


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it holds that already.

    The build reads the records: a record written again unchanged would still
    make Sphinx read again every page that shows it (it compares modification
    times), so a second ``make test`` would rebuild pages nothing changed.
    """
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class Record:
    """One suite's recorded run, and whether it still speaks for this checkout."""

    configuration: Configuration
    versions: dict[str, str]
    outcomes: dict[str, str]
    #: Why the record no longer proves anything for this checkout, or None.
    stale: str | None
    #: Why each skipped test (or case) was skipped.
    skips: dict[str, str] = field(default_factory=dict)

    def skip_reason(self, test: str) -> str | None:
        """Why ``test`` (or its first skipped case) was skipped, if it was."""
        if test in self.skips:
            return self.skips[test]
        return next(
            (
                why
                for nodeid, why in self.skips.items()
                if nodeid.startswith(test + "[")
            ),
            None,
        )

    def outcome(self, test: str) -> str:
        """``passed``, ``failed``, ``skipped`` or ``not run`` for a test id.

        ``tests/test_x.py::test_y`` also covers its parametrized cases
        (``test_y[...]``): it passed only if every case passed.
        """
        exact = self.outcomes.get(test)
        cases = [exact] if exact is not None else self._by_test.get(test, [])
        if not cases:
            return "not run"
        for worst in ("failed", "skipped"):
            if worst in cases:
                return worst
        return "passed"

    def cases(self, test: str) -> dict[str, str]:
        """Each parametrized case of ``test`` → its outcome, by the case's id.

        ``tests/test_x.py::test_y`` recorded as ``test_y[pool=null]`` and
        ``test_y[pool=busy]`` gives ``{"pool=null": "passed", "pool=busy": ...}``,
        in the record's order; a test without parametrized cases gives ``{}``. A
        case's outcome is ``passed``, ``failed``, ``skipped`` or ``xfailed`` (a
        strict ``xfail``: the test shows the claim does *not* hold for that case).
        See :func:`summarize_cases` for what a page says about them.
        """
        return dict(self._cases_by_test.get(test, ()))

    @cached_property
    def _cases_by_test(self) -> dict[str, list[tuple[str, str]]]:
        by_test: dict[str, list[tuple[str, str]]] = {}
        for nodeid, outcome in self.outcomes.items():
            bare, bracket, rest = nodeid.partition("[")
            if bracket and rest.endswith("]"):
                by_test.setdefault(bare, []).append((rest[:-1], outcome))
        return by_test

    @cached_property
    def _by_test(self) -> dict[str, list[str]]:
        """Outcomes by test id, a parametrized test's cases under its bare id (a
        page asks for hundreds of outcomes; each would scan every one)."""
        by_test: dict[str, list[str]] = {}
        for nodeid, outcome in self.outcomes.items():
            by_test.setdefault(nodeid.partition("[")[0], []).append(outcome)
        return by_test


def case_dimensions(case: str) -> dict[str, str]:
    """``"pool=null-lazy=select"`` → ``{"pool": "null", "lazy": "select"}``.

    pytest joins the ids of stacked ``parametrize`` calls with ``-``; a case whose
    ids are all ``name=value`` (the convention of tests that prove a range) splits
    into its dimensions. Any other id gives ``{}``.
    """
    parts = re.split(r"-(?=[A-Za-z_][\w.]*=)", case)
    found: dict[str, str] = {}
    for part in parts:
        name, equals, value = part.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][\w.]*", name) or not value:
            return {}
        found[name] = value
    return found


@dataclass(frozen=True)
class CaseSummary:
    """What one configuration's record says about a parametrized test's cases."""

    #: Case ids that passed: the claim is proven for them.
    proven: tuple[str, ...] = ()
    #: Strict xfails: the test shows the claim does not hold for them.
    not_holding: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """``proven for: lazy=select, joined · not: lazy=noload`` (empty when the
        test has no cases). Ids of one dimension are written once:
        ``pool=default, null`` rather than ``pool=default, pool=null``."""
        parts = []
        for label, ids in (
            ("proven for", self.proven),
            ("not", self.not_holding),
            ("failed", self.failed),
            ("skipped", self.skipped),
        ):
            if ids:
                parts.append(f"{label}: {_compact(ids)}")
        return " · ".join(parts)


def _compact(ids: Iterable[str]) -> str:
    """Case ids for a reader: a one-dimension run shares its ``name=``."""
    written: list[str] = []
    previous: str | None = None
    for case in ids:
        dimensions = case_dimensions(case)
        if len(dimensions) == 1:
            [(name, value)] = dimensions.items()
            written.append(value if name == previous else case)
            previous = name
        else:
            written.append(case)
            previous = None
    return ", ".join(written)


def summarize_cases(cases: Mapping[str, str]) -> CaseSummary:
    """Group :meth:`Record.cases` by outcome, keeping the record's order.

    The ``{proof}`` badge shows ``summary.text`` beside each configuration's
    verdict: which cases of the cited test are proven there, which the test shows
    do not hold (strict xfail), and which failed or were skipped.
    """
    groups: dict[str, list[str]] = {
        "passed": [],
        "xfailed": [],
        "failed": [],
        "skipped": [],
    }
    for case, outcome in cases.items():
        groups.get(outcome, groups["failed"]).append(case)
    return CaseSummary(
        proven=tuple(groups["passed"]),
        not_holding=tuple(groups["xfailed"]),
        failed=tuple(groups["failed"]),
        skipped=tuple(groups["skipped"]),
    )


def load_records(root: Path = ROOT) -> dict[Configuration, Record]:
    """Every recorded suite run, each judged current or stale for this checkout."""
    records: dict[Configuration, Record] = {}
    code = code_fingerprint(root)
    for path in sorted((root / "proofs").glob("*.json")):
        data = json.loads(path.read_text())
        configuration = Configuration(**data["configuration"])
        lock = root / data["lock_file"]
        if not lock.is_file():
            stale = f"its lock file {data['lock_file']} no longer exists"
        elif lock_fingerprint(data["lock_file"], root) != data["lock_sha256"]:
            stale = f"{data['lock_file']} changed since the run"
        elif data["code_sha256"] != code:
            stale = "the examples or tests changed since the run"
        else:
            stale = None
        records[configuration] = Record(
            configuration,
            data["versions"],
            data["outcomes"],
            stale,
            data.get("skips", {}),
        )
    return records


def default_record_versions(root: Path = ROOT) -> dict[str, str]:
    """What the default configuration's suite ran on (Python, SQLAlchemy, ...): the
    versions the output the pages show was recorded with."""
    path = root / "proofs" / f"{DEFAULT.key}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.relative_to(root)} is missing: the pages show what the default "
            "configuration's suite recorded. Run `make test` to record it."
        )
    return json.loads(path.read_text())["versions"]


# --- Recorded captures: output that differs between configurations ----------------
#
# Where a page shows output that differs per configuration, the test that proves
# each variant records it with the ``record_capture`` fixture; a ``--record-proofs``
# run writes the captures of the tests that passed to
# ``proofs/captures/<configuration>.json``, and the ``captured-variants`` directive
# shows every configuration's recording side by side.


def captures_path(configuration: Configuration, root: Path = ROOT) -> Path:
    return root / "proofs" / "captures" / f"{configuration.key}.json"


def write_captures(
    configuration: Configuration, captures: Mapping[str, Mapping[str, str]]
) -> Path:
    """Write ``{name: {"test": nodeid, "text": output}}`` for this configuration."""
    path = captures_path(configuration)
    write_if_changed(path, json.dumps(dict(sorted(captures.items())), indent=1) + "\n")
    return path


def load_captures(root: Path = ROOT) -> dict[Configuration, dict[str, dict[str, str]]]:
    """Every configuration's recorded captures, by name."""
    found: dict[Configuration, dict[str, dict[str, str]]] = {}
    for configuration in ALL_CONFIGURATIONS:
        path = captures_path(configuration, root)
        if path.is_file():
            found[configuration] = json.loads(path.read_text())
    return found
