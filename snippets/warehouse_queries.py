"""Querying a database that has no async driver, from async code (IO302)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, String, create_engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

T = TypeVar("T")


# region warehouse_model
class WarehouseBase(DeclarativeBase):
    """The customer's warehouse schema: not our application database."""


class WarehouseSale(WarehouseBase):
    __tablename__ = "sale"

    id: Mapped[int] = mapped_column(primary_key=True)
    region: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int]


def warehouse_sessions(url: str) -> sessionmaker[Session]:
    # A synchronous engine: this driver has no asyncio support.
    return sessionmaker(create_engine(url))


# endregion warehouse_model


# region warehouse_report
def sales_by_region(warehouse: sessionmaker[Session]) -> dict[str, int]:
    """Blocking code: a new Session, used and closed in the calling thread."""
    with warehouse() as session:
        stmt = (
            select(WarehouseSale.region, func.sum(WarehouseSale.amount_cents))
            .group_by(WarehouseSale.region)
            .order_by(WarehouseSale.region)
        )
        return {region: total for region, total in session.execute(stmt)}


# endregion warehouse_report


# region blocking_call
async def sales_report_blocking(warehouse: sessionmaker[Session]) -> dict[str, int]:
    # Broken: the query runs on the event loop and stalls every other request.
    return sales_by_region(warehouse)


# endregion blocking_call


# region threaded_call
async def sales_report(warehouse: sessionmaker[Session]) -> dict[str, int]:
    # The blocking call runs in a worker thread; the event loop keeps serving.
    return await asyncio.to_thread(sales_by_region, warehouse)


async def sales_reports(
    warehouse: sessionmaker[Session], count: int
) -> list[dict[str, int]]:
    # Concurrent reports: each thread opens its own Session, none is shared.
    return await asyncio.gather(*(sales_report(warehouse) for _ in range(count)))


# endregion threaded_call


# --- Scaffolding for the page and the tests (not part of the pattern) -----------


def _create_warehouse(directory: Path) -> sessionmaker[Session]:
    """A file database with a few sales: a stand-in for a customer warehouse."""
    warehouse = warehouse_sessions(f"sqlite:///{directory / 'warehouse.db'}")
    engine = warehouse.kw["bind"]
    WarehouseBase.metadata.create_all(engine)
    with warehouse.begin() as session:
        session.add_all(
            WarehouseSale(region=region, amount_cents=cents)
            for region, cents in [("east", 1200), ("west", 800), ("east", 300)]
        )
    return warehouse


def _make_slow(warehouse: sessionmaker[Session], seconds: float) -> None:
    """Every statement waits first, as a query on a busy warehouse would."""
    engine: Engine = warehouse.kw["bind"]

    @event.listens_for(engine, "before_cursor_execute")
    def _wait(*_: Any) -> None:
        time.sleep(seconds)


async def _ticks_while(awaitable: Awaitable[T], interval: float) -> tuple[T, int]:
    """Await ``awaitable`` while a second coroutine counts how often it got to run."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(interval)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # let the ticker start before the query
    try:
        result = await awaitable
    finally:
        ticker.cancel()
    return result, ticks


async def _compare_blocking_and_threaded() -> dict[str, Any]:
    query_seconds, tick_seconds = 0.15, 0.005
    with tempfile.TemporaryDirectory() as directory:
        warehouse = _create_warehouse(Path(directory))
        _make_slow(warehouse, query_seconds)
        blocked, blocked_ticks = await _ticks_while(
            sales_report_blocking(warehouse), tick_seconds
        )
        threaded, threaded_ticks = await _ticks_while(
            sales_report(warehouse), tick_seconds
        )
        warehouse.kw["bind"].dispose()
    return {
        "report": threaded,
        "same report both ways": blocked == threaded,
        "ticks possible during the query": round(query_seconds / tick_seconds),
        "ticks while blocking on the loop": blocked_ticks,
        "ticks while in a worker thread": threaded_ticks,
    }
