from datetime import datetime
from typing import Any, ClassVar

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from snippets.counting_statements import record_statements
from snippets.server_generated_values import (
    AuditedNote,
    EagerAuditedNote,
    RevisedNote,
    Timestamped,
    count_revisions,
    create_note,
    edit_eager_note,
    edit_note,
    edit_note_and_refresh,
    revise_note,
)
from tests.support import expect_missing_greenlet, without_labels


def returning(sql: str) -> list[str]:
    """The columns a statement's RETURNING names, without table prefixes.

    (PostgreSQL's compiler qualifies them, "RETURNING note.id"; SQLite's does not.)
    """
    if " RETURNING " not in sql:
        return []
    names = sql.rsplit(" RETURNING ", 1)[1].split(", ")
    return [name.rsplit(".", 1)[-1] for name in names]


SQLITE_OLD_RETURNING = pytest.mark.only_on(
    engine="sqlite",
    reason="simulates a SQLite older than 3.35, which has no RETURNING; every "
    "PostgreSQL the guide supports has it",
)


class _LegacyBase(DeclarativeBase):
    """A separate registry: this mapping exists only in the test below."""


class _NoteWith14Defaults(_LegacyBase):
    __tablename__ = "note_with_14_defaults"
    # 1.4's default; 2.x defaults to "auto".
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


async def test_server_default_is_returned_by_the_insert(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    assert AuditedNote.__mapper__.eager_defaults == "auto"
    with record_statements(engine) as log:
        created_at = await create_note(session)
    assert isinstance(created_at, datetime)
    assert log.count == 1  # no SELECT after the INSERT
    assert returning(log.statements[0].sql) == ["id", "created_at", "updated_at"]


async def _flush_without_eager_defaults(empty_engine: AsyncEngine) -> str:
    """The 1.4 failure, reproduced; the INSERT's SQL."""
    async with empty_engine.begin() as conn:
        await conn.run_sync(_LegacyBase.metadata.create_all)
    async with AsyncSession(empty_engine, expire_on_commit=False) as session:
        note = _NoteWith14Defaults(text="draft")
        session.add(note)
        with record_statements(empty_engine) as log:
            await session.flush()
        assert "created_at" not in returning(log.statements[0].sql)
        with expect_missing_greenlet(empty_engine):
            note.created_at  # noqa: B018
    return log.statements[0].sql


async def test_without_eager_defaults_the_14_failure_returns(
    empty_engine: AsyncEngine,
) -> None:
    await _flush_without_eager_defaults(empty_engine)


@pytest.mark.only_on(
    engine="sqlite", reason="aiosqlite reads a new key from the cursor's lastrowid"
)
async def test_without_eager_defaults_sqlite_returns_nothing(
    empty_engine: AsyncEngine,
) -> None:
    sql = await _flush_without_eager_defaults(empty_engine)
    assert returning(sql) == []


@pytest.mark.only_on(
    engine="postgresql", reason="PostgreSQL returns a SERIAL key with RETURNING"
)
async def test_without_eager_defaults_postgresql_returns_only_the_key(
    empty_engine: AsyncEngine,
) -> None:
    sql = await _flush_without_eager_defaults(empty_engine)
    assert returning(sql) == ["id"]


async def test_onupdate_value_is_expired_after_update(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await edit_note(session)
    assert "SELECT audited_note.updated_at" in without_labels(failed.attempted)
    # eager_defaults="auto" fetches nothing for an UPDATE.
    assert failed.log.count == 2
    assert "RETURNING" not in failed.log.statements[1].sql


async def test_eager_defaults_true_returns_the_update_default(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    assert EagerAuditedNote.__mapper__.eager_defaults is True
    assert issubclass(EagerAuditedNote, Timestamped)
    with record_statements(engine) as log:
        updated_at = await edit_eager_note(session)
    assert isinstance(updated_at, datetime)
    assert log.count == 2
    assert returning(log.statements[1].sql) == ["updated_at"]


async def test_refresh_named_attribute_after_update(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        updated_at = await edit_note_and_refresh(session)
    assert isinstance(updated_at, datetime)
    assert log.count == 3
    assert log.statements[2].sql.startswith("SELECT audited_note.updated_at \nFROM")


@pytest.mark.only_on(
    engine="sqlite", reason="SQLite's trigger is an AFTER trigger; RETURNING ran before"
)
async def test_returning_misses_what_an_after_trigger_sets_on_sqlite(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    assert RevisedNote.__table__.c.revision.server_onupdate is not None
    with record_statements(engine) as log:
        returned, refreshed = await revise_note(session)
    assert returning(log.statements[1].sql) == ["revision"]
    assert (returned, refreshed) == (1, 2)  # RETURNING saw the row before the trigger
    assert log.count == 3


@pytest.mark.only_on(
    engine="postgresql",
    reason="PostgreSQL's BEFORE trigger sets the new row, which RETURNING reports",
)
async def test_returning_reports_what_a_before_trigger_sets_on_postgresql(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        returned, refreshed = await revise_note(session)
    assert returning(log.statements[1].sql) == ["revision"]
    assert (returned, refreshed) == (2, 2)  # the flush already had the new value
    assert log.count == 3


@pytest.fixture
def engine_without_returning(engine: AsyncEngine) -> AsyncEngine:
    """The same database, with the dialect told it has no RETURNING (old SQLite)."""
    dialect = engine.sync_engine.dialect
    dialect.insert_returning = dialect.update_returning = False
    dialect.use_insertmanyvalues = False
    return engine


@SQLITE_OLD_RETURNING
async def test_without_returning_auto_fetches_nothing_on_insert(
    engine_without_returning: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine_without_returning) as failed:
        await create_note(session)
    assert "RETURNING" not in failed.log.statements[0].sql


@SQLITE_OLD_RETURNING
async def test_without_returning_eager_defaults_selects_after_update(
    engine_without_returning: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine_without_returning) as log:
        updated_at = await edit_eager_note(session)
    assert isinstance(updated_at, datetime)
    # INSERT + SELECT of its defaults, UPDATE + SELECT of its defaults.
    assert [s.sql.split()[0] for s in log.statements] == [
        "INSERT",
        "SELECT",
        "UPDATE",
        "SELECT",
    ]


async def test_count_revisions_adds_one_per_update_on_each_engine(
    empty_engine: AsyncEngine,
) -> None:
    counted = Table(
        "counted",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("text", String(20)),
        Column("revision", Integer, server_default="1"),
    )
    count_revisions(counted, "text")
    async with empty_engine.begin() as conn:
        await conn.run_sync(counted.metadata.create_all)
        await conn.execute(counted.insert().values(text="a"))
        for text in ("b", "c"):
            await conn.execute(counted.update().values(text=text))
        assert await conn.scalar(select(counted.c.revision)) == 3
