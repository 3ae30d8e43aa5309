"""Reproductions of the errors people meet when the ORM runs under asyncio.

Each function here fails (or warns) on purpose, the way the troubleshooting page
says; the page shows the message captured from running it.
"""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import DDL, FetchedValue, ForeignKey, String, event, select, text
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column, raiseload, relationship

from snippets.models import Base, User


# region ticket_model
class TroubleshootingTicket(Base):
    __tablename__ = "troubleshooting_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    # The database sets revision: 1 on INSERT, +1 on every UPDATE (a trigger).
    revision: Mapped[int] = mapped_column(
        server_default=text("1"), server_onupdate=FetchedValue()
    )


# endregion ticket_model

event.listen(
    TroubleshootingTicket.__table__,
    "after_create",
    DDL(
        "CREATE TRIGGER troubleshooting_ticket_revision "
        "AFTER UPDATE OF title ON troubleshooting_ticket "
        "BEGIN UPDATE troubleshooting_ticket SET revision = revision + 1 "
        "WHERE id = NEW.id; END"
    ).execute_if(dialect="sqlite"),
)


async def _seed_ticket(session: AsyncSession) -> None:
    session.add(TroubleshootingTicket(title="Printer on fire"))


# region is_missing_greenlet
def is_missing_greenlet(error: BaseException) -> bool:
    """Whether ``error`` is an implicit load that asyncio refused, in any shape.

    SQLAlchemy 2.1 raises a ``StatementError`` whose ``.orig`` is the
    ``MissingGreenlet`` when the load ran on an open connection, and the bare
    ``MissingGreenlet`` when it had to open one; 2.0 always raises it bare.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, MissingGreenlet):
            return True
        seen.add(id(current))
        current = getattr(current, "orig", None) or current.__cause__
    return False


# endregion is_missing_greenlet


# region lazy_relationship
async def post_titles_of_ada(session: AsyncSession) -> list[str]:
    ada = await session.scalar(select(User).where(User.name == "ada"))
    return [post.title for post in ada.posts]  # posts were never loaded


# endregion lazy_relationship


# region expired_attribute
async def name_after_commit(engine: AsyncEngine) -> str:
    # async_sessionmaker's default is expire_on_commit=True.
    async with async_sessionmaker(engine)() as session:
        ada = await session.scalar(select(User).where(User.name == "ada"))
        await session.commit()  # expires every attribute of `ada`
        return ada.name


# endregion expired_attribute


# region server_onupdate
async def revision_after_update(session: AsyncSession) -> int:
    ticket = await session.scalar(select(TroubleshootingTicket))
    ticket.title = "Printer fixed"
    await session.commit()
    # The UPDATE did not return the trigger's new value, so revision is expired.
    return ticket.revision


# endregion server_onupdate


# region server_default_on_insert
async def revision_of_new_ticket(session: AsyncSession) -> int:
    ticket = TroubleshootingTicket(title="Screen flickers")
    session.add(ticket)
    await session.commit()
    return ticket.revision


# endregion server_default_on_insert


# region refresh_revision
async def revision_after_update_refreshed(session: AsyncSession) -> int:
    ticket = await session.scalar(select(TroubleshootingTicket))
    ticket.title = "Printer fixed"
    await session.commit()
    await session.refresh(ticket, ["revision"])
    return ticket.revision


# endregion refresh_revision


# region raise_on_unplanned_load
async def post_titles_with_raiseload(session: AsyncSession) -> list[str]:
    stmt = select(User).where(User.name == "ada").options(raiseload("*"))
    ada = await session.scalar(stmt)
    return [post.title for post in ada.posts]


# endregion raise_on_unplanned_load


# region raise_mapping
class TroubleshootingShelf(Base):
    __tablename__ = "troubleshooting_shelf"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(30))
    # Every query that reads books must load them; a forgotten load raises.
    books: Mapped[list[TroubleshootingBook]] = relationship(lazy="raise")


class TroubleshootingBook(Base):
    __tablename__ = "troubleshooting_book"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    shelf_id: Mapped[int] = mapped_column(ForeignKey("troubleshooting_shelf.id"))


async def book_titles_on_shelf(session: AsyncSession) -> list[str]:
    shelf = await session.scalar(select(TroubleshootingShelf))
    return [book.title for book in shelf.books]


# endregion raise_mapping


async def _seed_shelf(session: AsyncSession) -> None:
    session.add(
        TroubleshootingShelf(label="A", books=[TroubleshootingBook(title="SQL")])
    )


# region detached
async def post_titles_after_close(
    session_factory: async_sessionmaker[AsyncSession],
) -> list[str]:
    async with session_factory() as session:
        ada = await session.scalar(select(User).where(User.name == "ada"))
    # The session is closed: `ada` is detached, and posts were never loaded.
    return [post.title for post in ada.posts]


# endregion detached


# region result_as_object
async def name_from_result(session: AsyncSession) -> str:
    result = await session.execute(select(User).where(User.name == "ada"))
    return result.name  # a Result holds rows, it is not a User


# endregion result_as_object


# region row_as_object
async def name_from_row(session: AsyncSession) -> str:
    row = (await session.execute(select(User).where(User.name == "ada"))).one()
    return row.name  # the row is (User,): its only key is "User"


# endregion row_as_object


# region query_on_async_session
async def names_with_query(session: AsyncSession) -> list[str]:
    return [user.name for user in session.query(User)]


# endregion query_on_async_session


# region without_greenlet
def error_without_greenlet() -> str:
    """Connect through SQLAlchemy's asyncio extension in a Python without greenlet."""
    program = (
        "import asyncio, sys\n"
        "sys.modules['greenlet'] = None  # makes `import greenlet` fail\n"
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "async def connect():\n"
        "    async with create_async_engine('sqlite+aiosqlite://').connect():\n"
        "        pass\n"
        "asyncio.run(connect())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    # The last line of the traceback: the exception and its message.
    return run.stderr.strip().splitlines()[-1] if run.returncode else "no error"


# endregion without_greenlet
