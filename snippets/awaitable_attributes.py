"""``await obj.awaitable_attrs.name``: explicit, correct, and one round trip each.

Serves IO106 (no awaitable_attrs in loops) and IO202 (explicit reloads).
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from snippets.models import Base, User


async def first_user_post_titles(session: AsyncSession) -> list[str]:
    user = await session.scalar(select(User).order_by(User.id).limit(1))
    # The load runs inside this await, where the event loop can wait for it.
    posts = await user.awaitable_attrs.posts
    return [post.title for post in posts]


async def post_counts_awaited_in_a_loop(session: AsyncSession) -> dict[str, int]:
    users = (await session.scalars(select(User).order_by(User.id))).all()
    # Correct, and one query per user: the N + 1 pattern IO106 forbids.
    return {user.name: len(await user.awaitable_attrs.posts) for user in users}


async def post_counts_eager(session: AsyncSession) -> dict[str, int]:
    stmt = select(User).options(selectinload(User.posts)).order_by(User.id)
    users = await session.scalars(stmt)
    return {user.name: len(user.posts) for user in users}


# region raise_mapping
class Newsletter(Base):
    __tablename__ = "newsletter"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Any read of issues that was not loaded up front raises at once.
    issues: Mapped[list[NewsletterIssue]] = relationship(
        lazy="raise", order_by="NewsletterIssue.id"
    )


class NewsletterIssue(Base):
    __tablename__ = "newsletter_issue"

    id: Mapped[int] = mapped_column(primary_key=True)
    newsletter_id: Mapped[int] = mapped_column(ForeignKey("newsletter.id"))
    subject: Mapped[str] = mapped_column(String(200))


# endregion raise_mapping


async def _add_newsletters(session: AsyncSession) -> None:
    session.add(
        Newsletter(
            name="Release notes",
            issues=[
                NewsletterIssue(subject="2.0 is out"),
                NewsletterIssue(subject="2.1 is out"),
            ],
        )
    )


async def issue_subjects_awaited(session: AsyncSession) -> list[str]:
    newsletter = await session.scalar(select(Newsletter))
    # Refused: awaitable_attrs performs the same load, and lazy="raise" forbids it.
    issues = await newsletter.awaitable_attrs.issues
    return [issue.subject for issue in issues]


async def issue_subjects_eager(session: AsyncSession) -> list[str]:
    stmt = select(Newsletter).options(selectinload(Newsletter.issues))
    newsletter = await session.scalar(stmt)
    return [issue.subject for issue in newsletter.issues]


async def issue_subjects_refreshed(session: AsyncSession) -> list[str]:
    newsletter = await session.scalar(select(Newsletter))
    # An explicit, awaited load by name: allowed even under lazy="raise".
    await session.refresh(newsletter, ["issues"])
    return [issue.subject for issue in newsletter.issues]
