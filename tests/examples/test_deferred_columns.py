import warnings

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import defer, load_only

from snippets.counting_statements import record_statements
from snippets.deferred_columns import (
    Report,
    first_report_body,
    report_bodies,
    report_bodies_deferred,
    report_contents,
    report_summaries_load_only,
    report_summaries_without_body,
    report_titles,
    report_titles_reading_summary,
)
from tests.support import expect_missing_greenlet, without_labels

pytestmark = pytest.mark.seed("deferred_columns:_add_reports")


async def test_deferred_column_read_fails(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await report_bodies_deferred(session)
    # The hidden load would fetch the whole deferred group.
    assert "SELECT report.body, report.rendered_html" in without_labels(
        failed.attempted
    )
    assert "report.body" not in failed.log.statements[0].sql
    assert failed.log.count == 1


async def test_undefer_loads_the_column_in_the_query(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        bodies = await report_bodies(session)
    assert bodies == {"Q1": "Revenue was flat.", "Q2": "Revenue grew."}
    assert log.count == 1
    assert "report.body" in log.statements[0].sql


async def test_undefer_group_loads_every_column_of_the_group(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        contents = await report_contents(session)
    assert contents["Q2"] == ("Revenue grew.", "<p>Revenue grew.</p>")
    assert log.count == 1


async def test_load_only_defers_the_other_columns(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await report_summaries_load_only(session)
    assert "SELECT report.summary" in failed.attempted


async def test_load_only_loads_the_named_columns_and_the_primary_key(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    stmt = select(Report).options(load_only(Report.title)).order_by(Report.id)
    with record_statements(engine) as log:
        report = (await session.scalars(stmt)).first()
        key = report.id  # loaded though load_only() did not name it
    assert log.count == 1
    assert log.statements[0].sql.startswith("SELECT report.id, report.title \nFROM")
    assert key == 1
    assert inspect(report).unloaded == {"summary", "body", "rendered_html"}


async def test_raiseload_variants_work_when_nothing_else_is_read(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await report_titles(session) == ["Q1", "Q2"]
        summaries = await report_summaries_without_body(session)
    assert summaries == {"Q1": "Quiet quarter.", "Q2": "Growth."}
    assert log.count == 2
    assert "report.summary" not in log.statements[0].sql
    assert "report.body" not in log.statements[1].sql


async def test_load_only_raiseload_raises_a_clear_error(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with (
        warnings.catch_warnings(record=True) as caught,
        record_statements(engine) as log,
        pytest.raises(InvalidRequestError) as raised,
    ):
        warnings.simplefilter("always")
        await report_titles_reading_summary(session)
    assert caught == []  # no load was attempted, so no abandoned coroutine
    assert str(raised.value) == (
        "'Report.summary' is not available due to raiseload=True"
    )
    assert log.count == 1


async def test_defer_raiseload_raises_on_the_deferred_column(
    session: AsyncSession,
) -> None:
    # The option report_summaries_without_body uses, reading the column it defers.
    stmt = select(Report).options(defer(Report.body, raiseload=True))
    report = (await session.scalars(stmt)).first()
    with pytest.raises(InvalidRequestError) as raised:
        report.body  # noqa: B018
    assert str(raised.value) == "'Report.body' is not available due to raiseload=True"


async def test_awaitable_attrs_loads_a_deferred_column(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await first_report_body(session) == "Revenue was flat."
    assert log.count == 2
    assert without_labels(log.statements[1].sql).startswith(
        "SELECT report.body, report.rendered_html"
    )
