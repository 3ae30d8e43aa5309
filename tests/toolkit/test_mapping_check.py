import logging
from pathlib import Path

import pytest
from sqlalchemy import ForeignKey
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    WriteOnlyMapped,
    backref,
    configure_mappers,
    mapped_column,
    relationship,
)

from implicit_io.mapping_check import (
    MappingCheckError,
    MappingFinding,
    check_mappings,
    check_on_configure,
)
from implicit_io.rule_links import rule_url
from snippets.mapping_check import (
    LegacyBase,
    LegacyCustomer,
    LegacyNote,
    LegacyOrder,
    test_every_relationship_declares_how_it_loads,  # collected: the suite test
)
from snippets.models import Base, User


def test_the_shared_model_declares_every_strategy() -> None:
    assert check_mappings(Base, modules=("snippets.models",)) == []


def test_sqlalchemy_keeps_no_trace_of_a_defaulted_lazy() -> None:
    # Why the check reads source: a defaulted and an explicit "select" are equal.
    configure_mappers()
    implicit = LegacyCustomer.orders.property
    explicit = User.posts.property
    assert implicit.lazy == explicit.lazy == "select"
    assert implicit.strategy_key == explicit.strategy_key


def test_legacy_models_are_reported_with_rule_line_and_link() -> None:
    findings = check_mappings(LegacyBase, docs_base_url="")
    assert [(f.rule, f.attribute) for f in findings] == [
        ("IO104", "LegacyCustomer.orders"),
        ("IO105", "LegacyCustomer.notes"),
    ]
    orders = findings[0]
    assert isinstance(orders, MappingFinding)
    assert orders.location.startswith("snippets/mapping_check.py:")
    line = int(orders.location.rsplit(":", 1)[1])
    source = Path("snippets/mapping_check.py").read_text().splitlines()
    assert source[line - 1].strip().startswith("orders: Mapped[list[LegacyOrder]]")
    assert orders.docs_url == rule_url("IO104", "") == "guides/rules/io104.html"
    assert str(orders).startswith(f"{orders.location}: IO104 LegacyCustomer.orders ")
    assert LegacyOrder.customer.property.lazy == "raise_on_sql"  # explicit: clean
    assert LegacyNote.__tablename__ not in Base.metadata.tables  # own registry


def test_backref_and_hidden_declarations_are_reported() -> None:
    class HiddenBase(DeclarativeBase):
        pass

    class Shelf(HiddenBase):
        __tablename__ = "shelf"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Book(HiddenBase):
        __tablename__ = "book"
        id: Mapped[int] = mapped_column(primary_key=True)
        shelf_id: Mapped[int] = mapped_column(ForeignKey("shelf.id"))
        shelf = relationship(Shelf, lazy="joined", backref=backref("books"))

    findings = check_mappings(HiddenBase)
    assert [(f.rule, f.attribute) for f in findings] == [("IO104", "Shelf.books")]
    assert "cannot read it (a backref" in findings[0].message
    assert Book.shelf.property.lazy == "joined"
    HiddenBase.registry.dispose()


def test_keyword_splats_get_the_benefit_of_the_doubt() -> None:
    class SplatBase(DeclarativeBase):
        pass

    loading = {"lazy": "selectin"}

    class Rack(SplatBase):
        __tablename__ = "rack"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Crate(SplatBase):
        __tablename__ = "crate"
        id: Mapped[int] = mapped_column(primary_key=True)
        rack_id: Mapped[int] = mapped_column(ForeignKey("rack.id"))
        rack = relationship(Rack, **loading)

    assert check_mappings(SplatBase) == []
    assert Crate.rack.property.lazy == "selectin"
    SplatBase.registry.dispose()


def test_a_write_only_annotation_states_the_strategy() -> None:
    # SQLAlchemy's examples/asyncio/async_orm_writeonly.py, and the fix IO105 asks
    # for: `bs: WriteOnlyMapped[B] = relationship()` loads write_only, stated.
    class WriteOnlyBase(DeclarativeBase):
        pass

    class Feed(WriteOnlyBase):
        __tablename__ = "feed"
        id: Mapped[int] = mapped_column(primary_key=True)
        entries: WriteOnlyMapped["Entry"] = relationship(order_by="Entry.id")
        pinned: Mapped[list["Entry"]] = relationship(viewonly=True)

    class Entry(WriteOnlyBase):
        __tablename__ = "entry"
        id: Mapped[int] = mapped_column(primary_key=True)
        feed_id: Mapped[int] = mapped_column(ForeignKey("feed.id"))

    findings = check_mappings(WriteOnlyBase)
    assert Feed.entries.property.lazy == "write_only"
    assert [(f.rule, f.attribute) for f in findings] == [("IO104", "Feed.pinned")]
    WriteOnlyBase.registry.dispose()


def test_check_runs_at_configure_time(caplog: pytest.LogCaptureFixture) -> None:
    class LateBase(DeclarativeBase):
        pass

    check_on_configure(LateBase)

    class Parent(LateBase):
        __tablename__ = "late_parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        children: Mapped[list["Child"]] = relationship()

    class Child(LateBase):
        __tablename__ = "late_child"
        id: Mapped[int] = mapped_column(primary_key=True)
        parent_id: Mapped[int] = mapped_column(ForeignKey("late_parent.id"))

    with caplog.at_level(logging.WARNING, logger="implicit_io.mapping"):
        configure_mappers()
    [record] = caplog.records
    assert record.rule == "IO104"
    assert "Parent.children declares no loading strategy" in record.getMessage()
    assert Child.parent_id is not None
    LateBase.registry.dispose()


def test_strict_mode_refuses_to_configure() -> None:
    class StrictBase(DeclarativeBase):
        pass

    check_on_configure(StrictBase, strict=True)

    class Owner(StrictBase):
        __tablename__ = "strict_owner"
        id: Mapped[int] = mapped_column(primary_key=True)
        pets = relationship("Pet", lazy="dynamic")

    class Pet(StrictBase):
        __tablename__ = "strict_pet"
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int] = mapped_column(ForeignKey("strict_owner.id"))

    with pytest.raises(MappingCheckError, match=r"IO105 Owner\.pets"):
        configure_mappers()
    assert Pet.owner_id is not None
    StrictBase.registry.dispose()  # leave no failing registry to later tests


def test_the_suite_test_is_collected_here() -> None:
    assert test_every_relationship_declares_how_it_loads.__module__.endswith(
        "mapping_check"
    )
