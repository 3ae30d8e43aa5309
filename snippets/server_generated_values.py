"""Values the database generates on INSERT and UPDATE, read without implicit I/O.

Serves IO203 (fetch server-generated values).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import DDL, FetchedValue, String, Table, event, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from snippets.models import Base


# region audited_note
class Timestamped:
    """Columns the database fills in: on INSERT, and on every UPDATE."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now()
    )


class AuditedNote(Timestamped, Base):
    __tablename__ = "audited_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


# endregion audited_note


async def create_note(session: AsyncSession) -> datetime:
    note = AuditedNote(text="draft")
    session.add(note)
    await session.flush()
    return note.created_at


async def edit_note(session: AsyncSession) -> datetime:
    note = AuditedNote(text="draft")
    session.add(note)
    await session.flush()
    note.text = "final"
    await session.flush()
    # Broken: the UPDATE set updated_at in the database, and the ORM expired
    # its stale copy; reading it is a query.
    return note.updated_at


# region eager_defaults
class EagerAuditedNote(Timestamped, Base):
    __tablename__ = "eager_audited_note"
    # Fetch server-generated values in the INSERT or UPDATE itself.
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


async def edit_eager_note(session: AsyncSession) -> datetime:
    note = EagerAuditedNote(text="draft")
    session.add(note)
    await session.flush()
    note.text = "final"
    await session.flush()
    return note.updated_at


# endregion eager_defaults


async def edit_note_and_refresh(session: AsyncSession) -> datetime:
    note = AuditedNote(text="draft")
    session.add(note)
    await session.flush()
    note.text = "final"
    await session.flush()
    # One awaited SELECT for the one value the code needs.
    await session.refresh(note, ["updated_at"])
    return note.updated_at


# region revision_trigger
def count_revisions(table: Table, column: str) -> None:
    """Have the database add 1 to ``table.revision`` on every UPDATE of ``column``.

    SQLite: an AFTER trigger updates the row a second time. PostgreSQL: a BEFORE
    trigger (PL/pgSQL) sets the value in the new row, so the UPDATE writes it.
    """
    name = table.name
    sqlite_trigger = DDL(
        f"CREATE TRIGGER {name}_revision AFTER UPDATE OF {column} ON {name} "
        f"BEGIN UPDATE {name} SET revision = OLD.revision + 1 "
        "WHERE id = NEW.id; END"
    )
    postgresql_function = DDL(
        f"CREATE FUNCTION {name}_revision() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END $$"
    )
    postgresql_trigger = DDL(
        f"CREATE TRIGGER {name}_revision BEFORE UPDATE OF {column} ON {name} "
        f"FOR EACH ROW EXECUTE FUNCTION {name}_revision()"
    )
    event.listen(table, "after_create", sqlite_trigger.execute_if(dialect="sqlite"))
    for ddl in (postgresql_function, postgresql_trigger):
        event.listen(table, "after_create", ddl.execute_if(dialect="postgresql"))


# endregion revision_trigger


# region revised_note
class RevisedNote(Base):
    __tablename__ = "revised_note"
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))
    # A trigger bumps it on every UPDATE: the ORM only knows the server may.
    revision: Mapped[int] = mapped_column(
        server_default="1", server_onupdate=FetchedValue()
    )


count_revisions(RevisedNote.__table__, "text")
# endregion revised_note


async def revise_note(session: AsyncSession) -> tuple[int, int]:
    note = RevisedNote(text="draft")
    session.add(note)
    await session.flush()
    note.text = "final"
    await session.flush()
    returned = note.revision
    await session.refresh(note, ["revision"])
    return returned, note.revision
