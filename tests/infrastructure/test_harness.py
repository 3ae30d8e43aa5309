"""The shared test machinery itself: what its helpers accept and refuse."""

import gc
import logging
import warnings

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from guide_runtime.capture import capture, collected_logs, failed_loads_warn_here
from snippets.models import User
from tests.support import expect_missing_greenlet


async def test_expect_missing_greenlet_gives_the_error_and_the_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        user = await session.scalar(select(User).where(User.name == "ada"))
        user.posts  # noqa: B018
    assert "FROM post" in failed.attempted
    assert failed.log.count == 1


async def test_expect_missing_greenlet_fails_a_block_that_loads_nothing(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with (
        pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"),
        expect_missing_greenlet(engine),
    ):
        await session.scalar(select(User))


def test_a_capture_says_whether_the_snippet_had_a_database() -> None:
    without = capture("migration:greenlet_requirement")
    assert (without.had_database, without.statements.count) == (False, 0)
    with_session = capture("run_sync:legacy_report_called_directly")
    assert (with_session.had_database, with_session.statements.count) == (True, 0)
    assert capture("migration:sync_unwrapping").had_database


def test_a_capture_collects_what_the_snippet_logged() -> None:
    captured = capture("enforcement:track_an_n_plus_one")
    [line] = captured.logged
    assert line.startswith("WARNING implicit_io: IO106 N+1 through awaitable_attrs")


async def _never_awaited() -> None:
    pass


def test_a_dropped_coroutine_in_a_cycle_warns_before_the_block_ends() -> None:
    # A failed load's remains in miniature: a coroutine nobody awaits, in a
    # reference cycle that stays reachable while the block allocates enough to
    # age it past the youngest generation, were automatic collection running.
    was_enabled = gc.isenabled()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with failed_loads_warn_here():
            cycle: list[object] = [_never_awaited()]
            cycle.append(cycle)
            aging = [[n] for n in range(200_000)]
            del cycle, aging
        warned_inside = [str(w.message) for w in caught]
    assert any("_never_awaited' was never awaited" in m for m in warned_inside), (
        warned_inside
    )
    assert gc.isenabled() == was_enabled


def test_collected_logs_keep_lines_from_the_roots_handlers() -> None:
    root = logging.getLogger()
    handlers = root.handlers[:]
    with collected_logs() as lines:
        logging.getLogger("guide.test").warning("seen %s", "once")
        assert root.handlers != handlers
    assert lines == ["WARNING guide.test: seen once"]
    assert root.handlers == handlers


@pytest.mark.only_on(
    engine="sqlite",
    sqlalchemy="2.1",
    reason="only aiosqlite on 2.1 has two shapes, so only there can one be wrong",
)
async def test_expect_missing_greenlet_refuses_the_other_shape(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user = await session.scalar(select(User).where(User.name == "ada"))
    with (
        pytest.raises(AssertionError, match="bare MissingGreenlet"),
        expect_missing_greenlet(engine, opens_connection=True),
    ):
        user.posts  # noqa: B018
