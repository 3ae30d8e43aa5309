from collections.abc import AsyncIterator, Iterator

import pytest
from orders import Base, Customer, Order
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker


def _rows() -> list[Customer]:
    return [
        Customer(name="ada", orders=[Order(total=30), Order(total=12)]),
        Customer(name="grace", orders=[Order(total=7)]),
    ]


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    async with factory() as session:
        session.add_all(_rows())
        await session.commit()
    async with factory() as session:
        yield session
    await engine.dispose()


@pytest.fixture
def sync_session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        session.add_all(_rows())
        session.commit()
    with factory() as session:
        yield session
    engine.dispose()
