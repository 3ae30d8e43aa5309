"""Review check: find implicit-I/O hotspots in source files, without running them.

    implicit-io-check src/ tests/test_orders.py
    implicit-io-check --diff origin/main --format github src/

prints one finding per line, ``path:line:col: CODE message``, as ruff does. Exit
status: 0 nothing found, 1 findings (a file it could not check is a finding of
its own, ``IOE001``), 2 a usage error (a path that does not exist, a bad git ref),
4 the check itself failed on some file (``IOE002``, one per such file; every other
file is still checked) and found nothing elsewhere, 5 the same with findings.
``implicit-io-check --explain IO101`` prints a rule's summary and page.
Silence one line with ``# noqa: IO104`` (several codes: ``# noqa: IO104, IO201``).

Files are parsed with the interpreter's ``ast``; a file in newer syntax than the
interpreter's is first lowered with libcst, whose parser reads Python 3.0 to 3.14.
Every name is resolved through the module's imports and scopes before it is
judged.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import itertools
import json
import re
import subprocess
import sys
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import libcst as cst

from implicit_io import __version__
from implicit_io.rule_links import KNOWN_RULES, page_url, rule_url
from implicit_io.rules import RULES

SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", "_build"}
NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*))?", re.I)
#: Every rule is about one of these names: a file without them cannot have a
#: finding, and is not parsed (so a broken one is not reported either).
MENTIONS = re.compile(
    r"sqlalchemy|sqlmodel|relation|backref|DynamicMapped|Session|sessionmaker"
    r"|expire|awaitable_attrs"
)
#: The code of a file the check could not read or parse (not a rule: a gap).
NOT_CHECKED = "IOE001"
NOT_CHECKED_PAGE = "guides/review-check.html#files-it-cannot-check"
#: The code of a file on which the check itself failed: not a finding, a bug.
INTERNAL_ERROR = "IOE002"
INTERNAL_ERROR_PAGE = "guides/review-check.html#exit-status"


# region findings
@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str
    docs_url: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}"
        return f"{where}: {self.code} {self.message} See {self.docs_url}"


class UsageError(Exception):
    """The check was asked for something it cannot do (exit status 2)."""


# endregion findings


# region names
#: SQLAlchemy's names, as an import binds them (``sqlalchemy.orm.relationship``
#: also covers ``import sqlalchemy as sa; sa.orm.relationship``). A name counts
#: only when the module's imports bind it to one of these.
ASYNC_SESSIONS = {
    "sqlalchemy.ext.asyncio.AsyncSession",
    "sqlalchemy.ext.asyncio.session.AsyncSession",
    "sqlmodel.ext.asyncio.session.AsyncSession",  # a subclass of the one above
}
ASYNC_FACTORIES = {
    "sqlalchemy.ext.asyncio.async_sessionmaker",
    "sqlalchemy.ext.asyncio.session.async_sessionmaker",
}
SESSIONMAKERS = {"sqlalchemy.orm.sessionmaker", "sqlalchemy.orm.session.sessionmaker"}
SESSIONS = ASYNC_SESSIONS | {
    "sqlalchemy.orm.Session",
    "sqlalchemy.orm.session.Session",
    "sqlalchemy.orm.scoped_session",
    "sqlalchemy.ext.asyncio.async_scoped_session",
    "sqlmodel.Session",
    "sqlmodel.orm.session.Session",
}
RELATIONSHIPS = {"sqlalchemy.orm.relationship"}
#: SQLModel's ``Relationship()``: its strategy is ``sa_relationship_kwargs={"lazy":
#: ...}`` or a whole ``sa_relationship=relationship(...)``.
SQLMODEL_RELATIONSHIPS = {"sqlmodel.Relationship", "sqlmodel.main.Relationship"}
BACKREFS = {"sqlalchemy.orm.backref"}
DYNAMIC_MAPPED = {"sqlalchemy.orm.DynamicMapped"}
#: ``WriteOnlyMapped[...]`` declares ``lazy="write_only"``: a strategy, stated.
WRITE_ONLY_MAPPED = {"sqlalchemy.orm.WriteOnlyMapped"}
#: Every name above: what ``from <module> import *`` binds of them (each is public).
KNOWN_NAMES = (
    SESSIONS
    | ASYNC_FACTORIES
    | SESSIONMAKERS
    | RELATIONSHIPS
    | SQLMODEL_RELATIONSHIPS
    | BACKREFS
    | DYNAMIC_MAPPED
    | WRITE_ONLY_MAPPED
)
#: ``Session.expire(instance, attribute_names=None)``: what its arguments may be.
EXPIRE_KEYWORDS = {"instance", "attribute_names"}
#: The public methods and attributes of ``Session``, ``AsyncSession`` and their
#: scoped proxies (SQLAlchemy 2.1, 2.0 and 1.4; SQLModel's ``exec``): a receiver of
#: ``expire()`` on which its function calls any other public method is no session.
SESSION_ATTRIBUTES = frozenset(
    [
        "aclose",
        "add",
        "add_all",
        "autobegin",
        "autocommit",
        "autoflush",
        "begin",
        "begin_nested",
        "bind",
        "bind_mapper",
        "bind_table",
        "binds",
        "bulk_insert_mappings",
        "bulk_save_objects",
        "bulk_update_mappings",
        "close",
        "close_all",
        "commit",
        "configure",
        "connection",
        "connection_callable",
        "delete",
        "delete_all",
        "deleted",
        "dirty",
        "dispatch",
        "enable_relationship_loading",
        "exec",
        "execute",
        "execution_options",
        "expire",
        "expire_all",
        "expire_on_commit",
        "expunge",
        "expunge_all",
        "flush",
        "get",
        "get_async_bind",
        "get_bind",
        "get_nested_transaction",
        "get_one",
        "get_transaction",
        "identity_key",
        "identity_map",
        "in_nested_transaction",
        "in_transaction",
        "info",
        "invalidate",
        "is_active",
        "is_modified",
        "merge",
        "merge_all",
        "new",
        "no_autoflush",
        "object_session",
        "prepare",
        "query",
        "query_property",
        "refresh",
        "registry",
        "remove",
        "reset",
        "rollback",
        "run_sync",
        "scalar",
        "scalars",
        "scopefunc",
        "session_factory",
        "stream",
        "stream_scalars",
        "sync_session",
        "sync_session_class",
        "transaction",
        "twophase",
    ]
)


# endregion names


@dataclass
class _Scope:
    """The names one module, class or function binds, and how."""

    kind: str  # "module", "class" or "function"
    imports: dict[str, set[str]] = field(default_factory=dict)  # name -> qualified
    locals: set[str] = field(default_factory=set)  # bound any other way
    #: ``sa = sqlalchemy``: a name assigned a (dotted) name, resolved through it.
    aliases: dict[str, list[ast.expr]] = field(default_factory=dict)
    #: What each local binding declares (None: nothing), for receivers of expire().
    annotations: dict[str, list[ast.expr | None]] = field(default_factory=dict)
    #: ``name.method(...)``: the public methods called on each name in this scope.
    methods: dict[str, set[str]] = field(default_factory=dict)
    #: ``class Name(bases):``: the bases of each class statement binding a name.
    classes: dict[str, list[list[ast.expr]]] = field(default_factory=dict)


class _Scopes(ast.NodeVisitor):
    """First pass: the bindings of every scope, keyed by the node that opens it.

    A name bound anywhere in a function is local to all of it (as Python
    decides), so the bindings are collected before any use is judged.
    """

    def __init__(self, module: ast.Module) -> None:
        self.scopes: dict[ast.AST, _Scope] = {module: _Scope("module")}
        self.stack = [self.scopes[module]]

    def _bind(self, target: ast.AST | None, annotation: ast.expr | None = None):
        if isinstance(target, ast.Name):
            self._bind_name(target.id, annotation)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind(element)
        elif isinstance(target, ast.Starred):
            self._bind(target.value)

    def _bind_name(self, name: str, annotation: ast.expr | None = None) -> None:
        scope = self.stack[-1]
        scope.locals.add(name)
        scope.annotations.setdefault(name, []).append(annotation)

    def _scope(self, node: ast.AST, kind: str) -> None:
        # What a def or class evaluates where it stands (decorators, defaults,
        # annotations, bases) belongs to the enclosing scope, as in Python.
        outside, inside = _split(node)
        for child in outside:
            self.visit(child)
        self.scopes[node] = _Scope(kind)
        self.stack.append(self.scopes[node])
        for child in inside:
            self.visit(child)
        self.stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._bind_name(node.name)
        self._scope(node, "function")

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, "function")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.stack[-1].classes.setdefault(node.name, []).append(node.bases)
        self._bind_name(node.name)
        self._scope(node, "class")

    def visit_arg(self, node: ast.arg) -> None:
        self._bind_name(node.arg, node.annotation)  # visited outside by _scope

    # match statements bind names too: ``case Point(x=x)``, ``case [*rest]``.
    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._bind_name(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind_name(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self._bind_name(node.rest)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]  # import a.b binds a
            qualified = alias.name if alias.asname else bound
            self.stack[-1].imports.setdefault(bound, set()).add(qualified)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            return  # a relative import is the application's own code
        for alias in node.names:
            if alias.name == "*":  # binds, of the names above, those of that module
                for qualified in KNOWN_NAMES:
                    module, name = qualified.rsplit(".", 1)
                    if module == node.module:
                        self.stack[-1].imports.setdefault(name, set()).add(qualified)
            else:
                bound = alias.asname or alias.name
                qualified = f"{node.module}.{alias.name}"
                self.stack[-1].imports.setdefault(bound, set()).add(qualified)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name) and _is_dotted(node.value):
                self.stack[-1].aliases.setdefault(target.id, []).append(node.value)
            else:
                self._bind(target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._bind(node.target, node.annotation)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._bind(node.target)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind(node.target)
        self.generic_visit(node)

    def _bind_target(self, node: ast.For | ast.AsyncFor) -> None:
        self._bind(node.target)
        self.generic_visit(node)

    # A comprehension's own variables live in its own scope: not bound here.
    visit_For = visit_AsyncFor = _bind_target

    def visit_withitem(self, node: ast.withitem) -> None:
        self._bind(node.optional_vars)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind_name(node.name)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and not func.attr.startswith("_")
        ):
            methods = self.stack[-1].methods.setdefault(func.value.id, set())
            methods.add(func.attr)
        self.generic_visit(node)


# region visitor
class _Checker(ast.NodeVisitor):
    """Walks one module and collects (node, code, message) for each hotspot."""

    def __init__(self, scopes: dict[ast.AST, _Scope], module: ast.Module) -> None:
        self.scopes = scopes
        self.stack = [scopes[module]]
        self.found: list[tuple[ast.AST, str, str]] = []
        self.awaited: set[int] = set()  # id() of every awaited expression
        self.strategy_annotated: set[int] = set()  # id() of x: WriteOnlyMapped = ...
        self.in_async = False  # inside an ``async def`` (not a nested ``def``)
        self.loop_depth = 0  # loops and comprehensions of the current function

    # Names: what an import binds them to, looked up as Python does.
    def imported(self, node: ast.expr) -> set[str]:
        """The qualified names an import binds ``node`` to (none if bound locally)."""
        return self._imported(node, len(self.stack), frozenset())

    def _imported(self, node: ast.expr, depth: int, seen: frozenset) -> set[str]:
        # ``node`` as the innermost ``depth`` scopes of the stack see it; ``seen``:
        # the aliases being resolved (``a = b; b = a`` resolves to nothing).
        if isinstance(node, ast.Attribute):
            resolved = self._imported(node.value, depth, seen)
            return {f"{base}.{node.attr}" for base in resolved}
        if not isinstance(node, ast.Name):
            return set()
        found = self._find(node.id, depth)
        if found is None:
            return set()
        index, scope = found
        if node.id in scope.locals or (index, node.id) in seen:
            return set()  # a parameter, a variable, a class: not SQLAlchemy's
        names = set(scope.imports.get(node.id, ()))
        for value in scope.aliases.get(node.id, ()):
            # The value is evaluated in the alias's own scope; every assignment
            # must bind the name to SQLAlchemy's object for it to count.
            aliased = self._imported(value, index + 1, seen | {(index, node.id)})
            if not aliased:
                return set()
            names |= aliased
        return names

    def _scope_of(self, name: str) -> _Scope | None:
        found = self._find(name, len(self.stack))
        return None if found is None else found[1]

    def _find(self, name: str, depth: int) -> tuple[int, _Scope] | None:
        """The index in the stack and the scope that binds ``name``, looked up
        from the ``depth`` innermost scopes."""
        for index in reversed(range(depth)):
            scope = self.stack[index]
            # A function does not see the names of a class body around it.
            if scope.kind == "class" and index != depth - 1:
                continue
            if name in scope.imports or name in scope.locals or name in scope.aliases:
                return index, scope
        return None

    # Where we are: which scope, async or sync function, inside a loop or not.
    def _function(self, node: ast.AST, is_async: bool) -> None:
        outside, inside = _split(node)
        for child in outside:  # decorators, defaults: run where the def stands
            self.visit(child)
        saved = self.in_async, self.loop_depth
        self.in_async, self.loop_depth = is_async, 0
        self.stack.append(self.scopes[node])
        for child in inside:
            self.visit(child)
        self.stack.pop()
        self.in_async, self.loop_depth = saved

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, is_async=False)  # e.g. a callback for run_sync()

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, is_async=True)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, is_async=False)

    def visit_arg(self, node: ast.arg) -> None:
        pass  # its annotation was visited where the def stands (_split)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outside, inside = _split(node)
        for child in outside:
            self.visit(child)
        self.stack.append(self.scopes[node])
        for child in inside:
            self.visit(child)
        self.stack.pop()

    def _in_loop(self, nodes: Iterable[ast.AST]) -> None:
        self.loop_depth += 1
        for node in nodes:
            self.visit(node)
        self.loop_depth -= 1

    def _for(self, node: ast.For | ast.AsyncFor) -> None:
        # The iterable is evaluated once, before the loop, and `else:` once after:
        # `for b in await a.awaitable_attrs.bs:` is one load, not one per item.
        self.visit(node.iter)
        self._in_loop([node.target, *node.body])
        for child in node.orelse:
            self.visit(child)

    def visit_While(self, node: ast.While) -> None:
        self._in_loop([node.test, *node.body])  # the test runs on every turn
        for child in node.orelse:
            self.visit(child)

    def _comprehension(self, node: ast.AST) -> None:
        # Only the first iterable is evaluated once, where the comprehension
        # stands; the rest (later iterables, conditions, elements) per item.
        first, *others = node.generators
        self.visit(first.iter)
        inside = [first.target, *first.ifs]
        for generator in others:
            inside += [generator.iter, generator.target, *generator.ifs]
        if isinstance(node, ast.DictComp):
            inside += [node.key, node.value]
        else:
            inside.append(node.elt)
        self._in_loop(inside)

    visit_For = visit_AsyncFor = _for
    visit_ListComp = visit_SetComp = visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension

    def visit_Await(self, node: ast.Await) -> None:
        self.awaited.add(id(node.value))
        self.generic_visit(node)

    # The rules.
    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        annotation = node.annotation
        kind = (
            self.imported(annotation.value)
            if isinstance(annotation, ast.Subscript)
            else set()
        )
        if kind & DYNAMIC_MAPPED:
            message = "DynamicMapped is a dynamic relationship."
            self.found.append((node, "IO105", message))
        if kind & (DYNAMIC_MAPPED | WRITE_ONLY_MAPPED) and node.value is not None:
            # The annotation is the strategy (SQLAlchemy reads lazy= from it).
            self.strategy_annotated.add(id(node.value))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "awaitable_attrs" and self.loop_depth:
            message = "awaitable_attrs inside a loop: one query per item."
            self.found.append((node, "IO106", message))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        names = self.imported(node.func)
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        splat = None in keywords  # **options: given the benefit of the doubt
        if names & (RELATIONSHIPS | BACKREFS):
            lazy = keywords.get("lazy")
            if isinstance(lazy, ast.Constant) and lazy.value == "dynamic":
                self.found.append((node, "IO105", 'lazy="dynamic" loads on access.'))
            elif (
                names & RELATIONSHIPS
                and lazy is None
                and not splat
                and id(node) not in self.strategy_annotated
            ):
                message = "relationship() declares no loading strategy (lazy=)."
                self.found.append((node, "IO104", message))
        elif names & SQLMODEL_RELATIONSHIPS and not splat:
            if "sa_relationship" not in keywords and _no_lazy_key(
                keywords.get("sa_relationship_kwargs")
            ):
                message = (
                    "Relationship() declares no loading strategy "
                    '(sa_relationship_kwargs={"lazy": ...}).'
                )
                self.found.append((node, "IO104", message))
        elif self._makes_async_sessions(names, keywords, node) and not splat:
            expire = keywords.get("expire_on_commit")
            if not (isinstance(expire, ast.Constant) and expire.value is False):
                message = f"{_dotted(node.func)}() without expire_on_commit=False."
                self.found.append((node, "IO201", message))
        elif self._is_session_expire(node):
            method = node.func.attr  # type: ignore[attr-defined]
            message = f"{method}() in async code: the next read is implicit I/O."
            self.found.append((node, "IO204", message))
        self.generic_visit(node)

    def _makes_async_sessions(
        self, names: set[str], keywords: dict, call: ast.Call
    ) -> bool:
        if names & (ASYNC_SESSIONS | ASYNC_FACTORIES):
            return True
        # sessionmaker(class_=AsyncSession): the 1.4-era spelling of the factory,
        # where class_ could also come second: sessionmaker(engine, AsyncSession)
        # (the Sanic and aiohttp-sqlalchemy guides; 2.0 made it keyword-only).
        class_ = keywords.get("class_")
        if class_ is None and len(call.args) > 1:
            class_ = call.args[1]
        return bool(
            names & SESSIONMAKERS
            and class_
            and self._async_session_class(class_, len(self.stack), frozenset())
        )

    def _async_session_class(self, node: ast.expr, depth: int, seen: frozenset) -> bool:
        """``node`` is AsyncSession, or a class of this module derived from it
        (``class ReadOnly(AsyncSession)``), as the ``depth`` innermost scopes see it.
        sessionmaker() passes its own expire_on_commit to any such class."""
        if self._imported(node, depth, seen) & ASYNC_SESSIONS:
            return True
        if not isinstance(node, ast.Name):
            return False
        name = node.id
        found = self._find(name, depth)
        if found is None or (found[0], name) in seen:
            return False
        index, scope = found
        classes = scope.classes.get(name, [])
        if not classes or len(classes) != len(scope.annotations.get(name, [])):
            return False  # not a class, or also bound some other way
        seen = seen | {(index, name)}
        return all(
            any(self._async_session_class(base, index + 1, seen) for base in bases)
            for bases in classes
        )

    def _is_session_expire(self, call: ast.Call) -> bool:
        """A call that can be ``Session.expire()``/``expire_all()`` in async code."""
        func = call.func
        if not (
            self.in_async
            and isinstance(func, ast.Attribute)
            and func.attr in ("expire", "expire_all")
        ):
            return False
        if id(call) in self.awaited:
            return False  # neither is a coroutine: this is another library's expire
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        if None in keywords or any(isinstance(a, ast.Starred) for a in call.args):
            return self._can_be_session(func.value)  # *args: cannot count them
        if func.attr == "expire_all":
            if call.args or keywords:
                return False  # Session.expire_all() takes no argument
        elif (
            keywords.keys() - EXPIRE_KEYWORDS
            or not 1 <= len(call.args) + len(keywords) <= 2
            or _not_attribute_names(
                (call.args[1:] or [keywords.get("attribute_names")])[0]
            )
        ):
            return False  # e.g. a cache's expire(key, seconds)
        return self._can_be_session(func.value)

    def _can_be_session(self, receiver: ast.expr) -> bool:
        """False only when annotations say the receiver is something else."""
        if not isinstance(receiver, ast.Name):
            return True
        scope = self._scope_of(receiver.id)
        if scope is None or receiver.id not in scope.locals:
            return True
        untyped = False
        for annotation in scope.annotations.get(receiver.id, [None]):
            if annotation is None:
                untyped = True  # a binding that declares no type
                continue
            for named in _annotated_types(annotation):
                types = self.imported(named)
                if not types or types & SESSIONS or "Session" in _dotted(named):
                    return True  # a session class, a subclass, or unresolved
        # Untyped: a session, unless the function also calls on it a method no
        # session has (``pipe.sadd(...)``, ``pipe.incr(...)``: a Redis pipeline).
        return (
            untyped and not scope.methods.get(receiver.id, set()) - SESSION_ATTRIBUTES
        )


def _split(node: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """A def's, lambda's or class's children: (evaluated outside, inside its scope).

    Decorators, default values, annotations, base classes and keywords are
    evaluated in the enclosing scope when the statement runs; the parameters and
    the body belong to the new scope.
    """
    if isinstance(node, ast.ClassDef):
        outside = [*node.decorator_list, *node.bases, *node.keywords]
        return outside, list(node.body)
    args: ast.arguments = node.args  # type: ignore[attr-defined]
    parameters = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    parameters += [arg for arg in (args.vararg, args.kwarg) if arg is not None]
    outside: list[ast.AST] = [*args.defaults]
    outside += [default for default in args.kw_defaults if default is not None]
    outside += [arg.annotation for arg in parameters if arg.annotation is not None]
    if isinstance(node, ast.Lambda):
        return outside, [*parameters, node.body]
    outside = [*node.decorator_list, *outside]  # type: ignore[attr-defined]
    if node.returns is not None:  # type: ignore[attr-defined]
        outside.append(node.returns)  # type: ignore[attr-defined]
    return outside, [*parameters, *node.body]  # type: ignore[attr-defined]


def _no_lazy_key(kwargs: ast.expr | None) -> bool:
    """No ``sa_relationship_kwargs``, or a literal dict without a ``"lazy"`` key."""
    if kwargs is None:
        return True
    if not isinstance(kwargs, ast.Dict) or None in kwargs.keys:
        return False  # a variable or a ** splat: given the benefit of the doubt
    return not any(
        isinstance(key, ast.Constant) and key.value == "lazy" for key in kwargs.keys
    )


def _not_attribute_names(node: ast.expr | None) -> bool:
    """A number, string or timedelta cannot be ``attribute_names`` (a list)."""
    if isinstance(node, ast.Constant):
        return node.value is not None
    return isinstance(node, (ast.JoinedStr, ast.BinOp)) or (
        isinstance(node, ast.Call) and _dotted(node.func).endswith("timedelta")
    )


def _annotated_types(annotation: ast.expr) -> Iterator[ast.expr]:
    """``X``, ``X | None``, ``Optional[X]``: the classes named, without None."""
    if isinstance(annotation, ast.BinOp):
        yield from _annotated_types(annotation.left)
        yield from _annotated_types(annotation.right)
    elif isinstance(annotation, ast.Subscript) and _dotted(annotation.value) in (
        "Optional",
        "typing.Optional",
    ):
        yield from _annotated_types(annotation.slice)
    elif not (isinstance(annotation, ast.Constant) and annotation.value is None):
        yield annotation


def _is_dotted(node: ast.expr) -> bool:
    """``name`` or ``name.attr.attr``: what an alias assignment is assigned."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "..."


# endregion visitor


# region newer_syntax
class _Lowering(cst.CSTTransformer):
    """Rewrite syntax newer than this interpreter into older syntax, line for line.

    Only for a module the interpreter's ``ast`` cannot parse: libcst reads Python
    3.0 to 3.14. What the rules look at is kept; what is lowered is not judged.
    """

    def leave_TypeAlias(self, original, updated) -> cst.Assign:  # type X = ...
        return cst.Assign([cst.AssignTarget(updated.name)], updated.value)

    def leave_FunctionDef(self, original, updated) -> cst.FunctionDef:
        return updated.with_changes(type_parameters=None)  # def f[T](...)

    def leave_ClassDef(self, original, updated) -> cst.ClassDef:
        return updated.with_changes(type_parameters=None)  # class C[T]: ...

    def leave_ExceptHandler(self, original, updated) -> cst.ExceptHandler:
        kind = updated.type
        if isinstance(kind, cst.Tuple) and not kind.lpar:  # except A, B: (3.14)
            kind = kind.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return updated.with_changes(type=kind)

    def leave_FormattedString(self, original, updated) -> cst.SimpleString:
        # Nested quotes and more (3.12): keep only the lines the string spans,
        # and on one line its width, so what follows keeps its column.
        code = cst.Module([]).code_for_node(original)
        lines = code.count("\n")
        if lines:
            return cst.SimpleString(f'"""{chr(10) * lines}"""')
        return cst.SimpleString(f'"{" " * (len(code) - 2)}"')


#: Prefixes of a template string (3.14), any case: ``t`` becomes ``f``.
_TEMPLATE_PREFIXES = {"t", "rt", "tr"}


def _template_strings_as_f_strings(source: str) -> str:
    """``t"..."`` (3.14) rewritten ``f"..."``, the same width, for libcst's parser.

    libcst 1.9 fails with a ``CSTLogicError`` on a template string concatenated
    after another string (``"a " t"{b}"``); as f-strings they parse, and are then
    lowered like any. Before 3.14 a name touching a string is a syntax error, so
    nothing else changes. Source the tokenizer cannot read is left as it is.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source
    lines = source.splitlines(keepends=True)
    for name, string in itertools.pairwise(tokens):
        prefix = name.string.lower()
        if (
            name.type == tokenize.NAME
            and string.type == tokenize.STRING
            and name.end == string.start
            and prefix in _TEMPLATE_PREFIXES
        ):
            row, col = name.start
            lowered = name.string.replace("t", "f").replace("T", "F")
            text = lines[row - 1]
            lines[row - 1] = text[:col] + lowered + text[col + len(lowered) :]
    return "".join(lines)


#: CPython's tokenizer refuses more than 200 nested brackets, in every version.
TOO_DEEP = "too many nested parentheses"


def _parse(source: str, path: str) -> ast.Module:
    """The module's ``ast``; newer syntax than the interpreter's is lowered first."""
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as error:
        if error.msg == TOO_DEEP:
            # No Python reads it, and libcst's parser overflows its stack on a few
            # thousand nested brackets, which ends the process, not just this file.
            raise
        try:
            module = cst.parse_module(_template_strings_as_f_strings(source))
            lowered = module.visit(_Lowering()).code
        except (cst.ParserSyntaxError, cst.CSTLogicError, cst.CSTValidationError):
            # Not Python of any version, or libcst itself failed on it: either
            # way the file cannot be read, and the interpreter's error says where.
            raise error from None
        return ast.parse(lowered, filename=path)


# endregion newer_syntax


# region check
def check_source(
    source: str, path: str = "<string>", *, docs_base_url: str | None = None
) -> list[Finding]:
    """Findings for one module's source, minus those its ``# noqa`` comments silence.

    A module that does not parse is one finding, ``IOE001``, not an exception.
    One that names nothing the rules are about is not parsed at all. Whatever
    the check itself gets wrong on one module is ``IOE002`` for that module: it
    never stops a run.
    """
    try:
        return _check_source(source, path, docs_base_url)
    except Exception as error:  # a bug of the check: this file only, never the run
        return [_internal_error(path, error, docs_base_url)]


def _check_source(source: str, path: str, docs_base_url: str | None) -> list[Finding]:
    if not MENTIONS.search(source):
        return []
    try:
        tree = _parse(source, path)
    except SyntaxError as error:
        reason = f"not checked: cannot parse it: {error.msg}."
        url = page_url(NOT_CHECKED_PAGE, docs_base_url)
        where = error.lineno or 1, error.offset or 1
        return [Finding(path, *where, NOT_CHECKED, reason, url)]
    except ValueError as error:  # e.g. a null byte: no parser reads the file
        reason = f"not checked: cannot parse it: {error}."
        url = page_url(NOT_CHECKED_PAGE, docs_base_url)
        return [Finding(path, 1, 1, NOT_CHECKED, reason, url)]
    except (RecursionError, MemoryError) as error:
        # The parser's stack overflowed, as Python's own compiler's does on the file.
        kind = type(error).__name__
        reason = f"not checked: cannot parse it: too deep for Python's parser ({kind})."
        url = page_url(NOT_CHECKED_PAGE, docs_base_url)
        return [Finding(path, 1, 1, NOT_CHECKED, reason, url)]
    with _recursion_limit(VISIT_RECURSION_LIMIT):
        scopes = _Scopes(tree)
        scopes.visit(tree)
        checker = _Checker(scopes.scopes, tree)
        checker.visit(tree)
    silenced = _noqa_lines(source) if checker.found else {}
    findings = []
    for node, code, message in checker.found:
        codes = silenced.get(node.lineno, ())
        if codes is None or code in codes:
            continue  # a bare noqa comment silences every code on its line
        url = rule_url(code, docs_base_url)
        findings.append(
            Finding(path, node.lineno, node.col_offset + 1, code, message, url)
        )
    return sorted(findings, key=lambda f: (f.line, f.col, f.code))


#: Frames the visitors may take. They recurse a few frames per level of the tree,
#: and ``ast.parse`` builds trees a few thousand deep (a long chain of ``+``, which
#: Python compiles), deeper than the default limit of 1,000 frames allows.
VISIT_RECURSION_LIMIT = 20_000


@contextlib.contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    """The recursion limit at least ``limit`` in the block, as it was after."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _internal_error(path: str, error: Exception, docs_base_url: str | None) -> Finding:
    """IOE002 at the construct the check was visiting when ``error`` was raised."""
    node = None
    traceback = error.__traceback__
    while traceback is not None:  # the innermost visit() names the construct
        candidate = traceback.tb_frame.f_locals.get("node")
        if isinstance(candidate, ast.AST) and hasattr(candidate, "lineno"):
            node = candidate
        traceback = traceback.tb_next
    line, col = (node.lineno, node.col_offset + 1) if node is not None else (1, 1)
    construct = type(node).__name__ if node is not None else "module"
    reason = (
        f"internal error of the check in this file ({type(error).__name__}: "
        f"{error}) at a {construct}; this file's findings are missing, every "
        "other file's are complete. Please report it with this line."
    )
    url = page_url(INTERNAL_ERROR_PAGE, docs_base_url)
    return Finding(path, line, col, INTERNAL_ERROR, reason, url)


def _noqa_lines(source: str) -> dict[int, frozenset[str] | None]:
    """Line -> the codes its ``# noqa: ...`` comment names (None: every code)."""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        comments = [
            (token.start[0], token.string)
            for token in tokens
            if token.type == tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError):  # syntax newer than the tokenizer's
        comments = list(enumerate(source.splitlines(), start=1))
    lines: dict[int, frozenset[str] | None] = {}
    for number, text in comments:
        if match := NOQA.search(text):
            codes = match["codes"]
            lines[number] = (
                None if codes is None else frozenset(re.findall(r"\w+", codes.upper()))
            )
    return lines


def check_file(path: Path, *, docs_base_url: str | None = None) -> list[Finding]:
    try:  # UTF-8, or the encoding a coding comment declares (PEP 263), as Python
        raw = path.read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        source = raw.decode(encoding)
    except (OSError, SyntaxError, UnicodeDecodeError) as error:
        reason = f"not checked: cannot read it: {error}."
        url = page_url(NOT_CHECKED_PAGE, docs_base_url)
        return [Finding(str(path), 1, 1, NOT_CHECKED, reason, url)]
    return check_source(source, str(path), docs_base_url=docs_base_url)


def python_files(paths: Iterable[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for found in sorted(path.rglob("*.py")):
                if found.is_dir():  # a folder named like a module: rglob goes in
                    continue
                if not SKIPPED_DIRS & set(found.relative_to(path).parts):
                    yield found
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"{name}: no such file or directory")


# endregion check


def changed_lines(ref: str) -> dict[Path, set[int] | None]:
    """Lines added or changed since git ref ``ref``, by resolved path.

    ``None`` means the whole file: untracked files are new in their entirety.
    """
    top = git_top()
    if ref.startswith("-"):  # git would read it as an option (--output=...)
        raise UsageError(f"--diff {ref}: a git ref does not start with '-'")
    changed: dict[Path, set[int] | None] = {}
    current: set[int] | None = None
    header = False  # between a file's "diff --git" line and its first hunk
    # The user's diff settings must not change the names or the hunks it parses.
    diff = _git(
        "-C", str(top), "-c", "core.quotePath=false", "diff", "--unified=0",
        "--inter-hunk-context=0", "--no-color", "--no-ext-diff", "--no-textconv",
        "--no-relative", "--src-prefix=a/", "--dst-prefix=b/", ref, "--",
        failure=lambda stderr: _bad_ref(ref, stderr),
    )  # fmt: skip
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            header, current = True, None
        elif header and line.startswith("+++ "):
            name = _unquote(line[4:])
            if name != "/dev/null":
                current = changed.setdefault((top / name[2:]).resolve(), set())
        elif line.startswith("@@") and current is not None:
            header = False
            match = re.search(r"\+(\d+)(?:,(\d+))?", line)
            start, count = int(match[1]), int(match[2] or 1)
            current.update(range(start, start + count))
    untracked = _git("-C", str(top), "ls-files", "-z", "--others", "--exclude-standard")
    for name in untracked.split("\0"):
        if name:
            changed[(top / name).resolve()] = None
    return changed


def git_top() -> Path:
    """The top of the git work tree the check runs in, for ``--diff``."""
    return Path(
        _git(
            "rev-parse",
            "--show-toplevel",
            failure=lambda stderr: (
                f"--diff needs a git work tree, and {Path.cwd()} is in none ({stderr})"
                ": run it from inside the repository's checkout"
            ),
        ).strip()
    )


def _in_work_tree(paths: Iterable[str], top: Path) -> None:
    """``--diff`` knows only the changes of the work tree it runs in."""
    for name in paths:
        if not Path(name).resolve().is_relative_to(top.resolve()):
            raise UsageError(
                f"{name}: outside the git work tree {top}, whose changes --diff "
                "compares: run the check from that path's own repository"
            )


def _bad_ref(ref: str, stderr: str) -> str:
    message = f"--diff {ref}: git cannot compare with it ({stderr})"
    if _git("rev-parse", "--is-shallow-repository").strip() == "true":
        return (
            f"{message}; this clone is shallow and may not have {ref}: fetch its "
            "history (git fetch --unshallow, or fetch-depth: 0 in actions/checkout)"
        )
    return f"{message}; give a branch, tag or commit git knows (git fetch it first)"


def _unquote(name: str) -> str:
    """A file name as git prints it in a diff header: C-quoted, or tab-terminated."""
    if not name.startswith('"'):
        return name.removesuffix("\t")  # git ends a name with a space in it with a tab
    escapes = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
    raw = bytearray()
    body = name[1 : name.rindex('"')]
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            raw += char.encode("utf-8", "surrogateescape")
            index += 1
        elif body[index + 1] in "01234567":
            raw.append(int(body[index + 1 : index + 4], 8))
            index += 4
        else:
            escape = body[index + 1]
            raw.append(escapes.get(escape, ord(escape)))
            index += 2
    return raw.decode("utf-8", "surrogateescape")


def _git(*args: str, failure: Callable[[str], str] | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, check=True)
    except FileNotFoundError:
        raise UsageError("--diff needs git on the PATH") from None
    except subprocess.CalledProcessError as error:
        stderr = error.stderr.decode("utf-8", "replace").strip()
        if failure is not None:
            raise UsageError(failure(stderr)) from None
        raise UsageError(f"git {' '.join(args[:2])}: {stderr}") from None
    # Bytes, not the locale's text: a diff holds any file's bytes (Latin-1 code),
    # and a file name is bytes too (os.fsdecode's surrogateescape, as Path reads).
    return done.stdout.decode("utf-8", "surrogateescape")


def in_diff(finding: Finding, changed: dict[Path, set[int] | None]) -> bool:
    path = Path(finding.path).resolve()
    if path not in changed:
        return False
    lines = changed[path]
    return lines is None or finding.code == NOT_CHECKED or finding.line in lines


def as_text(findings: list[Finding]) -> str:
    return "".join(f"{finding}\n" for finding in findings)


def as_github(findings: list[Finding]) -> str:
    """GitHub Actions workflow commands: one annotation per finding."""

    def escape(text: str, *, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    lines = []
    for f in findings:
        where = f"file={escape(f.path, prop=True)},line={f.line},col={f.col}"
        text = escape(f"{f.message} See {f.docs_url}")
        lines.append(f"::error {where},title={escape(f.code, prop=True)}::{text}\n")
    return "".join(lines)


def as_sarif(findings: list[Finding]) -> str:
    """SARIF 2.1.0: one run, the rules it reported, one result per finding.

    A file the check itself failed on (``IOE002``) is not a result: it is a tool
    execution notification of the run's invocation, which then did not succeed.
    """
    errors = [f for f in findings if f.code == INTERNAL_ERROR]
    findings = [f for f in findings if f.code != INTERNAL_ERROR]
    codes = sorted({f.code: f.docs_url for f in findings}.items())
    rules = [
        {
            "id": code,
            "name": KNOWN_RULES.get(code, "file-not-checked"),
            "shortDescription": {"text": _summary(code)},
            "helpUri": url.split("#")[0] if code == NOT_CHECKED else url,
        }
        for code, url in codes
    ]
    index = {code: number for number, (code, _) in enumerate(codes)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": "error" if f.code == NOT_CHECKED else "warning",
            "message": {"text": f"{f.message} See {f.docs_url}"},
            "locations": [_location(f)],
        }
        for f in findings
    ]
    notifications = [
        {
            "descriptor": {"id": INTERNAL_ERROR},
            "level": "error",
            "message": {"text": f"{f.message} See {f.docs_url}"},
            "locations": [_location(f)],
        }
        for f in errors
    ]
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "implicit-io-check",
                        "version": __version__,
                        "informationUri": page_url("guides/review-check.html"),
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not errors,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _summary(code: str) -> str:
    if code == NOT_CHECKED:
        return "file not checked"
    return RULES[code].summary


def _location(f: Finding) -> dict:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": Path(f.path).as_posix()},
            "region": {"startLine": f.line, "startColumn": f.col},
        }
    }


FORMATS = {"text": as_text, "github": as_github, "sarif": as_sarif}


# region exit_status
class ExitStatus(IntEnum):
    """What ``implicit-io-check`` exits with: bit 0 findings, bit 2 internal error."""

    CLEAN = 0  # every file checked, nothing found
    FINDINGS = 1  # findings (IOE001 included: a file it could not read or parse)
    USAGE_ERROR = 2  # nothing checked: a bad option, a missing path, a bad git ref
    INTERNAL_ERROR = 4  # the check failed on some file (IOE002); no other finding
    INTERNAL_ERROR_AND_FINDINGS = 5  # the check failed on some file, others found


def exit_status(findings: list[Finding]) -> ExitStatus:
    status = 0
    if any(f.code != INTERNAL_ERROR for f in findings):
        status |= ExitStatus.FINDINGS
    if any(f.code == INTERNAL_ERROR for f in findings):
        status |= ExitStatus.INTERNAL_ERROR
    return ExitStatus(status)


# endregion exit_status


def explain(code: str, docs_base_url: str | None = None) -> str:
    """What ``--explain CODE`` prints: the rule's registry entry and its page."""
    rule = RULES.get(code.upper())
    if rule is None:
        raise UsageError(
            f"--explain: unknown rule code {code!r}; known codes: {', '.join(RULES)}"
        )
    lines = [
        f"{rule.code} {rule.name}",
        f"level: {rule.level}, adoption phase {rule.phase}",
        "",
        rule.summary,
        "",
    ]
    if rule.retired:
        lines.append(f"Retired: follow {rule.replaced_by} instead.")
    lines.append(f"See {rule.url(docs_base_url)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="implicit-io-check",
        description="Report implicit-I/O hotspots (rules IO104-IO106, IO201, IO204). "
        "Exit status: 0 clean, 1 findings, 2 usage error, 4 internal error in some "
        "file (IOE002) and no finding, 5 internal error and findings.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders")
    parser.add_argument("--docs-url", help="base URL of the rule pages")
    parser.add_argument(
        "--diff", metavar="REF", help="report only lines changed since git ref REF"
    )
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument(
        "--explain", metavar="CODE", help="print a rule's summary and page, and exit"
    )
    parser.add_argument("--version", action="version", version=__version__)
    arguments = parser.parse_args(argv)  # exits 2 on a usage error
    try:
        if arguments.explain:
            sys.stdout.write(explain(arguments.explain, arguments.docs_url))
            return ExitStatus.CLEAN
        if not arguments.paths:
            parser.error("give at least one PATH (or --explain CODE)")
        changed = changed_lines(arguments.diff) if arguments.diff else None
        if changed is not None:
            _in_work_tree(arguments.paths, git_top())
        findings = [
            finding
            for path in python_files(arguments.paths)
            for finding in check_file(path, docs_base_url=arguments.docs_url)
            if changed is None or in_diff(finding, changed)
        ]
    except UsageError as error:
        print(f"implicit-io-check: {error}", file=sys.stderr)
        return ExitStatus.USAGE_ERROR
    sys.stdout.write(FORMATS[arguments.format](findings))
    status = exit_status(findings)
    failed = sum(f.code == INTERNAL_ERROR for f in findings)
    found = len(findings) - failed
    if found:
        skipped = sum(f.code == NOT_CHECKED for f in findings)
        note = f" ({skipped} file(s) not checked, {NOT_CHECKED})" if skipped else ""
        print(f"Found {found} finding(s){note}.", file=sys.stderr)
    if failed:
        print(
            f"The check failed on {failed} file(s) ({INTERNAL_ERROR}, an internal "
            "error): their findings are missing, every other file's are complete.",
            file=sys.stderr,
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
