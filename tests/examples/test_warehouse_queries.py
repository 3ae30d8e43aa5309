import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from snippets.counting_statements import record_statements
from snippets.warehouse_queries import (
    WarehouseBase,
    WarehouseSale,
    _compare_blocking_and_threaded,
    _create_warehouse,
    _make_slow,
    _ticks_while,
    sales_by_region,
    sales_report,
    sales_report_blocking,
    sales_reports,
    warehouse_sessions,
)

REPORT = {"east": 1500, "west": 800}
QUERY_SECONDS = 0.1
TICK_SECONDS = 0.005
POSSIBLE_TICKS = round(QUERY_SECONDS / TICK_SECONDS)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    warehouse = _create_warehouse(tmp_path)
    yield warehouse
    warehouse.kw["bind"].dispose()


def test_the_report_is_plain_blocking_code(warehouse: sessionmaker[Session]) -> None:
    with record_statements(warehouse.kw["bind"]) as log:
        assert sales_by_region(warehouse) == REPORT
    assert log.count == 1
    assert "GROUP BY sale.region" in log.statements[0].sql
    assert WarehouseSale.__table__.metadata is WarehouseBase.metadata


def test_warehouse_tables_stay_out_of_the_application_database() -> None:
    from snippets.models import Base

    assert "sale" not in Base.metadata.tables
    assert warehouse_sessions("sqlite://").kw["bind"].dialect.is_async is False


async def test_blocking_call_stops_the_event_loop(
    warehouse: sessionmaker[Session],
) -> None:
    _make_slow(warehouse, QUERY_SECONDS)
    report, ticks = await _ticks_while(sales_report_blocking(warehouse), TICK_SECONDS)
    assert report == REPORT
    assert ticks == 0  # nothing else ran while the query did


async def test_threaded_call_keeps_the_event_loop_running(
    warehouse: sessionmaker[Session],
) -> None:
    _make_slow(warehouse, QUERY_SECONDS)
    report, ticks = await _ticks_while(sales_report(warehouse), TICK_SECONDS)
    assert report == REPORT
    # Generous: a loaded CI machine may drop ticks, but not most of them.
    assert ticks >= POSSIBLE_TICKS * 0.3


async def test_concurrent_reports_use_one_session_per_thread(
    warehouse: sessionmaker[Session],
) -> None:
    _make_slow(warehouse, QUERY_SECONDS)
    used: list[tuple[int, int]] = []

    def on_begin(session: Session, transaction: object, connection: object) -> None:
        used.append((id(session), threading.get_ident()))

    event.listen(warehouse, "after_begin", on_begin)
    reports, ticks = await _ticks_while(sales_reports(warehouse, 3), TICK_SECONDS)
    assert reports == [REPORT] * 3
    sessions = {session for session, _ in used}
    threads = {thread for _, thread in used}
    assert len(used) == len(sessions) == 3  # three Sessions, each begun once
    assert threading.get_ident() not in threads
    # The three slow queries overlapped: far less than three queries' worth of ticks.
    assert POSSIBLE_TICKS * 0.3 <= ticks < POSSIBLE_TICKS * 2
    assert warehouse.kw["bind"].pool.checkedout() == 0  # every Session closed


async def test_captured_comparison_shows_the_difference() -> None:
    result = await _compare_blocking_and_threaded()
    assert result["report"] == REPORT
    assert result["same report both ways"] is True
    assert result["ticks while blocking on the loop"] == 0
    assert (
        result["ticks while in a worker thread"]
        >= result["ticks possible during the query"] * 0.3
    )
