"""The domain model every example in the guide shares.

Users hold roles and write posts; posts collect comments. Relationships declare
``lazy="select"`` (SQLAlchemy's default) on purpose: it is what most existing code
bases have, and it is the setting under which implicit I/O happens.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


# region base
class Base(AsyncAttrs, DeclarativeBase):
    """AsyncAttrs adds ``obj.awaitable_attrs`` to every mapped class."""


# endregion base


# region model
user_role = Table(
    "user_role",
    Base.metadata,
    Column("user_id", ForeignKey("user_account.id"), primary_key=True),
    Column("role_id", ForeignKey("role.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    roles: Mapped[list[Role]] = relationship(secondary=user_role, lazy="select")
    posts: Mapped[list[Post]] = relationship(
        back_populates="author", lazy="select", order_by="Post.id"
    )


class Role(Base):
    __tablename__ = "role"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)


class Post(Base):
    __tablename__ = "post"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    author: Mapped[User] = relationship(back_populates="posts", lazy="select")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", lazy="select", order_by="Comment.id"
    )


class Comment(Base):
    __tablename__ = "comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(500))
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id"))
    post: Mapped[Post] = relationship(back_populates="comments", lazy="select")


# endregion model


# region sample_data
def sample_users() -> list[User]:
    """Three users, two roles, three posts and three comments."""
    admin, editor = Role(name="admin"), Role(name="editor")
    return [
        User(
            name="ada",
            roles=[admin, editor],
            posts=[
                Post(title="Notes on engines", comments=[Comment(text="Clear.")]),
                Post(title="On sessions", comments=[]),
            ],
        ),
        User(
            name="grace",
            roles=[editor],
            posts=[
                Post(
                    title="Compilers",
                    comments=[Comment(text="More!"), Comment(text="Agreed.")],
                )
            ],
        ),
        User(name="linus", roles=[], posts=[]),
    ]


# endregion sample_data
