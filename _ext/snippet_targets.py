"""The ``module:function`` names by which directives run snippet code at build time.

``captured-run``, ``generated-table`` and ``round-trips`` each run functions from
``snippets/`` while a page builds. What they share lives here: a name that points
nowhere fails the build with a message naming the directive, the name and the fix
(docutils adds the page and line). What they run is stored by content
(executed_store.py), which also makes the page depend on the code behind its
output. Not an extension itself: the three import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sphinx.util.docutils import SphinxDirective

#: What the harness raises for a snippet it cannot run as the page asks.
SNIPPET_PROBLEMS = (ValueError, LookupError, TypeError)


def check_targets(directive: SphinxDirective, *targets: str) -> None:
    """Fail unless each target's module is in snippets/."""
    for target in targets:
        module = target.partition(":")[0]
        snippet = Path(directive.env.srcdir, "snippets", f"{module}.py")
        if not snippet.is_file():
            raise directive.error(
                f"{directive.name} {target!r}: snippets/{module}.py does not exist. "
                "Name a function in snippets/ as 'module:function'."
            )


@contextmanager
def snippet_problems_fail_the_build(
    directive: SphinxDirective, subject: str
) -> Iterator[None]:
    """A snippet the harness cannot run as asked becomes an error on the page."""
    try:
        yield
    except SNIPPET_PROBLEMS as problem:
        raise directive.error(f"{directive.name} {subject!r}: {problem}") from None
