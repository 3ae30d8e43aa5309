"""The scenario set behind the enforcement walkthrough and the comparison with peers.

Each scenario is a small piece of async ORM code with a known verdict: it either
performs implicit I/O a tool should report, or it is clean code a tool must not
flag. ``_comparison_rows`` (scaffolding at the end, not shown) runs every scenario
through our guard, queryspy and pytest-queryguard on fresh databases and returns
the table the page shows.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import queryspy
from pytest_queryguard import NPlusOneDetected, record_queries
from sqlalchemy import FetchedValue, ForeignKey, String, create_engine, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column, selectinload, sessionmaker

from guide_runtime.capture import failed_loads_warn_here, release_failed_io
from guide_runtime.database import add_sample_data, fresh_database
from implicit_io.guard import (
    ImplicitIOError,
    ImplicitIOGuard,
    KnownException,
    guard_mode,
)
from implicit_io.mapping_check import check_mappings
from implicit_io.report import Baseline, Report
from implicit_io.review_check import check_source
from snippets.mapping_check import LegacyBase
from snippets.models import Base, Post, User, sample_users
from snippets.server_generated_values import count_revisions


# region article_model
class EnforcedArticle(Base):
    """An article whose body is deferred and whose revision the database bumps."""

    __tablename__ = "enforced_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(deferred=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    revision: Mapped[int] = mapped_column(
        server_default=text("1"), server_onupdate=FetchedValue()
    )


# endregion article_model

count_revisions(EnforcedArticle.__table__, "title")


async def _seed_article(session: AsyncSession) -> None:
    author = User(name="ada")
    session.add(author)
    await session.flush()
    session.add(
        EnforcedArticle(title="Engines", body="Long text.", author_id=author.id)
    )


Scenario = Callable[[AsyncSession], Awaitable[object]]


# region scenarios
async def lazy_one_to_many(session: AsyncSession) -> object:
    user = await session.scalar(select(User).where(User.name == "ada"))
    return [post.title for post in user.posts]


async def many_to_one_identity_map_hit(session: AsyncSession) -> object:
    # The authors are in the identity map already: no SQL is needed, none is sent.
    # (The identity map holds objects weakly: keep a reference while they matter.)
    users = (await session.scalars(select(User))).all()
    post = await session.scalar(select(Post).where(Post.title == "Compilers"))
    assert post.author in users
    return post.author.name


async def many_to_one_identity_map_miss(session: AsyncSession) -> object:
    post = await session.scalar(select(Post).where(Post.title == "Compilers"))
    return post.author.name


async def expired_after_commit(session: AsyncSession) -> object:
    # Run on a session with expire_on_commit=True, which IO201 forbids.
    user = await session.scalar(select(User).where(User.name == "ada"))
    user.name = "ada lovelace"
    await session.commit()
    return user.name


async def deferred_column(session: AsyncSession) -> object:
    article = await session.scalar(select(EnforcedArticle))
    return article.body


async def server_onupdate_value(session: AsyncSession) -> object:
    article = await session.scalar(select(EnforcedArticle))
    article.title = "Engines, revised"
    await session.flush()
    return article.revision


async def awaitable_attrs_in_a_loop(session: AsyncSession) -> object:
    users = await session.scalars(select(User).order_by(User.id))
    post_counts = {}
    for user in users:
        post_counts[user.name] = len(await user.awaitable_attrs.posts)
    return post_counts


async def lazy_loads_inside_run_sync(session: AsyncSession) -> object:
    users = (await session.scalars(select(User).order_by(User.id))).all()

    def role_counts(sync_session: Session) -> dict[str, int]:
        counts = {}
        for user in users:
            counts[user.name] = len(user.roles)
        return counts

    return await session.run_sync(role_counts)


async def eager_loaded(session: AsyncSession) -> object:
    query = select(User).options(selectinload(User.posts), selectinload(User.roles))
    users = await session.scalars(query.order_by(User.id))
    return {user.name: (len(user.posts), len(user.roles)) for user in users}


async def one_awaitable_attribute(session: AsyncSession) -> object:
    user = await session.scalar(select(User).where(User.name == "ada"))
    return len(await user.awaitable_attrs.posts)


async def refresh_named_attributes(session: AsyncSession) -> object:
    user = await session.scalar(select(User).where(User.name == "ada"))
    await session.refresh(user, ["roles"])
    return len(user.roles)


async def explicit_queries_in_a_loop(session: AsyncSession) -> object:
    users = await session.scalars(select(User).order_by(User.id))
    return {
        user.name: len(
            (await session.scalars(select(Post).filter_by(author=user))).all()
        )
        for user in users
    }


# endregion scenarios


# region wiring
REQUEST_PATH_EXCEPTIONS = [
    KnownException(
        rule="IO106",
        attribute="User.posts",
        rationale="Admin export walks at most 50 users; batching tracked in PLAT-231.",
    ),
]


def guarded_session_factories(
    engine: AsyncEngine,
) -> tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]]:
    """One process, two phases: request handlers enforce, background workers track."""
    requests = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce", allow=REQUEST_PATH_EXCEPTIONS).install(requests)
    workers = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("track").install(workers)
    return requests, workers


async def nightly_report(workers: async_sessionmaker[AsyncSession]) -> dict:
    """A worker job that is already clean tightens itself to enforce."""
    with guard_mode("enforce"):
        async with workers() as session:
            return await eager_loaded(session)


# endregion wiring


# region tool_runs
async def run_with_queryspy(scenario: Scenario, session: AsyncSession) -> None:
    """queryspy's own way: it raises ``queryspy.NPlusOneError`` on an N+1."""
    with queryspy.no_n_plus_one():
        await scenario(session)


async def run_with_queryguard(scenario: Scenario, session: AsyncSession) -> None:
    """pytest-queryguard's: record, then assert (raises ``NPlusOneDetected``)."""
    with record_queries() as log:
        await scenario(session)
    log.assert_no_nplusone()


def install_our_guard(
    factory: async_sessionmaker[AsyncSession],
    repeated_query_threshold: int | None = None,
) -> None:
    """Ours: this factory's sessions raise ``ImplicitIOError`` before the load."""
    guard = ImplicitIOGuard(
        "enforce", repeated_query_threshold=repeated_query_threshold
    )
    guard.install(factory)


# endregion tool_runs


# region overhead
async def _query_by_id(session: AsyncSession) -> None:
    await session.scalar(select(User).where(User.id == 1))


async def _explicit_lazy_load(session: AsyncSession) -> None:
    user = await session.get(User, 1)
    session.expire(user, ["posts"])
    await user.awaitable_attrs.posts


WORKLOADS = [
    ("query (the guard's fast path)", _query_by_id, 1),
    ("awaitable_attrs load (classified)", _explicit_lazy_load, 1),
]


async def measure_overhead(
    engine: AsyncEngine, iterations: int = 200, rounds: int = 3
) -> dict[str, tuple[float, float]]:
    """Best seconds per statement without and with a tracking guard, per workload.

    Both variants run in this process, on one database, in alternating rounds, so
    the ratio between them holds however fast the machine is.
    """
    results = {}
    plain = async_sessionmaker(engine, expire_on_commit=False)
    guarded = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("track").install(guarded)
    for label, workload, statements in WORKLOADS:
        best = {plain: float("inf"), guarded: float("inf")}
        for _ in range(rounds):
            for factory in (plain, guarded):
                async with factory() as session:
                    await workload(session)  # warm caches and the pool
                    start = time.perf_counter()
                    for _ in range(iterations):
                        await workload(session)
                    elapsed = time.perf_counter() - start
                best[factory] = min(best[factory], elapsed)
        per_statement = iterations * statements
        results[label] = (best[plain] / per_statement, best[guarded] / per_statement)
    return results


# endregion overhead


# --- What each tool prints, captured on the pages ---------------------------------


async def enforce_on_a_lazy_load(
    session_factory: async_sessionmaker[AsyncSession],
) -> object:
    ImplicitIOGuard("enforce").install(session_factory)
    async with session_factory() as session:
        return await lazy_one_to_many(session)


async def track_an_n_plus_one(
    session_factory: async_sessionmaker[AsyncSession],
) -> dict[str, object]:
    guard = ImplicitIOGuard("track")
    guard.install(session_factory)
    with _log_records("implicit_io") as records:
        async with session_factory() as session:
            await awaitable_attrs_in_a_loop(session)
    fields = ("rule", "attribute", "call_site", "docs_url")
    return {
        "logged": [{name: getattr(r, name) for name in fields} for r in records],
        "counts": dict(guard.counts),
    }


def mapping_check_report() -> list[str]:
    return [str(finding) for finding in check_mappings(LegacyBase)]


def review_check_report() -> list[str]:
    path = "snippets/mapping_check.py"
    with open(path, encoding="utf-8") as source:
        return [str(finding) for finding in check_source(source.read(), path)]


# region tracked_counts
def author_digest(session: Session, *, release: int) -> list[str]:
    """A sync export job, release by release: each loads more of what it reads."""
    query = select(User).order_by(User.id)
    if release >= 2:  # release 2: the posts come with their authors
        posts = selectinload(User.posts)
        if release >= 3:  # release 3: and the comments with their posts
            posts = posts.selectinload(Post.comments)
        query = query.options(posts)
    return [
        f"{user.name}: {post.title} ({len(post.comments)} comments)"
        for user in session.scalars(query)
        for post in user.posts
    ]


def tracked_loads_by_release() -> list[str]:
    """Each release's loads in track mode, against the baseline of release 1."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(sample_users())
        session.commit()
    reports: list[Report] = []
    with _log_records("implicit_io"):  # track mode logs each load; not shown here
        for release in (1, 2, 3):
            report = Report()  # what --implicit-io-report writes for a test run
            factory = sessionmaker(engine, expire_on_commit=False)
            ImplicitIOGuard("track", on_load=report.add).install(factory)
            with factory() as session:
                author_digest(session, release=release)
            reports.append(report)
    engine.dispose()
    baseline = Baseline.of(reports[0])
    lines = ["release  loads  new  baseline entries still seen  removable"]
    for release, report in enumerate(reports, start=1):
        seen = len(baseline.counts) - len(baseline.removable(report))
        lines.append(
            f"{release:7d}  {report.total:5d}  {len(baseline.new_in(report)):3d}  "
            f"{seen:28d}  {len(baseline.removable(report)):9d}"
        )
    return lines


# endregion tracked_counts


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _log_records(name: str) -> Iterator[list[logging.LogRecord]]:
    collector = _Collector()
    logging.getLogger(name).addHandler(collector)
    try:
        yield collector.records
    finally:
        logging.getLogger(name).removeHandler(collector)


# --- Scaffolding behind the generated tables (not shown on the pages) ------------


@dataclass(frozen=True)
class _Case:
    """A scenario and whether a tool should report it."""

    label: str
    scenario: Scenario
    should_report: bool
    seed: Callable[[AsyncSession], Awaitable[None]] = add_sample_data
    expire_on_commit: bool = False


CASES = [
    _Case("lazy one-to-many", lazy_one_to_many, True),
    _Case("lazy many-to-one, identity-map hit", many_to_one_identity_map_hit, False),
    _Case("lazy many-to-one, identity-map miss", many_to_one_identity_map_miss, True),
    _Case(
        "expired attribute after commit",
        expired_after_commit,
        True,
        expire_on_commit=True,
    ),
    _Case("deferred column", deferred_column, True, _seed_article),
    _Case(
        "server_onupdate column after flush", server_onupdate_value, True, _seed_article
    ),
    _Case("N+1 via awaitable_attrs in a loop", awaitable_attrs_in_a_loop, True),
    _Case("N+1 inside run_sync", lazy_loads_inside_run_sync, True),
    _Case("N+1 of explicit queries in a loop", explicit_queries_in_a_loop, True),
    _Case("eager-loaded (clean)", eager_loaded, False),
    _Case("one awaitable attribute (clean)", one_awaitable_attribute, False),
    _Case("refresh of named attributes (clean)", refresh_named_attributes, False),
]

TOOLS = {
    "none": "No tool",
    "ours": "Our guard (enforce)",
    "ours+repeats": "Our guard, repeated_query_threshold=2",
    "queryspy": f"queryspy {queryspy.__version__} no_n_plus_one()",
    "queryguard": "pytest-queryguard 0.4.1 assert_no_nplusone()",
}


async def _run_plainly(scenario: Scenario, session: AsyncSession) -> None:
    await scenario(session)


async def _outcome(case: _Case, tool: str) -> str:
    """Run one case on a fresh database under ``tool``; what that tool said."""
    run = {"queryspy": run_with_queryspy, "queryguard": run_with_queryguard}
    async with fresh_database(case.seed) as engine:
        factory = async_sessionmaker(engine, expire_on_commit=case.expire_on_commit)
        if tool == "ours":
            install_our_guard(factory)
        elif tool == "ours+repeats":
            install_our_guard(factory, repeated_query_threshold=2)
        with warnings.catch_warnings(), failed_loads_warn_here():
            warnings.simplefilter("ignore", RuntimeWarning)
            async with factory() as session:
                try:
                    await run.get(tool, _run_plainly)(case.scenario, session)
                except ImplicitIOError as error:
                    return f"reported {error.rule}"
                except (queryspy.NPlusOneError, NPlusOneDetected):
                    return "reported N+1"
                except Exception as error:  # a crash is no tool's report
                    release_failed_io(error)
                    cause = getattr(error, "orig", None) or error
                    return f"fails: {type(cause).__name__}" if tool == "none" else "-"
    return "runs" if tool == "none" else "-"  # "-": the tool reported nothing


async def _comparison_rows() -> list[list[str]]:
    """The comparison table: one row per scenario, one column per tool."""
    rows = [["Scenario", "Should report", *TOOLS.values()]]
    for case in CASES:
        outcomes = [await _outcome(case, tool) for tool in TOOLS]
        rows.append([case.label, "yes" if case.should_report else "no", *outcomes])
    return rows


async def _overhead_rows(iterations: int = 100, rounds: int = 3) -> list[list[str]]:
    """The overhead table: time per statement without and with the guard."""
    rows = [["Workload", "Without guard", "With guard (track)", "Ratio"]]
    async with fresh_database() as engine:
        measured = await measure_overhead(engine, iterations, rounds)
    for label, (plain, guarded) in measured.items():
        rows.append(
            [
                label,
                f"{plain * 1e6:.0f} µs",
                f"{guarded * 1e6:.0f} µs",
                f"{guarded / plain:.2f}",
            ]
        )
    return rows
