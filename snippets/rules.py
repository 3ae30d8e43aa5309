"""Examples written for the rule pages (guides/rules/), where no how-to page has one.

Some anti-patterns do not raise: they work, slowly. Their rule pages show them
failing the check that enforces the rule — a statement budget, an event-loop
watchdog, the guard's allow-list — which is how a team meets them in practice.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from implicit_io.guard import KnownException
from implicit_io.statement_budgets import assert_statements, max_statements
from snippets.awaitable_attributes import (
    post_counts_awaited_in_a_loop,
    post_counts_eager,
)
from snippets.run_sync import legacy_report, legacy_report_preloaded
from snippets.warehouse_queries import (
    _create_warehouse,
    _make_slow,
    sales_report,
    sales_report_blocking,
)


# IO106: awaiting an attribute per object is a round trip per object.
async def post_counts_awaited_within_budget(session: AsyncSession) -> dict[str, int]:
    # Two statements is what loading users and their posts needs, for any count.
    with max_statements(session, 2):
        return await post_counts_awaited_in_a_loop(session)


async def post_counts_eager_within_budget(session: AsyncSession) -> dict[str, int]:
    with max_statements(session, 2):
        return await post_counts_eager(session)


# IO402: a statement count in the test is what exposes the hidden N+1.
async def legacy_report_within_budget(session: AsyncSession) -> dict[str, list[str]]:
    with assert_statements(session, 2):
        return await legacy_report(session)


async def preloaded_report_within_budget(
    session: AsyncSession,
) -> dict[str, list[str]]:
    with assert_statements(session, 2):
        return await legacy_report_preloaded(session)


# IO401: an accepted implicit load is written down with its reason.
def undocumented_exception() -> KnownException:
    return KnownException(rule="IO102", attribute="User.posts", rationale="")


def documented_exception() -> KnownException:
    return KnownException(
        rule="IO102",
        attribute="User.posts",
        rationale="Nightly export runs in run_sync on a replica; "
        "follow-up: move it to selectinload (ticket ORM-142).",
    )


# IO302: a watchdog that fails when the event loop stops running.
class EventLoopBlocked(AssertionError):
    """Code inside the block kept the event loop from running other tasks."""


@asynccontextmanager
async def event_loop_must_keep_running(max_pause: float = 0.5) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    last_beat = loop.time()
    longest = 0.0

    def beat() -> None:
        nonlocal last_beat, longest
        longest = max(longest, loop.time() - last_beat)
        last_beat = loop.time()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(0.005)
            beat()

    task = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)  # the heartbeat must be running before the block starts
    try:
        yield
    finally:
        task.cancel()
        beat()  # a block that stalls the loop to its very end counts too
    if longest > max_pause:
        raise EventLoopBlocked(
            f"the event loop did not run for {longest * 1000:.0f} ms "
            f"(at most {max_pause * 1000:.0f} ms allowed): blocking I/O on the loop?"
        )


async def warehouse_report_on_the_loop() -> dict[str, int]:
    with _slow_warehouse() as warehouse:
        async with event_loop_must_keep_running():
            return await sales_report_blocking(warehouse)


async def warehouse_report_in_a_thread() -> dict[str, int]:
    with _slow_warehouse() as warehouse:
        async with event_loop_must_keep_running():
            return await sales_report(warehouse)


#: Past the watchdog's 0.5 s by a margin no scheduler delay closes (the query is
#: a sleep); the watchdog's own 0.5 s leaves the threaded call room for a pause of
#: the test process itself (a full garbage collection in a large test worker can
#: take a quarter of a second).
_SLOW_QUERY_SECONDS = 0.6


@contextmanager
def _slow_warehouse() -> Iterator[sessionmaker[Session]]:
    """A warehouse whose every query takes longer than the watchdog allows, as a
    busy one would."""
    with tempfile.TemporaryDirectory() as directory:
        warehouse = _create_warehouse(Path(directory))
        _make_slow(warehouse, _SLOW_QUERY_SECONDS)
        try:
            yield warehouse
        finally:
            warehouse.kw["bind"].dispose()
