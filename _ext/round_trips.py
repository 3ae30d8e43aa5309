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
like.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from typing import ClassVar

from docutils import nodes
from executed_store import cached
from snippet_targets import check_targets, snippet_problems_fail_the_build
from sphinx.util.docutils import SphinxDirective


@dataclass(frozen=True)
class Row:
    target: str
    label: str
    counts: tuple[int, ...]


def measure(seed: str, targets: list[str], sizes: list[int]) -> list[list[int]]:
    """Statements sent by each target at each size; ValueError on any problem."""
    # Imported on first run: a build that finds every result stored needs no SQLAlchemy.
    from tests.harness import capture, describe_error, load_callable

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


class RoundTrips(SphinxDirective):
    required_arguments = 1
    has_content = True
    option_spec: ClassVar = {"parents": str}

    def run(self) -> list[nodes.Node]:
        seed = self.arguments[0]
        try:
            sizes = [int(size) for size in self.options.get("parents", "").split()]
        except ValueError:
            sizes = []
        if not sizes or min(sizes) < 1:
            raise self.error(
                "round-trips needs ':parents:' with one or more positive sizes, "
                "for example ':parents: 10 100 1000'."
            )
        lines = [line.strip() for line in self.content if line.strip()]
        rows = [line.partition(" ") for line in lines]
        if not rows or any(":" not in target or not label for target, _, label in rows):
            raise self.error(
                "round-trips: write one row per line, 'module:function Label', "
                "for example 'eager_loading:post_titles_by_author selectinload'."
            )
        targets = [target for target, _, _ in rows]
        check_targets(self, seed, *targets)
        with snippet_problems_fail_the_build(self, seed):
            counts = cached(
                self,
                [seed, *targets],
                {"seed": seed, "targets": targets, "sizes": sizes},
                lambda: measure(seed, targets, sizes),
            )

        header = ["Strategy", *(f"{size} parents" for size in sizes)]
        body = [
            [_inline(label), *([nodes.Text(str(n))] for n in row_counts)]
            for (_, _, label), row_counts in zip(rows, counts, strict=True)
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


def setup(app):
    app.setup_extension("executed_store")
    app.add_directive("round-trips", RoundTrips)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
