"""A small order service: the kind of code base the pytest plugin is tried on."""

from __future__ import annotations

from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    orders: Mapped[list[Order]] = relationship(back_populates="customer", lazy="select")


class Order(Base):
    __tablename__ = "customer_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    total: Mapped[int]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    customer: Mapped[Customer] = relationship(back_populates="orders", lazy="select")


async def customers_with_order_counts(session: AsyncSession) -> dict[str, int]:
    customers = await session.scalars(
        select(Customer).options(selectinload(Customer.orders))
    )
    return {customer.name: len(customer.orders) for customer in customers}


async def order_total(session: AsyncSession, order_id: int) -> int:
    order = await session.get_one(Order, order_id)
    return order.total


def invoice_lines(session: Session) -> list[str]:
    """The nightly invoice export (a sync worker): reads each order's customer."""
    orders = session.scalars(select(Order).order_by(Order.id))
    return [f"{order.customer.name}: {order.total}" for order in orders]
