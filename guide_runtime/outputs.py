"""Page outputs: what a page shows of a snippet run, recorded by the test suite.

Three directives show what code did: ``{captured-run}`` (one run: SQL, count,
error, warnings, result), ``{round-trips}`` (statements per strategy as the data
grows) and ``{generated-table}`` (rows a function computes); a rule page's
``{rule-example}`` shows a captured run of the functions its front matter names.
The build runs none of them. ``tests/examples/test_page_outputs.py`` finds every
such request in the pages (:func:`page_requests`), runs it on the suite's
configuration and compares what it did with the record in
``proofs/outputs/<configuration>.json``; run with ``--record-outputs`` (``make
record``) it writes the record instead. The build renders the records.

A record keeps the SHA-256 of each snippet module its request names. A record made
from other code than the module now on disk is *stale*: the build refuses it,
naming the page, the module and ``make record``. (A change the record cannot see,
in a module the snippet imports, changes what the test observes: the suite then
fails until the output is re-recorded.)

``python -m guide_runtime.outputs`` lists the default configuration's missing and
stale records and exits 1 if there are any; ``make serve`` then re-records those
(``--record-outputs --only-stale``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from docutils.parsers.rst import directives

from . import configurations
from .configurations import ROOT, Configuration

RECORD_COMMAND = "make record"
CODE_DIRECTIVES = frozenset({"code-block", "code", "sourcecode", "code-cell"})


# --- The directives' syntax, shared by the build and the recording test ---------


class CapturedRunSyntax:
    """``{captured-run} module:function`` with ``:expect:``, ``:seed:``,
    ``:show-result:`` and ``:result-varies:`` (the value returned changes from run
    to run, a clock or a count of ticks: the record keeps one run's value, and the
    suite compares everything else)."""

    required_arguments = 1
    optional_arguments = 0
    final_argument_whitespace = False
    has_content = False
    option_spec: ClassVar = {
        "expect": lambda arg: directives.choice(arg, ("ok", "error")),
        "seed": directives.unchanged_required,
        "show-result": directives.flag,
        "result-varies": directives.flag,
    }


class RoundTripsSyntax:
    """``{round-trips} seed`` with ``:parents: 10 100`` and one
    ``module:function Label`` row per line."""

    required_arguments = 1
    optional_arguments = 0
    final_argument_whitespace = False
    has_content = True
    option_spec: ClassVar = {"parents": directives.unchanged_required}


class GeneratedTableSyntax:
    """``{generated-table} module:function`` with ``:caption:``."""

    required_arguments = 1
    optional_arguments = 0
    final_argument_whitespace = False
    has_content = False
    option_spec: ClassVar = {"caption": directives.unchanged}


# --- Requests -------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One run a page shows; its :attr:`key` names its record."""

    kind: str  # "captured-run", "round-trips" or "generated-table"
    #: The function run (captured-run, generated-table), or the seed (round-trips).
    target: str
    seed: str | None = None
    sizes: tuple[int, ...] = ()
    #: round-trips: (function, label) per row.
    rows: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        if self.kind == "round-trips":
            sizes = " ".join(map(str, self.sizes))
            functions = " ".join(function for function, _ in self.rows)
            return f"round-trips {self.target} parents={sizes} rows={functions}"
        seed = f" seed={self.seed}" if self.seed else ""
        return f"{self.kind} {self.target}{seed}"

    @property
    def targets(self) -> list[str]:
        """Every ``module:function`` it runs."""
        seed = [self.seed] if self.seed else []
        return [self.target, *seed, *(function for function, _ in self.rows)]

    @property
    def modules(self) -> list[str]:
        """The snippet modules it names, as paths from the project root."""
        names = {target.partition(":")[0] for target in self.targets}
        return sorted(f"snippets/{name}.py" for name in names)

    def run(self) -> Any:
        """Run it here, on this process's configuration: JSON data for the record."""
        from . import capture  # SQLAlchemy and the snippets: only to run

        if self.kind == "captured-run":
            return capture.run_output(self.target, self.seed)
        if self.kind == "round-trips":
            functions = [function for function, _ in self.rows]
            return capture.round_trip_counts(self.target, functions, list(self.sizes))
        return capture.table_rows(self.target)


def round_trips_request(seed: str, parents: str, lines: list[str]) -> Request:
    """A ``{round-trips}`` directive's argument, ``:parents:`` and rows as a
    Request; ValueError saying what to write when they are not one."""
    try:
        sizes = tuple(int(size) for size in parents.split())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ValueError(
            "round-trips needs ':parents:' with one or more positive sizes, "
            "for example ':parents: 10 100 1000'."
        )
    rows = [line.strip().partition(" ") for line in lines if line.strip()]
    if not rows or any(":" not in function or not label for function, _, label in rows):
        raise ValueError(
            "round-trips: write one row per line, 'module:function Label', "
            "for example 'eager_loading:post_titles_by_author selectinload'."
        )
    return Request(
        "round-trips",
        seed,
        sizes=sizes,
        rows=tuple((function, label.strip()) for function, _, label in rows),
    )


@dataclass(frozen=True)
class PageUse:
    """Where a page shows a request, and whether the page says it fails."""

    page: str  # path from the project root
    line: int
    request: Request
    expect: str = "ok"
    result_varies: bool = False

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def _uses_in_text(page: str, text: str, offset: int, markdown) -> Iterator[PageUse]:
    from myst_parser.parsers.directives import parse_directive_text

    for token in markdown.parse(text):
        if token.type not in ("fence", "colon_fence") or token.map is None:
            continue
        line = offset + token.map[0] + 1
        name, _, first_line = token.info.strip().partition(" ")
        if not (name.startswith("{") and name.endswith("}")):
            continue
        name = name[1:-1]
        syntax = {
            "captured-run": CapturedRunSyntax,
            "round-trips": RoundTripsSyntax,
            "generated-table": GeneratedTableSyntax,
        }.get(name)
        if syntax is None:
            if name not in CODE_DIRECTIVES:  # other directives hold Markdown
                yield from _uses_in_text(page, token.content, line, markdown)
            continue
        parsed = parse_directive_text(syntax, first_line, token.content)
        if parsed.warnings or not parsed.arguments:
            continue  # the page's build reports it
        argument, options = parsed.arguments[0], parsed.options
        if name == "round-trips":
            try:
                request = round_trips_request(
                    argument, options.get("parents", ""), parsed.body
                )
            except ValueError:
                continue
        else:
            request = Request(name, argument, seed=options.get("seed"))
        expect = options.get("expect", "ok")
        yield PageUse(page, line, request, expect, "result-varies" in options)


def page_requests(root: Path = ROOT) -> list[PageUse]:
    """Every run the pages show, where they show it, in page order."""
    # Here, not at the top: a build that renders records parses no page this way.
    from .pages import front_matter, markdown_parser, site_pages

    markdown = markdown_parser()
    found: list[PageUse] = []
    for page in site_pages(root):
        where = page.relative_to(root).as_posix()
        text = page.read_text(encoding="utf-8")
        rule = front_matter(root, page).rule
        if rule is not None:
            for kind, expect in (("example", "error"), ("use_instead", "ok")):
                target = getattr(rule, kind)
                if target is not None and f"{{rule-example}} {kind}" in text:
                    request = Request("captured-run", target, seed=rule.seed)
                    found.append(PageUse(where, 1, request, expect))
        if (
            "{captured-run}" in text
            or "{round-trips}" in text
            or "{generated-table}" in text
        ):
            found += _uses_in_text(where, text, 0, markdown)
    return found


def requests_by_key(root: Path = ROOT) -> dict[str, list[PageUse]]:
    """Each distinct request (by key) and every place that shows it."""
    grouped: dict[str, list[PageUse]] = {}
    for use in page_requests(root):
        grouped.setdefault(use.request.key, []).append(use)
    return grouped


# --- Records --------------------------------------------------------------------


def sources(request: Request, root: Path = ROOT) -> dict[str, str]:
    """SHA-256 of each snippet module the request names, as it is on disk now."""
    found = {}
    for module in request.modules:
        path = root / module
        found[module] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        )
    return found


@dataclass(frozen=True)
class Entry:
    """One recorded output, and what it was made from."""

    output: Any
    sources: dict[str, str] = field(default_factory=dict)

    def stale_modules(self, request: Request, root: Path = ROOT) -> list[str]:
        """The modules that changed since the record was made."""
        now = sources(request, root)
        return [module for module in now if self.sources.get(module) != now[module]]


def outputs_path(configuration: Configuration, root: Path = ROOT) -> Path:
    return root / "proofs" / "outputs" / f"{configuration.key}.json"


def load_outputs(configuration: Configuration, root: Path = ROOT) -> dict[str, Entry]:
    path = outputs_path(configuration, root)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        key: Entry(value["output"], value["sources"]) for key, value in data.items()
    }


def write_outputs(
    configuration: Configuration,
    recorded: dict[str, Entry],
    keep: set[str] | None = None,
    root: Path = ROOT,
) -> Path:
    """Merge ``recorded`` into the configuration's file, keeping the other entries
    whose keys are in ``keep`` (every key the pages show); deterministic JSON."""
    entries = load_outputs(configuration, root)
    if keep is not None:
        entries = {key: entry for key, entry in entries.items() if key in keep}
    entries.update(recorded)
    path = outputs_path(configuration, root)
    data = {
        key: {"sources": entry.sources, "output": entry.output}
        for key, entry in sorted(entries.items())
    }
    configurations.write_if_changed(
        path, json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    )
    return path


def problems(
    configuration: Configuration = configurations.DEFAULT, root: Path = ROOT
) -> dict[str, str]:
    """Each request the pages show with no current record on ``configuration``:
    its key, and where and why, for a reader."""
    recorded = load_outputs(configuration, root)
    found = {}
    for key, uses in requests_by_key(root).items():
        entry = recorded.get(key)
        if entry is None:
            found[key] = f"{uses[0]}: {key}: not recorded on {configuration.label}"
        elif stale := entry.stale_modules(uses[0].request, root):
            found[key] = (
                f"{uses[0]}: {key}: recorded from other code than {', '.join(stale)}"
            )
    return found


def main() -> int:
    found = problems()
    for problem in found.values():
        print(problem)
    if found:
        print(
            f"{len(found)} page output(s) to record: {RECORD_COMMAND}", file=sys.stderr
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
