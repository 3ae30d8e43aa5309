import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from implicit_io.review_check import (
    Finding,
    UnreadableSourceError,
    check_source,
    main,
    python_files,
)
from implicit_io.rule_links import rule_url
from tests.conftest import ROOT

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


def test_noqa_silences_the_named_codes_only() -> None:
    source = textwrap.dedent(
        """\
        a = relationship("A")  # noqa: IO104
        b = relationship("B", lazy="dynamic")  # noqa: IO104
        c = async_sessionmaker(engine)  # noqa: io201, IO104
        d = relationship("D")  # noqa
        e = "# noqa: IO104"; f = relationship("F")
        """
    )
    assert codes(check_source(source)) == [(2, "IO105"), (5, "IO104")]


def test_every_loop_form_and_backref_are_covered() -> None:
    """What the rule pages promise beyond the main sample: loops, backref, limits."""
    source = textwrap.dedent(
        """\
        up = relationship("P", backref=backref("kids", lazy="dynamic"), lazy="raise")
        down = relationship("Q", backref=backref("others"), lazy="raise")  # no IO104
        async def job(session, rows):
            async for row in rows:
                await row.awaitable_attrs.posts
            while rows:
                await rows.pop().awaitable_attrs.roles
            return {r.id: await r.awaitable_attrs.posts for r in rows}
        async def cached(cache, keep):
            cache.expire("key")  # syntax only: any method of that name
            return async_sessionmaker(engine, expire_on_commit=keep)
        """
    )
    assert codes(check_source(source)) == [
        (1, "IO105"),
        (5, "IO106"),
        (7, "IO106"),
        (8, "IO106"),
        (10, "IO204"),
        (11, "IO201"),  # a variable may hold True: reported
    ]


def test_keyword_splats_get_the_benefit_of_the_doubt() -> None:
    source = "a = relationship('A', **options)\nf = async_sessionmaker(**settings)\n"
    assert check_source(source) == []


def test_unparsable_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def handler(:\n    pass\n")
    with pytest.raises(UnreadableSourceError, match=r"broken.py:1:\d+: cannot parse"):
        check_source(broken.read_text(), str(broken))
    assert main([str(broken)]) == 2
    assert "cannot parse" in capsys.readouterr().err


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nowhere.py")]) == 2
    assert "nowhere.py: no such file or directory" in capsys.readouterr().err


def test_folders_are_searched_skipping_virtualenvs(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "models.py").write_text(HOTSPOTS)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "vendored.py").write_text(HOTSPOTS)
    assert list(python_files([str(tmp_path)])) == [tmp_path / "app" / "models.py"]


def test_command_line_prints_findings_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(HOTSPOTS)
    (tmp_path / "clean.py").write_text("x = relationship('X', lazy='selectin')\n")
    run = subprocess.run(
        [sys.executable, "-m", "implicit_io.review_check", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith(f"{tmp_path}/models.py:6:37: IO104 ")
    assert "Found 8 implicit-I/O hotspot(s)." in run.stderr
    linked = subprocess.run(
        [
            sys.executable,
            "-m",
            "implicit_io.review_check",
            "--docs-url",
            "/docs",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert linked.stdout.splitlines()[0].endswith("See /docs/guides/rules/io104.html")
    clean = subprocess.run(
        [sys.executable, "-m", "implicit_io.review_check", str(tmp_path / "clean.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (clean.returncode, clean.stdout) == (0, "")
