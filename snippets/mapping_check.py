"""The mapping check in a service: a suite test, and a legacy model it reports.

The check itself is product code, in :mod:`implicit_io.mapping_check`.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from implicit_io.mapping_check import check_mappings


# region suite_test
def test_every_relationship_declares_how_it_loads() -> None:
    from snippets.models import Base  # your service's declarative base

    findings = check_mappings(Base, modules=("snippets.models",))
    assert not findings, "\n".join(map(str, findings))


# endregion suite_test


# region legacy_models
class LegacyBase(DeclarativeBase):
    """A separate registry, so these examples never join the shared model."""


class LegacyCustomer(LegacyBase):
    __tablename__ = "legacy_customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    orders: Mapped[list[LegacyOrder]] = relationship(back_populates="customer")
    notes = relationship("LegacyNote", lazy="dynamic")


class LegacyOrder(LegacyBase):
    __tablename__ = "legacy_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("legacy_customer.id"))
    customer: Mapped[LegacyCustomer] = relationship(
        back_populates="orders", lazy="raise_on_sql"
    )


class LegacyNote(LegacyBase):
    __tablename__ = "legacy_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("legacy_customer.id"))


# endregion legacy_models
