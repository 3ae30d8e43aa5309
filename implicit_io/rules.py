"""The rule registry: every rule the policy states, once, for every tool and page.

Each rule is a :class:`Rule` (code, name, level, phase, summary, and the code of
the rule that replaces it when it is retired). The guard, the review check, the
mapping check and the statement budgets name rules by code and link to
:meth:`Rule.url`; ``implicit-io-check --explain IO101`` prints one. The values
are those of the rule pages' front matter (``guides/rules/ioNNN.md``), which a
test keeps equal. Codes are never removed: a retired rule keeps its page and says
which rule replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    code: str  # "IO101"
    name: str  # "eager-load-response-data"
    level: str  # "advisory" (or "required")
    phase: int  # the adoption phase that introduces it: 1, 2 or 3
    summary: str
    replaced_by: str | None = None  # the code that replaces a retired rule

    @property
    def retired(self) -> bool:
        return self.replaced_by is not None

    def url(self, base_url: str | None = None) -> str:
        """The rule's page under ``base_url`` (default: ``IMPLICIT_IO_DOCS_URL``)."""
        # rule_links reads the published address and imports this registry.
        from implicit_io.rule_links import page_url

        return page_url(f"guides/rules/{self.code.lower()}.html", base_url)


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "IO101",
            "eager-load-response-data",
            "advisory",
            1,
            "Load every relationship a handler's output needs with a loader option "
            "in the query that fetches it.",
        ),
        Rule(
            "IO102",
            "no-implicit-loads-in-request-paths",
            "advisory",
            1,
            "Request-critical code never depends on an attribute being loaded "
            "implicitly on first access.",
        ),
        Rule(
            "IO103",
            "no-lazy-loads-during-serialization",
            "advisory",
            1,
            "Never hand ORM objects to a serializer that may read unloaded "
            "attributes; load or build the response inside the session.",
        ),
        Rule(
            "IO104",
            "declare-loading-strategy",
            "advisory",
            3,
            "Every relationship states its loading strategy with an explicit "
            "`lazy=` argument.",
        ),
        Rule(
            "IO105",
            "no-dynamic-relationships",
            "advisory",
            3,
            'Do not use `lazy="dynamic"`; use `WriteOnlyMapped` and explicit '
            "`select()` statements.",
        ),
        Rule(
            "IO106",
            "no-awaitable-attrs-in-loops",
            "advisory",
            2,
            "Do not await `awaitable_attrs` inside a loop over many objects; "
            "eager-load the attribute for all of them at once.",
        ),
        Rule(
            "IO107",
            "load-deferred-columns-explicitly",
            "advisory",
            2,
            "Deferred columns the code will read are undeferred in the query, or "
            "raise on access.",
        ),
        Rule(
            "IO201",
            "disable-expire-on-commit",
            "advisory",
            1,
            "Create async sessions with `expire_on_commit=False` unless expiry is "
            "intentionally required.",
        ),
        Rule(
            "IO202",
            "refresh-named-attributes",
            "advisory",
            2,
            "When state must be reloaded, await `refresh()` or `awaitable_attrs` for "
            "the named attributes, never an implicit reload.",
        ),
        Rule(
            "IO203",
            "fetch-server-generated-values",
            "advisory",
            2,
            "Values the database generates are fetched in the flush "
            "(`eager_defaults`, `RETURNING`) or by an explicit refresh.",
        ),
        Rule(
            "IO204",
            "no-expire-in-async-code",
            "advisory",
            2,
            "Do not call `session.expire()` or `expire_all()` in async code; refresh "
            "the attributes you need instead.",
        ),
        Rule(
            "IO301",
            "isolate-sync-orm-code",
            "advisory",
            2,
            "Legacy sync ORM code runs only through `run_sync()`, and its implicit "
            "loads are counted like any other statement.",
        ),
        Rule(
            "IO302",
            "sync-drivers-in-worker-threads",
            "advisory",
            2,
            "Databases without an async driver are queried in a worker thread, one "
            "`Session` per thread, never on the event loop.",
        ),
        Rule(
            "IO401",
            "document-known-exceptions",
            "advisory",
            3,
            "Every accepted implicit load is allow-listed with a rationale and a "
            "follow-up item.",
        ),
        Rule(
            "IO402",
            "test-statement-counts",
            "advisory",
            3,
            "Tests for endpoints that return related objects assert the exact "
            "number of statements sent.",
        ),
    )
}


def rule(code: str) -> Rule:
    """The rule with this code (any case); ValueError naming the known codes."""
    try:
        return RULES[code.upper()]
    except KeyError:
        raise ValueError(
            f"unknown rule code {code!r}; known codes: {', '.join(RULES)}"
        ) from None
