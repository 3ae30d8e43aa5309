"""Deferred columns: load them in the query, or make a forgotten one raise.

Serves IO107 (load deferred columns explicitly).
"""

from __future__ import annotations

from sqlalchemy import String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    defer,
    load_only,
    mapped_column,
    undefer,
    undefer_group,
)

from snippets.models import Base


# region report_mapping
class Report(Base):
    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))
    # Large columns most queries do not need: left out of every SELECT unless
    # a query asks for them.
    body: Mapped[str] = mapped_column(Text, deferred=True, deferred_group="content")
    rendered_html: Mapped[str] = mapped_column(
        Text, deferred=True, deferred_group="content"
    )


# endregion report_mapping


async def _add_reports(session: AsyncSession) -> None:
    session.add_all(
        [
            Report(
                title="Q1",
                summary="Quiet quarter.",
                body="Revenue was flat.",
                rendered_html="<p>Revenue was flat.</p>",
            ),
            Report(
                title="Q2",
                summary="Growth.",
                body="Revenue grew.",
                rendered_html="<p>Revenue grew.</p>",
            ),
        ]
    )


async def report_bodies_deferred(session: AsyncSession) -> dict[str, str]:
    reports = await session.scalars(select(Report).order_by(Report.id))
    # Broken: body was deferred, so reading it is a query.
    return {report.title: report.body for report in reports}


async def report_bodies(session: AsyncSession) -> dict[str, str]:
    stmt = select(Report).options(undefer(Report.body)).order_by(Report.id)
    reports = await session.scalars(stmt)
    return {report.title: report.body for report in reports}


async def report_contents(session: AsyncSession) -> dict[str, tuple[str, str]]:
    # Every column of the "content" group, by the group's name.
    stmt = select(Report).options(undefer_group("content")).order_by(Report.id)
    reports = await session.scalars(stmt)
    return {report.title: (report.body, report.rendered_html) for report in reports}


async def report_summaries_load_only(session: AsyncSession) -> dict[str, str]:
    stmt = select(Report).options(load_only(Report.title)).order_by(Report.id)
    reports = await session.scalars(stmt)
    # Broken: load_only() deferred every column but title and the key, summary too.
    return {report.title: report.summary for report in reports}


# region raiseload
async def report_titles(session: AsyncSession) -> list[str]:
    # Only what the listing shows; any other column raises instead of loading.
    stmt = (
        select(Report)
        .options(load_only(Report.title, raiseload=True))
        .order_by(Report.id)
    )
    return [report.title for report in await session.scalars(stmt)]


async def report_summaries_without_body(session: AsyncSession) -> dict[str, str]:
    # Everything but the large text; reading body by mistake raises.
    stmt = (
        select(Report).options(defer(Report.body, raiseload=True)).order_by(Report.id)
    )
    return {report.title: report.summary for report in await session.scalars(stmt)}


# endregion raiseload


async def report_titles_reading_summary(session: AsyncSession) -> dict[str, str]:
    stmt = (
        select(Report)
        .options(load_only(Report.title, raiseload=True))
        .order_by(Report.id)
    )
    reports = await session.scalars(stmt)
    # A mistake: summary was not loaded, and raiseload says so at once.
    return {report.title: report.summary for report in reports}


async def first_report_body(session: AsyncSession) -> str:
    report = await session.scalar(select(Report).order_by(Report.id).limit(1))
    # One object: an awaited load of the deferred column (and its group).
    return await report.awaitable_attrs.body
