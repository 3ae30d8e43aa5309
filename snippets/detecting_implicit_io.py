"""Making hidden loads fail loudly during development (IO104, IO102)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    joinedload,
    mapped_column,
    raiseload,
    relationship,
    selectinload,
)

from snippets.models import Base, User, sample_users


# region raise_mappings
class RaiseTicket(Base):
    __tablename__ = "raise_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(100))
    assignee_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Any read of an unloaded assignee raises, whether or not SQL was needed.
    assignee: Mapped[User] = relationship(lazy="raise")


class RaiseOnSqlTicket(Base):
    __tablename__ = "raise_on_sql_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(100))
    assignee_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Raises only when answering would need SQL; identity-map hits pass.
    assignee: Mapped[User] = relationship(lazy="raise_on_sql")


# endregion raise_mappings


async def _seed_tickets(session: AsyncSession) -> None:
    session.add_all(sample_users())
    await session.flush()
    session.add(RaiseTicket(id=1, subject="Disk full", assignee_id=1))
    session.add(RaiseOnSqlTicket(id=1, subject="Disk full", assignee_id=1))


# region raise_cold
async def raise_ticket_assignee(session: AsyncSession) -> str:
    ticket = await session.get_one(RaiseTicket, 1)
    return ticket.assignee.name


# endregion raise_cold


# region raise_warm
async def raise_ticket_assignee_already_in_session(
    session: AsyncSession,
) -> tuple[str, bool]:
    # Holding a reference keeps the assignee in the (weak) identity map.
    assignee = await session.get_one(User, 1)
    ticket = await session.get_one(RaiseTicket, 1)
    # Still raises: lazy="raise" does not look at the identity map.
    return ticket.assignee.name, ticket.assignee is assignee


# endregion raise_warm


# region on_sql_cold
async def raise_on_sql_ticket_assignee(session: AsyncSession) -> str:
    ticket = await session.get_one(RaiseOnSqlTicket, 1)
    return ticket.assignee.name


# endregion on_sql_cold


# region on_sql_warm
async def raise_on_sql_ticket_assignee_already_in_session(
    session: AsyncSession,
) -> tuple[str, bool]:
    assignee = await session.get_one(User, 1)
    ticket = await session.get_one(RaiseOnSqlTicket, 1)
    # Passes: the many-to-one is answered from the identity map, no SQL needed.
    return ticket.assignee.name, ticket.assignee is assignee


# endregion on_sql_warm


# region raise_eager
async def ticket_with_assignee(session: AsyncSession) -> tuple[str, str]:
    # Loader options override lazy="raise" for this query.
    stmt = select(RaiseTicket).options(joinedload(RaiseTicket.assignee))
    ticket = (await session.scalars(stmt)).one()
    return ticket.subject, ticket.assignee.name


# endregion raise_eager


# region raiseload_star
async def user_posts_under_raiseload(session: AsyncSession) -> int:
    stmt = select(User).where(User.id == 1).options(raiseload("*"))
    user = (await session.scalars(stmt)).one()
    return len(user.posts)


# endregion raiseload_star


# region raiseload_rest
async def user_posts_and_nothing_else(session: AsyncSession) -> list[str]:
    # Load what the code reads; any other relationship it touches raises.
    stmt = (
        select(User)
        .where(User.id == 1)
        .options(selectinload(User.posts), raiseload("*"))
    )
    user = (await session.scalars(stmt)).one()
    return [post.title for post in user.posts]


# endregion raiseload_rest


# region raiseload_misses_columns
async def expired_column_under_raiseload(session: AsyncSession) -> str:
    stmt = select(User).where(User.id == 1).options(raiseload("*"))
    user = (await session.scalars(stmt)).one()
    session.expire(user)
    # Not caught: raiseload covers relationships, and `name` is a column.
    return user.name


# endregion raiseload_misses_columns


# region raise_everywhere
def raise_on_lazy_loads(session: AsyncSession) -> None:
    """Add raiseload("*") to every ORM query this session runs (tests, dev)."""

    @event.listens_for(session.sync_session, "do_orm_execute")
    def _add_raiseload(state: ORMExecuteState) -> None:
        # Lazy loads and refreshes are ORM queries too; leave them alone.
        if state.is_select and not (state.is_relationship_load or state.is_column_load):
            state.statement = state.statement.options(raiseload("*"))


async def user_roles_in_strict_session(session: AsyncSession) -> int:
    raise_on_lazy_loads(session)
    user = await session.get_one(User, 1)
    return len(user.roles)


# endregion raise_everywhere
