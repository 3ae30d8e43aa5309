import warnings
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError, MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import defer

from snippets.counting_statements import record_statements
from snippets.deferred_columns import (
    Report,
    _add_reports,
    first_report_body,
    report_bodies,
    report_bodies_deferred,
    report_contents,
    report_summaries_load_only,
    report_summaries_without_body,
    report_titles,
    report_titles_reading_summary,
)
from tests.harness import fresh_database, release_failed_io, session_factory_for


@pytest.fixture
async def reports_engine() -> AsyncIterator[AsyncEngine]:
    async with fresh_database(_add_reports) as engine:
        yield engine


@pytest.fixture
async def reports_session(reports_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory_for(reports_engine)() as session:
        yield session


async def test_deferred_column_read_fails(
    reports_engine: AsyncEngine, reports_session: AsyncSession
) -> None:
    with pytest.warns(RuntimeWarning, match="never awaited"):
        with (
            record_statements(reports_engine) as log,
            pytest.raises(StatementError) as raised,
        ):
            await report_bodies_deferred(reports_session)
        release_failed_io(raised.value)
    assert isinstance(raised.value.orig, MissingGreenlet)
    # The hidden load would fetch the whole deferred group.
    assert "SELECT report.body, report.rendered_html" in raised.value.statement
    assert "report.body" not in log.statements[0].sql
    assert log.count == 1


async def test_undefer_loads_the_column_in_the_query(
    reports_engine: AsyncEngine, reports_session: AsyncSession
) -> None:
    with record_statements(reports_engine) as log:
        bodies = await report_bodies(reports_session)
    assert bodies == {"Q1": "Revenue was flat.", "Q2": "Revenue grew."}
    assert log.count == 1
    assert "report.body" in log.statements[0].sql


async def test_undefer_group_loads_every_column_of_the_group(
    reports_engine: AsyncEngine, reports_session: AsyncSession
) -> None:
    with record_statements(reports_engine) as log:
        contents = await report_contents(reports_session)
    assert contents["Q2"] == ("Revenue grew.", "<p>Revenue grew.</p>")
    assert log.count == 1


async def test_load_only_defers_the_other_columns(
    reports_engine: AsyncEngine, reports_session: AsyncSession
) -> None:
    with pytest.warns(RuntimeWarning, match="never awaited"):
        with pytest.raises(StatementError) as raised:
            await report_summaries_load_only(reports_session)
        release_failed_io(raised.value)
    assert isinstance(raised.value.orig, MissingGreenlet)
    assert "SELECT report.summary" in raised.value.statement


async def test_raiseload_variants_work_when_nothing_else_is_read(
    reports_engine: AsyncEngine, reports_session: AsyncSession
) -> None:
    with record_statements(reports_engine) as log:
        assert await report_titles(reports_session) == ["Q1", "Q2"]
        summaries = await report_summaries_without_body(reports_session)
    assert summaries == {"Q1": "Quiet quarter.", "Q2": "Growth."}
    assert log.count == 2
    assert "report.summary" not in log.statements[0].sql
    assert "report.body" not in log.statements[1].sql


async def test_load_only_raiseload_raises_a_clear_error(
    reports_engine: AsyncEngine, reports_session: AsyncSession
) -> None:
    with (
        warnings.catch_warnings(record=True) as caught,
        record_statements(reports_engine) as log,
        pytest.raises(InvalidRequestError) as raised,
    ):
        warnings.simplefilter("always")
        await report_titles_reading_summary(reports_session)
    assert caught == []  # no load was attempted, so no abandoned coroutine
    assert str(raised.value) == (
        "'Report.summary' is not available due to raiseload=True"
    )
    assert log.count == 1


async def test_defer_raiseload_raises_on_the_deferred_column(
    reports_session: AsyncSession,
) -> None:
    # The option report_summaries_without_body uses, reading the column it defers.
    stmt = select(Report).options(defer(Report.body, raiseload=True))
    report = (await reports_session.scalars(stmt)).first()
    with pytest.raises(InvalidRequestError) as raised:
        report.body  # noqa: B018
    assert str(raised.value) == "'Report.body' is not available due to raiseload=True"


async def test_awaitable_attrs_loads_a_deferred_column(
    reports_engine: AsyncEngine, reports_session: AsyncSession
) -> None:
    with record_statements(reports_engine) as log:
        assert await first_report_body(reports_session) == "Revenue was flat."
    assert log.count == 2
    assert log.statements[1].sql.startswith("SELECT report.body, report.rendered_html")
