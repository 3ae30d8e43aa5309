"""``round-trips``: a table of the statements each strategy sends as the data grows.

    ```{round-trips} eager_loading:_add_authors_with_posts
    :parents: 10 100 1000

    eager_loading:post_titles_by_author_run_sync Lazy loads inside `run_sync`
    eager_loading:post_titles_by_author selectinload
    ```

The argument is a seed, ``async def seed(session, parents: int)``. Each content line
names a snippet function (``module:function``) and the label of its row. For every
size, each function runs on a fresh database seeded with that many parents, through
the same harness as ``captured-run``; the cells are the statements it sent. Every
function must return the same value at a given size, so the rows compare like with
like. A table is the largest run of its page: a first parallel build finds the tables
in the pages (:func:`tables_in`, reading them as MyST does) and measures them in a
process of its own from the start (``executed_store.store_ahead``).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from executed_store import cached, cached_run, store_ahead
from myst_parser.parsers.directives import parse_directive_text
from snippet_contract import markdown_parser
from snippet_targets import check_targets, snippet_problems_fail_the_build
from sphinx.util.docutils import SphinxDirective


def measure(seed: str, targets: list[str], sizes: list[int]) -> list[list[int]]:
    """Statements sent by each target at each size; ValueError on any problem."""
    # Imported on first run: a build that finds every result stored needs no SQLAlchemy.
    from guide_runtime.capture import capture, describe_error, load_callable

    seed_function = load_callable(seed)
    if "parents" not in inspect.signature(seed_function).parameters:
        raise ValueError(
            f"the seed {seed!r} must take a 'parents' argument: "
            "async def seed(session, parents: int)"
        )
    counts: list[list[int]] = [[] for _ in targets]
    for size in sizes:
        sized_seed = functools.partial(seed_function, parents=size)
        results = {}
        for row, target in enumerate(targets):
            captured = capture(target, sized_seed)
            if captured.error is not None:
                raise ValueError(
                    f"{target} raised {describe_error(captured.error)} with {size} "
                    "parents; a round-trip table compares strategies that work."
                )
            results[target] = captured.result
            counts[row].append(captured.statements.count)
        if len({repr(result) for result in results.values()}) > 1:
            raise ValueError(
                f"with {size} parents the strategies returned different values; "
                "each row must compute the same result: "
                + ", ".join(f"{t} -> {r!r:.60}" for t, r in results.items())
            )
    return counts


def _inline(text: str) -> list[nodes.Node]:
    """A label, with `backticked` parts as inline code."""
    parts = re.split(r"`([^`]+)`", text)
    return [
        nodes.literal(part, part) if odd else nodes.Text(part)
        for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts))
        if part
    ]


@dataclass(frozen=True)
class Table:
    """What a round-trips directive asks for."""

    seed: str
    sizes: list[int]
    #: (target, label) per row.
    rows: list[tuple[str, str]]

    @property
    def targets(self) -> list[str]:
        return [target for target, _ in self.rows]

    @property
    def runs(self) -> list[str]:
        """Every snippet function it runs: the seed, then each row's."""
        return [self.seed, *self.targets]

    def request(self) -> dict[str, object]:
        """What the stored result is keyed by (executed_store.cached)."""
        return {"seed": self.seed, "targets": self.targets, "sizes": self.sizes}

    def measure(self) -> list[list[int]]:
        return measure(self.seed, self.targets, self.sizes)


def read_table(seed: str, parents: str, lines: list[str]) -> Table:
    """The directive's argument, ``:parents:`` option and content lines as a Table;
    ValueError, saying what to write, when they are not one."""
    try:
        sizes = [int(size) for size in parents.split()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ValueError(
            "round-trips needs ':parents:' with one or more positive sizes, "
            "for example ':parents: 10 100 1000'."
        )
    rows = [line.strip().partition(" ") for line in lines if line.strip()]
    if not rows or any(":" not in target or not label for target, _, label in rows):
        raise ValueError(
            "round-trips: write one row per line, 'module:function Label', "
            "for example 'eager_loading:post_titles_by_author selectinload'."
        )
    return Table(seed, sizes, [(target, label) for target, _, label in rows])


class RoundTrips(SphinxDirective):
    required_arguments = 1
    has_content = True
    option_spec: ClassVar = {"parents": str}

    def run(self) -> list[nodes.Node]:
        try:
            table = read_table(
                self.arguments[0], self.options.get("parents", ""), list(self.content)
            )
        except ValueError as problem:
            raise self.error(str(problem)) from None
        check_targets(self, table.seed, *table.targets)
        with snippet_problems_fail_the_build(self, table.seed):
            counts = cached(self, table.runs, table.request(), table.measure)

        header = ["Strategy", *(f"{size} parents" for size in table.sizes)]
        body = [
            [_inline(label), *([nodes.Text(str(n))] for n in row_counts)]
            for (_, label), row_counts in zip(table.rows, counts, strict=True)
        ]
        return [self._table(header, body)]

    def _table(self, header: list[str], body: list[list[list[nodes.Node]]]):
        table = nodes.table(classes=["round-trips"])
        group = nodes.tgroup(cols=len(header))
        table += group
        group += [nodes.colspec(colwidth=1) for _ in header]
        head = nodes.thead()
        head += self._row([[nodes.Text(text)] for text in header])
        group += head
        rows = nodes.tbody()
        rows += [self._row(cells) for cells in body]
        group += rows
        return table

    @staticmethod
    def _row(cells: list[list[nodes.Node]]) -> nodes.row:
        row = nodes.row()
        for content in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", *content)
            row += entry
        return row


def tables_in(
    pages: Iterable[Path], myst_extensions: Iterable[str] = ()
) -> Iterator[Table]:
    """Every round-trips table of these MyST pages, read as MyST reads it; tables
    the directive would refuse are left out (their page reports them)."""
    markdown = markdown_parser(myst_extensions)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        if "{round-trips}" not in text:  # most pages: no parsing
            continue
        for token in markdown.parse(text):
            name, _, first_line = token.info.strip().partition(" ")
            if token.type not in ("fence", "colon_fence") or name != "{round-trips}":
                continue
            parsed = parse_directive_text(RoundTrips, first_line, token.content)
            if parsed.warnings or not parsed.arguments:
                continue
            try:
                yield read_table(
                    parsed.arguments[0], parsed.options.get("parents", ""), parsed.body
                )
            except ValueError:
                continue


def _measure_tables(app) -> None:
    docnames = app.project.discover(app.config.exclude_patterns)
    pages = [Path(app.project.doc2path(name, absolute=True)) for name in docnames]
    markdown = sorted(page for page in pages if page.suffix == ".md")
    myst_extensions = getattr(app.config, "myst_enable_extensions", ())
    for table in tables_in(markdown, myst_extensions):
        with suppress(Exception):  # the page's reader meets it again, and reports it
            cached_run(
                app.srcdir, RoundTrips, table.runs, table.request(), table.measure
            )


def _measure_ahead(app) -> None:
    # Each table is the largest run of its page (N + 1 statements at each size):
    # a first parallel build measures them in a process of their own from the
    # start, and the page's reader finds them stored, or waits for them.
    store_ahead(app, partial(_measure_tables, app))


def setup(app):
    app.setup_extension("executed_store")
    app.add_directive("round-trips", RoundTrips)
    app.connect("builder-inited", _measure_ahead)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
