"""Every use the toolkit makes of SQLAlchemy's private API, in one place.

SQLAlchemy does not promise to keep these stable. Each function names what it
reads; ``tests/test_sqlalchemy_internals.py`` checks each one against the
installed SQLAlchemy and fails with a message naming the function when an
upgrade changes it. Public API is used everywhere else.
"""

from __future__ import annotations

import os
import sys
import weakref
from types import FrameType
from typing import Any

import sqlalchemy
from greenlet import getcurrent
from sqlalchemy import event
from sqlalchemy.orm import InstanceState, Mapper, ORMExecuteState, Session
from sqlalchemy.util.concurrency import in_greenlet as _in_greenlet

#: Why an object's attributes were last expired: state -> {key or None: cause}.
#: ``None`` is the whole object. Causes: "commit", "rollback", "flush", "bulk"
#: (an ORM-enabled UPDATE or DELETE synchronizing the session), "expire",
#: "refresh" (``Session.refresh()`` expires what it reloads), "unfetched" (the
#: query that loaded the row left the column out: a polymorphic load's subclass
#: columns), "unknown" (an expiry no known caller made).
_causes: weakref.WeakKeyDictionary[InstanceState, dict[str | None, str]] = (
    weakref.WeakKeyDictionary()
)
_CAUSE_KEY = "_implicit_io_expiring"  # session.info: what is expiring objects now
_installed = False
_SQLALCHEMY = os.path.dirname(sqlalchemy.__file__)


def in_greenlet() -> bool:
    """Whether this code runs in a greenlet SQLAlchemy spawned for an awaited call."""
    return _in_greenlet()


def spawned_by_run_sync() -> bool:
    """In such a greenlet: whether ``run_sync()`` (a session's or a connection's)
    awaited the ``greenlet_spawn`` that started it, rather than other code (a
    library's own ``greenlet_spawn``). The parent greenlet waits inside
    ``greenlet_spawn``; the frame that called it is ``run_sync``'s."""
    parent = getcurrent().parent
    spawn = parent.gr_frame if parent is not None else None  # in greenlet_spawn
    caller = spawn.f_back if spawn is not None else None
    if caller is None:
        return True  # nothing to tell by: keep the usual name
    code = caller.f_code
    return code.co_name == "run_sync" and code.co_filename.startswith(_SQLALCHEMY)


def refresh_state(state: ORMExecuteState) -> InstanceState:
    """The object a column load is filling in (``load_options._refresh_state``)."""
    return state.load_options._refresh_state


def is_user_refresh(state: ORMExecuteState) -> bool:
    """A load ``Session.refresh()`` asked for (``load_options._is_user_refresh``)."""
    return bool(state.load_options._is_user_refresh)


def keys_to_load(state: ORMExecuteState) -> tuple[str, ...]:
    """The attributes a column load fetches (``_compile_options._only_load_props``)."""
    return tuple(state.statement._compile_options._only_load_props or ())


def never_loaded(instance: InstanceState) -> bool:
    """An object the session never loaded from a row: new, then flushed (``runid``)."""
    return instance.runid is None


def expiry_cause(instance: InstanceState, key: str) -> str | None:
    """What expired ``key`` of ``instance`` last, if it was seen happening."""
    causes = _causes.get(instance, {})
    return causes.get(key) or causes.get(None)


def expired_by_name(instance: InstanceState, key: str) -> bool:
    """Whether an expire event named ``key``: ``expire(obj, ["books"])``.

    SQLAlchemy puts a relationship named that way in no ``expired_attributes``
    (only the expiry of the whole object does): the event is all that says so.
    """
    return key in _causes.get(instance, {})


def track_expiry() -> None:
    """Record, from now on, why each object's attributes are expired.

    SQLAlchemy's ``expire`` instance event does not say why: the session events
    around it do. ``after_commit`` and ``after_rollback`` fire just before the
    session expires its objects, ``before_flush`` before a flush expires the
    values the database computed. Without such an event, SQLAlchemy's function
    that synchronizes the session after an ORM UPDATE/DELETE
    (``_do_post_synchronize_*``) on the stack means "bulk"; anything else is
    ``expire()``/``expire_all()``.
    """
    global _installed
    if _installed:
        return
    _installed = True

    def mark(cause: str):
        def handler(session: Session, *args: Any) -> None:
            session.info[_CAUSE_KEY] = cause

        return handler

    def unmark(session: Session, *args: Any) -> None:
        session.info.pop(_CAUSE_KEY, None)

    event.listen(Session, "after_commit", mark("commit"))
    event.listen(Session, "after_rollback", mark("rollback"))
    event.listen(Session, "before_flush", mark("flush"))
    event.listen(Session, "after_flush_postexec", unmark)
    event.listen(Session, "after_transaction_end", unmark)
    event.listen(Mapper, "expire", _on_expire, raw=True)  # raw: the InstanceState
    # A row that lacks some of its columns (the subclass table a polymorphic query
    # did not join) leaves them in expired_attributes without an expire event.
    event.listen(Mapper, "load", _on_load, raw=True)
    event.listen(Session, "persistent_to_detached", _on_detach)
    event.listen(Session, "deleted_to_detached", _on_detach)


def _on_load(instance: InstanceState, context: Any) -> None:
    if instance.expired_attributes:
        _causes[instance] = dict.fromkeys(instance.expired_attributes, "unfetched")


def _on_expire(instance: InstanceState, keys: Any) -> None:
    session = instance.session
    cause = session.info.get(_CAUSE_KEY) if session else None
    cause = cause or _cause_without_session_event()
    if keys is None:
        _causes[instance] = {None: cause}
    else:
        _causes.setdefault(instance, {}).update(dict.fromkeys(keys, cause))


def _cause_without_session_event() -> str:
    """Which of SQLAlchemy's functions expired the object: a few frames above.

    ``Session.expire()``/``expire_all()`` and ``Session.refresh()`` go through
    ``Session._expire_state``; an ORM UPDATE/DELETE through
    ``_do_post_synchronize_*``. Anything else is "unknown", never a guess.
    """
    frame = sys._getframe(2)  # the caller of the event's dispatcher
    for _ in range(_CALLER_DEPTH):
        if frame is None:
            break
        name = frame.f_code.co_name
        if name.startswith("_do_post_synchronize"):
            return "bulk"
        if frame.f_code.co_filename.endswith(_SESSION_MODULE):
            if name == "refresh":
                return "refresh"
            if name in ("expire", "expire_all"):
                return "expire"
        frame = frame.f_back
    return "unknown"


def is_flush(frame: FrameType) -> bool:
    """Whether ``frame`` runs ``Session._flush``: the unit of work runs inside it."""
    code = frame.f_code
    return code.co_name == "_flush" and code.co_filename.endswith(_SESSION_MODULE)


#: ``Session`` methods whose cascades load what they must visit: ``delete()``
#: loads a ``delete`` cascade's unloaded collection, ``merge()`` the persistent
#: copy's, both reload an expired object.
_CASCADING = {"_delete_impl", "_merge"}


def is_cascade(frame: FrameType) -> bool:
    """Whether ``frame`` runs ``Session.delete()``'s or ``merge()``'s cascade."""
    code = frame.f_code
    return code.co_name in _CASCADING and code.co_filename.endswith(_SESSION_MODULE)


def is_get(frame: FrameType) -> bool:
    """Whether ``frame`` runs ``Session._get_impl``: ``Session.get()``,
    ``get_one()`` or ``Query.get()``, which reload an object they find expired in
    the identity map (a lazy loader looks the map up without it)."""
    code = frame.f_code
    return code.co_name == "_get_impl" and code.co_filename.endswith(_SESSION_MODULE)


#: How far above the expire event SQLAlchemy's expiring function may be.
_CALLER_DEPTH = 8
_SESSION_MODULE = os.path.join("orm", "session.py")
_EVENT_MODULE = os.path.join("event", "attr.py")
#: Why each object became detached: state -> "expunge()", "close()", ...
_detached: weakref.WeakKeyDictionary[InstanceState, str] = weakref.WeakKeyDictionary()
#: Session methods that detach objects, by the name of the function on the stack.
_DETACHING = {
    "expunge": "expunge()",
    "expunge_all": "expunge_all()",
    "close": "close()",
    "_close_impl": "close()",
    "reset": "reset()",
    "invalidate": "invalidate()",
    "_remove_newly_deleted": "the commit of its delete()",
}


def _on_detach(session: Session, instance: object) -> None:
    frame = sys._getframe(1)
    reason = "the session let it go"
    for _ in range(_CALLER_DEPTH * 2):
        if frame is None:
            break
        if frame.f_code.co_filename.endswith(_SESSION_MODULE):
            found = _DETACHING.get(frame.f_code.co_name)
            if found is not None:
                reason = found  # keep the outermost: close() calls expunge_all()
        frame = frame.f_back
    state = _state_of(instance)
    if state is not None:
        _detached[state] = reason


def _state_of(instance: object) -> InstanceState | None:
    from sqlalchemy import inspect

    return inspect(instance, raiseerr=False)


def detached_reason(instance: InstanceState) -> str | None:
    """What detached ``instance`` from its session, if it was seen happening."""
    return _detached.get(instance)


def detached_load(error: BaseException) -> tuple[InstanceState, str] | None:
    """(object, attribute) a ``DetachedInstanceError`` was raised for, if known.

    SQLAlchemy raises it from the loader, which holds the object's state in a
    local ``state`` and the attribute in ``self.key`` (a relationship's lazy
    loader) or ``attribute_names`` (an expired or deferred column).
    """
    traceback = error.__traceback__
    found = None
    while traceback is not None:
        local = traceback.tb_frame.f_locals
        state = local.get("state")
        if isinstance(state, InstanceState):
            key = getattr(local.get("self"), "key", None)
            names = local.get("attribute_names")
            if isinstance(key, str):
                found = state, key
            elif names:
                found = state, sorted(names)[0]
        traceback = traceback.tb_next
    return found


def event_dispatched_to(frame: FrameType) -> str | None:
    """The session or mapper event (``before_flush``) whose dispatcher called the
    function running in ``frame``, looking through SQLAlchemy's wrappers."""
    caller = frame.f_back
    for _ in range(3):
        if caller is None or not caller.f_code.co_filename.startswith(_SQLALCHEMY):
            return None
        if caller.f_code.co_filename.endswith(_EVENT_MODULE):
            name = getattr(caller.f_locals.get("self"), "name", None)
            return name if isinstance(name, str) else None
        caller = caller.f_back
    return None
