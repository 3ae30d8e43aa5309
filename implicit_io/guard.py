"""A guard that sees every ORM load before it runs, and says which ones are implicit.

SQLAlchemy announces each ORM statement through the ``do_orm_execute`` session
event *before* it takes a connection. The guard listens there, classifies the
load, and in ``track`` mode logs it with a rule code, the ``Entity.attribute``, the
application line that caused it and a link to the rule; in ``enforce`` mode it
raises :class:`ImplicitIOError` with the same fields instead of letting the load
reach the driver (where asyncio would fail with an anonymous MissingGreenlet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import site
import sys
import sysconfig
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy
from greenlet import getcurrent
from sqlalchemy import event
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session, sessionmaker
from sqlalchemy.orm.exc import DetachedInstanceError

from implicit_io import _sqlalchemy_internals as internals
from implicit_io.rule_links import KNOWN_RULES, rule_url

_PATH_KEYS = ("stdlib", "platstdlib", "purelib", "platlib")

#: The execution option (on a session or a statement) and ``session.info`` key
#: that choose the guard's mode for one session.
MODE_OPTION = "implicit_io"

logger = logging.getLogger("implicit_io")


# region modes
class Mode(StrEnum):
    OFF = "off"  # classify nothing
    TRACK = "track"  # log each implicit load and count it
    ENFORCE = "enforce"  # raise ImplicitIOError before the load runs


def parse_mode(value: str | Mode) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise ValueError(
            f"unknown implicit-I/O guard mode {value!r}; use one of "
            f"{', '.join(mode.value for mode in Mode)}"
        ) from None


_block_mode: ContextVar[Mode | None] = ContextVar("implicit_io_block", default=None)


@contextlib.contextmanager
def guard_mode(mode: str | Mode) -> Iterator[None]:
    """Use ``mode`` for every guarded session inside the block (and its tasks)."""
    token = _block_mode.set(parse_mode(mode))
    try:
        yield
    finally:
        _block_mode.reset(token)


# endregion modes


# region findings
#: The rule codes the guard reports.
GUARD_RULES = frozenset(
    {"IO101", "IO102", "IO106", "IO107", "IO201", "IO202", "IO203", "IO204"}
)
assert KNOWN_RULES.keys() >= GUARD_RULES


@dataclass(frozen=True)
class ImplicitLoad:
    """One load the guard reports: what, where, and which rule it breaks."""

    rule: str
    kind: str
    attribute: str  # "Entity.attribute"
    call_site: str  # "path/to/module.py:42 in function": the application's line
    docs_url: str
    #: The library frame the load happened in, when the application's line called
    #: a library that read the attribute ("pydantic/main.py:716 in model_validate").
    via: str = ""

    def __str__(self) -> str:
        via = f" (through {self.via})" if self.via else ""
        return (
            f"{self.rule} {self.kind}: {self.attribute} at {self.call_site}{via}. "
            f"See {self.docs_url}"
        )

    @property
    def location(self) -> str:
        """``path:line`` of the call site (without the function)."""
        return self.call_site.split(" in ", 1)[0]


class ImplicitIOError(Exception):
    """Raised in ``enforce`` mode before an implicit load reaches the database."""

    def __init__(self, load: ImplicitLoad) -> None:
        super().__init__(str(load))
        self.load = load
        self.rule = load.rule
        self.attribute = load.attribute
        self.call_site = load.call_site
        self.docs_url = load.docs_url


class AllowedLoadCannotRunError(ImplicitIOError, MissingGreenlet):
    """An allow-listed (or baselined) load where no load can run: async code.

    Allowing a load stops the guard from reporting it; it cannot make it work.
    Plain attribute access on an ``AsyncSession``'s object has no ``await`` to
    run a query in, so SQLAlchemy would fail with ``MissingGreenlet`` (and the
    driver warn of a coroutine never awaited); the guard raises this instead,
    before the load, naming the load and the entry. It is a ``MissingGreenlet``
    too: code that catches SQLAlchemy's error (to answer "include it") still
    does, so an accepted load fails no test that passed without the guard.
    """

    __str__ = Exception.__str__  # the guard's message, without SQLAlchemy's link

    def __init__(self, load: ImplicitLoad, accepted_by: str) -> None:
        super().__init__(load)
        self.accepted_by = accepted_by
        self.args = (
            f"{load.rule} {load.kind}: {load.attribute} at {load.call_site} is "
            f"{accepted_by}, but cannot run here: plain attribute access in async "
            "code has no await to run a query in (SQLAlchemy would raise "
            "MissingGreenlet). Accepting a load stops the guard from reporting it; "
            "it does not make it possible: load it in the query, or read it inside "
            f"run_sync(). See {load.docs_url}",
        )


class GuardAlreadyInstalledError(RuntimeError):
    """The session factory already has a guard; two would report every load twice."""


@dataclass(frozen=True)
class KnownException:
    """An allow-list entry: a load the team accepts, and why (rule IO401)."""

    rule: str
    attribute: str
    rationale: str
    owner: str = ""  # who removes it; the allow-list file requires one

    def __post_init__(self) -> None:
        if self.rule not in GUARD_RULES:
            raise ValueError(
                f"allow-list entry for {self.attribute}: unknown rule code "
                f"{self.rule!r}; the guard reports {', '.join(sorted(GUARD_RULES))}"
            )
        if not self.rationale.strip():
            raise ValueError(
                f"allow-list entry {self.rule} {self.attribute}: give the rationale "
                "(IO401: known exceptions are documented)"
            )


def explain_detached(error: BaseException) -> str | None:
    """What a ``DetachedInstanceError`` was about: the attribute, and why.

    ``None`` for any other error, or one whose object the guard cannot find.
    The reason (``expunge()``, ``close()``...) is known once a guard is
    installed (it watches objects leave their sessions).
    """
    if not isinstance(error, DetachedInstanceError):
        return None
    found = internals.detached_load(error)
    if found is None:
        return None
    instance, key = found
    reason = internals.detached_reason(instance) or "a call the guard did not see"
    return (
        f"{instance.class_.__name__}.{key} was read after the object was detached "
        f"from its session by {reason}: nothing can load it any more. Load it "
        "before the object leaves the session (a loader option, or refresh() "
        "with its name)."
    )


# endregion findings


# region guard
class ImplicitIOGuard:
    """Classify ORM loads on the sessions of the factories it is installed on."""

    def __init__(
        self,
        mode: str | Mode = Mode.TRACK,
        *,
        allow: Iterable[KnownException] = (),
        docs_base_url: str | None = None,
        n_plus_one_threshold: int = 2,
        repeated_query_threshold: int | None = None,
        on_load: Callable[[ImplicitLoad], None] | None = None,
        baseline: Iterable[tuple[str, str]] = (),
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.mode = parse_mode(mode)
        #: The application's files are named relative to this folder: ``root``,
        #: else the working directory when the guard was made, so that code which
        #: changes directory later does not change how the same line is named.
        self.root = Path(root) if root is not None else Path.cwd()
        self.allowed = {(entry.rule, entry.attribute): entry for entry in allow}
        #: (rule, "Entity.attribute") of accepted debt: reported, never raised.
        self.baseline = frozenset(baseline)
        self.docs_base_url = docs_base_url
        self.n_plus_one_threshold = n_plus_one_threshold
        #: Opt-in: report one line sending the same kind of query this many times
        #: in one session (an N+1 written with explicit queries).
        self.repeated_query_threshold = repeated_query_threshold
        #: Reported loads by (rule, "Entity.attribute"): what a team watches.
        self.counts: Counter[tuple[str, str]] = Counter()
        #: Loads the allow-list let through, counted the same way.
        self.allowed_counts: Counter[tuple[str, str]] = Counter()
        #: Called with each reported load, in every mode but off (the pytest plugin).
        self.on_load = on_load

    def install(self, factory: sessionmaker | async_sessionmaker) -> None:
        internals.track_expiry()  # so a column load can name why it was expired
        if getattr(factory, "implicit_io_guard", None) is not None:
            raise GuardAlreadyInstalledError(
                f"{factory!r} already has an implicit-I/O guard; install one guard "
                "per session factory and choose modes per session or block"
            )
        if isinstance(factory, async_sessionmaker):
            # AsyncSession runs a sync Session; a subclass of its class keeps the
            # listener on this factory's sessions only.
            base = factory.kw.get("sync_session_class", Session)
            guarded = type(f"Guarded{base.__name__}", (base,), {})
            event.listen(guarded, "do_orm_execute", self._before_orm_execute)
            factory.kw["sync_session_class"] = guarded
        elif isinstance(factory, sessionmaker):
            event.listen(factory, "do_orm_execute", self._before_orm_execute)
        else:
            raise TypeError(f"install the guard on a session factory, not {factory!r}")
        factory.implicit_io_guard = self

    def install_on_every_session(self) -> None:
        """Guard every ``Session`` (and so every ``AsyncSession``) of the process."""
        internals.track_expiry()
        event.listen(Session, "do_orm_execute", self._before_orm_execute)

    def remove_from_every_session(self) -> None:
        event.remove(Session, "do_orm_execute", self._before_orm_execute)

    def mode_for(self, state: ORMExecuteState) -> Mode:
        """The block's mode, else the session's or statement's, else the guard's."""
        block = _block_mode.get()
        if block is not None:
            return block
        chosen = state.execution_options.get(MODE_OPTION) or state.session.info.get(
            MODE_OPTION
        )
        return self.mode if chosen is None else parse_mode(chosen)

    def _before_orm_execute(self, state: ORMExecuteState) -> None:
        if not state.is_select:
            return  # INSERT/UPDATE/DELETE carry no load options: nothing loads
        # Cheap tests first: most statements are explicit queries.
        loads = state.lazy_loaded_from is not None or state.is_column_load
        repeats = (
            self.repeated_query_threshold is not None
            and not loads
            and state.is_select
            and not state.is_relationship_load  # an eager loader's own query
        )
        if not (loads or repeats):
            return
        mode = self.mode_for(state)
        if mode is Mode.OFF:
            return
        if loads:
            found = _classify(state, self.n_plus_one_threshold, self.root)
        else:
            found = _repeated_query(state, self.repeated_query_threshold, self.root)
        if found is None:
            return
        rule, kind, attribute = found
        call_site, via = _call_site(self.root)
        load = ImplicitLoad(
            rule, kind, attribute, call_site, rule_url(rule, self.docs_base_url), via
        )
        if (rule, attribute) in self.allowed:
            self.allowed_counts[rule, attribute] += 1
            if not _can_run(state):
                raise AllowedLoadCannotRunError(load, "allow-listed (IO401)")
            return
        self.counts[rule, attribute] += 1
        if self.on_load is not None:
            self.on_load(load)
        if (rule, attribute) in self.baseline:
            if not _can_run(state):
                raise AllowedLoadCannotRunError(load, "in the baseline")
            mode = Mode.TRACK  # accepted debt: reported, not refused
        if mode is Mode.ENFORCE:
            raise ImplicitIOError(load)
        logger.warning(
            "%s",
            load,
            extra={
                "rule": load.rule,
                "attribute": load.attribute,
                "call_site": load.call_site,
                "docs_url": load.docs_url,
            },
        )


# endregion guard


# region classify
_SQLALCHEMY_DIR = str(Path(sqlalchemy.__file__).parent)
#: Frames from these files are machinery, never a call site, nor its context.
_MACHINERY = (
    _SQLALCHEMY_DIR,
    str(Path(asyncio.__file__).parent),
    contextlib.__file__,
    str(Path(__file__).parent) + os.sep,  # this package: the guard, the plugin
)
#: Installed libraries and the standard library: a load inside one of them is
#: reported at the application's line that called it, the library as context
#: (as pytest filters its tracebacks).
_LIBRARIES = tuple(
    sorted(
        {
            str(Path(path)) + os.sep
            for path in (
                *(sysconfig.get_paths()[key] for key in _PATH_KEYS),
                *site.getsitepackages(),
                site.getusersitepackages(),
            )
            if path
        },
        key=len,
        reverse=True,  # the longest first: site-packages inside the stdlib's folder
    )
)
_SEEN_KEY = "_implicit_io_explicit_loads"  # session.info: explicit lazy loads seen
_REPEATS_KEY = "_implicit_io_query_sites"  # session.info: queries sent per line


def _classify(
    state: ORMExecuteState, threshold: int, root: Path
) -> tuple[str, str, str] | None:
    """(rule, kind, "Entity.attribute") for a load the guard reports, else None."""
    if _asked_for_by_the_session():
        return None
    origin = _origin()
    handler = None
    if origin == "sqlalchemy":
        # SQLAlchemy's own awaited call (a flush, a refresh, an eager loader)...
        handler = _code_inside_sqlalchemy(root)
        if handler is not None:  # ...that ran the application's code: implicit
            origin = "implicit"
    if state.lazy_loaded_from is not None:
        relationship = state.loader_strategy_path[-1]
        attribute = f"{relationship.parent.class_.__name__}.{relationship.key}"
        if origin == "implicit":
            found = _why_unloaded(state, state.lazy_loaded_from, relationship.key)
            return _in_handler(found, handler)
        if origin == "sqlalchemy":  # refresh(), eager loaders: asked for explicitly
            return None
        # awaitable_attrs and run_sync are explicit one at a time; the same
        # relationship loaded for several parents is an N+1 hidden in a loop.
        seen = state.session.info.setdefault(_SEEN_KEY, {})
        parents = seen.setdefault((origin, attribute), set())
        parent = state.lazy_loaded_from
        parents.add(parent.key or id(parent))  # the row, however often re-fetched
        if len(parents) != threshold:
            return None
        if origin == "awaitable_attrs":
            return "IO106", "N+1 through awaitable_attrs", attribute
        return "IO101", f"N+1 lazy loads inside {origin}", attribute

    if origin != "implicit" or internals.is_user_refresh(state):
        return None  # refresh(), awaitable_attrs, run_sync: explicit column loads
    instance = internals.refresh_state(state)
    keys = internals.keys_to_load(state)
    # Not a read of this object's attribute: name a column the load fetches (the
    # keys include the relationships an expired object reloads lazily).
    columns = [key for key in keys if key not in instance.mapper.relationships]
    key = _accessed_key(instance) or min(columns or keys)
    found = _why_unloaded(state, instance, key)
    return _in_handler(found, handler)


#: The session's own calls whose loads the code asked for by calling them.
_SESSION_CALLS = (internals.is_flush, internals.is_cascade, internals.is_get)


def _asked_for_by_the_session() -> bool:
    """Whether the session asked for the load, in a call the code made (a flush,
    a cascade, a ``get()``).

    Deleting an object can load its unloaded collection (to update or delete the
    children), and a flush can reload an expired key it must write elsewhere. On an
    ``AsyncSession`` these run inside the awaited ``flush()``/``commit()``, whose
    greenlet says so (``_origin``); a sync session, or code run by ``run_sync()``,
    has no such greenlet: a flush on the stack, with no application code between
    it and the load, says the same. So does a sync ``delete()`` or ``merge()``,
    whose cascade loads what it must visit, and a sync ``get()`` (or
    ``Query.get()``) reloading the expired object it found in the identity map (an
    awaited one runs in its greenlet). An event handler or validator the flush ran
    is application code: what it reads is still reported.
    """
    for frame in _frames():
        if any(asked(frame) for asked in _SESSION_CALLS):
            return True
        if not _is_library(frame):
            return False
    return False


def _in_handler(
    found: tuple[str, str, str], handler: str | None
) -> tuple[str, str, str]:
    """The cause, and where it ran: inside a session event handler, say which."""
    if handler is None:
        return found
    rule, kind, attribute = found
    return rule, f"{kind}, inside {handler}", attribute


def _why_unloaded(
    state: ORMExecuteState, instance: InstanceState, key: str
) -> tuple[str, str, str]:
    """The rule for an implicit read of ``key`` of ``instance``: why is it unloaded?"""
    attribute = f"{instance.class_.__name__}.{key}"
    cause = internals.expiry_cause(instance, key)
    named = key in instance.mapper.relationships and internals.expired_by_name(
        instance, key
    )
    expired = named or key in instance.expired_attributes
    if not expired or cause == "unfetched":
        # Never loaded: no expiry, or the query that loaded the row left it out.
        if key in instance.mapper.relationships:
            if internals.never_loaded(instance):
                kind = "collection of a new object, never given a value"
                return "IO102", kind, attribute
            return "IO102", "implicit lazy load of a relationship", attribute
        subclass = _subclass_table_of(instance, key)
        if cause == "unfetched" and subclass is not None:
            kind = (
                f"column of {subclass}'s table, not fetched by the polymorphic "
                "load (name the subclass in with_polymorphic() or "
                "selectin_polymorphic())"
            )
            return "IO102", kind, attribute
        return "IO107", "deferred column loaded implicitly", attribute
    if cause == "commit":
        return "IO201", "attribute expired by commit", attribute
    if cause == "rollback":
        return "IO202", "attribute expired by rollback()", attribute
    if cause == "bulk":
        kind = "attribute expired by an ORM UPDATE/DELETE (synchronize_session)"
        return "IO202", kind, attribute
    if cause == "refresh":
        kind = "attribute expired by refresh() and not loaded by it"
        return "IO202", kind, attribute
    if cause == "flush" and _server_generated(instance.mapper.attrs[key]):
        return "IO203", "server-generated value not fetched", attribute
    if cause == "expire":
        return "IO204", "attribute expired by expire()", attribute
    # Expired before the guard was installed, or by a call it does not know: it
    # says so rather than guess.
    return "IO202", "attribute expired, by a call the guard does not know", attribute


def _subclass_table_of(instance: InstanceState, key: str) -> str | None:
    """The subclass whose own table holds column ``key``, if the base's does not."""
    attribute = instance.mapper.attrs[key]
    base_tables = set(instance.mapper.base_mapper.tables)
    for column in getattr(attribute, "columns", ()):
        if column.table not in base_tables:
            for mapper in instance.mapper.iterate_to_root():
                if column.table in mapper.tables:
                    return mapper.class_.__name__
    return None


def _repeated_query(
    state: ORMExecuteState, threshold: int, root: Path
) -> tuple[str, str, str] | None:
    """IO101 when one line of code sends a query for the same entity repeatedly."""
    mapper = state.bind_mapper
    entity = mapper.class_.__name__ if mapper is not None else "query"
    seen = state.session.info.setdefault(_REPEATS_KEY, Counter())
    key = _call_site(root)[0], entity
    seen[key] += 1
    if seen[key] != threshold:
        return None
    return "IO101", "the same query sent repeatedly from one line (N+1)", entity


def _server_generated(attribute: Any) -> bool:
    return any(
        column.server_default is not None or column.server_onupdate is not None
        for column in getattr(attribute, "columns", ())
    )


def _can_run(state: ORMExecuteState) -> bool:
    """Whether this load can reach the database at all, where it was asked for.

    An async driver answers only inside a greenlet SQLAlchemy spawned for an
    awaited call; plain attribute access outside one cannot wait for it.
    """
    if internals.in_greenlet():
        return True
    bind = state.session.get_bind(**state.bind_arguments)
    return not bind.dialect.is_async


def _origin() -> str:
    """Who asked for the load: plain code, awaitable_attrs, run_sync, a library's
    own ``greenlet_spawn`` or SQLAlchemy.

    Under asyncio, SQLAlchemy runs sync ORM code in a greenlet it spawns for the
    awaited call; the greenlet's first frame tells which call that was. Outside
    such a greenlet, a load was triggered by plain attribute access. Code that is
    neither SQLAlchemy's nor ``getattr`` is ``run_sync()``'s function, unless the
    greenlet was spawned by other code than ``run_sync()`` (fastapi-pagination
    builds its pages in ``greenlet_spawn``).
    """
    if not internals.in_greenlet():
        return "implicit"
    frame = sys._getframe()
    while frame.f_back is not None:
        frame = frame.f_back
    code = frame.f_code
    if code.co_name == "__get__" and code.co_filename.endswith("attributes.py"):
        return "awaitable_attrs"  # greenlet_spawn(getattr, instance, name)
    if code.co_filename.startswith(_SQLALCHEMY_DIR):
        return "sqlalchemy"
    return "run_sync" if internals.spawned_by_run_sync() else "greenlet_spawn"


def _code_inside_sqlalchemy(root: Path) -> str | None:
    """In SQLAlchemy's greenlet, the application's code that asked for the load.

    ``None`` when every frame is SQLAlchemy's (an eager loader, a refresh):
    the load was asked for. Otherwise code SQLAlchemy called (an event handler,
    a validator) read an attribute: "a before_flush handler" when an event
    dispatcher called it, else that code's function.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if not _is_library(frame):
            event = internals.event_dispatched_to(frame)
            if event is not None:
                return f"a {event} handler ({_describe(frame, root)})"
            return _describe(frame, root)
        frame = frame.f_back
    return None


def _frames() -> Iterator[FrameType]:
    """This thread's frames, innermost first, continuing into the awaiting code."""
    frame: FrameType | None = sys._getframe(1)
    # A greenlet's stack ends at its first frame; the awaiting code is suspended
    # in the parent greenlet.
    spawned = getcurrent() if internals.in_greenlet() else None
    while frame is not None:
        yield frame
        frame = frame.f_back
        if frame is None and spawned is not None:
            frame, spawned = spawned.parent.gr_frame, None


def _accessed_key(instance: InstanceState) -> str | None:
    """The attribute of ``instance`` whose read triggered the load (an instrumented
    ``__get__`` on that object).

    The read of another object's attribute can load this one: ``post.author``
    finds the author in the identity map, expired, and loads its columns. The
    read was of ``Post.author``, which is no attribute of the author's.
    """
    target = instance.obj()
    for frame in _frames():
        code = frame.f_code
        if code.co_name == "__get__" and code.co_filename.endswith("attributes.py"):
            if target is None or frame.f_locals.get("instance") is not target:
                continue
            key = getattr(frame.f_locals.get("self"), "key", None)
            if isinstance(key, str) and key in instance.mapper.attrs:
                return key
    return None


def _call_site(root: Path) -> tuple[str, str]:
    """(the application's line that caused the load, the library frame it was in).

    The innermost frame outside SQLAlchemy, installed libraries and the standard
    library; the library frame is the innermost one, when the load happened
    inside a library the application called (a serializer, a template engine).
    """
    library = ""
    for frame in _frames():
        if _is_machinery(frame):
            continue
        if _is_library(frame):
            library = library or _describe(frame, root)
            continue
        return _describe(frame, root), library
    return library or "unknown", ""


def _is_machinery(frame: FrameType) -> bool:
    """SQLAlchemy (with the wrappers it compiles), asyncio, contextlib, this package.

    SQLAlchemy compiles some wrappers from source text (``util.decorator``, the
    deprecation wrappers): their frames have no file (``<string>`` on 2.0,
    ``<sqlalchemy generated warned() wrapper for ...>`` on 2.1), and the globals
    of the SQLAlchemy module they wrap a function of. One sits between
    ``commit()`` and its flush: it is not the application's code.
    """
    filename = frame.f_code.co_filename
    if filename.startswith(_MACHINERY):
        return True
    module = frame.f_globals.get("__name__")
    return (
        filename.startswith("<")
        and isinstance(module, str)
        and (module == "sqlalchemy" or module.startswith("sqlalchemy."))
    )


def _is_library(frame: FrameType) -> bool:
    """SQLAlchemy, this package, an installed library or the standard library."""
    filename = frame.f_code.co_filename
    return _is_machinery(frame) or filename.startswith((*_LIBRARIES, "<frozen "))


def _describe(frame: FrameType, root: Path) -> str:
    """``path:line in function``: a library's path from the folder it is installed
    in (``pydantic/main.py:716``), the application's from ``root`` (the guard's)."""
    path = Path(frame.f_code.co_filename)
    for folder in (*map(Path, _LIBRARIES), root):
        with contextlib.suppress(ValueError):
            path = path.relative_to(folder)
            break
    return f"{path}:{frame.f_lineno} in {frame.f_code.co_name}"


# endregion classify
