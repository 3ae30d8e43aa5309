"""Every use the toolkit makes of SQLAlchemy's private API, in one place.

SQLAlchemy does not promise to keep these stable. Each function names what it
reads; ``tests/test_sqlalchemy_internals.py`` checks each one against the
installed SQLAlchemy and fails with a message naming the function when an
upgrade changes it. Public API is used everywhere else.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import InstanceState, Mapper, ORMExecuteState, Session
from sqlalchemy.util.concurrency import in_greenlet as _in_greenlet

#: Why an object's attributes were last expired: state -> {key or None: cause}.
#: ``None`` is the whole object. Causes: "commit", "rollback", "flush", "bulk"
#: (an ORM-enabled UPDATE or DELETE synchronizing the session), "expire".
_causes: weakref.WeakKeyDictionary[InstanceState, dict[str | None, str]] = (
    weakref.WeakKeyDictionary()
)
_CAUSE_KEY = "_implicit_io_expiring"  # session.info: what is expiring objects now
_installed = False


def in_greenlet() -> bool:
    """Whether this code runs in a greenlet SQLAlchemy spawned for an awaited call."""
    return _in_greenlet()


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


def _on_expire(instance: InstanceState, keys: Any) -> None:
    session = instance.session
    cause = session.info.get(_CAUSE_KEY) if session else None
    cause = cause or _cause_without_session_event()
    if keys is None:
        _causes[instance] = {None: cause}
    else:
        _causes.setdefault(instance, {}).update(dict.fromkeys(keys, cause))


def _cause_without_session_event() -> str:
    frame = sys._getframe(2)  # the caller of the event's dispatcher
    for _ in range(_SYNCHRONIZE_DEPTH):
        if frame is None:
            break
        if frame.f_code.co_name.startswith("_do_post_synchronize"):
            return "bulk"
        frame = frame.f_back
    return "expire"


#: How far above the expire event SQLAlchemy's synchronizing function may be.
_SYNCHRONIZE_DEPTH = 8
