"""Which transaction is open in this context, and what a nested one takes from its parent.

Nesting follows Prefect 3: a transaction opened inside another inherits its commit mode,
isolation level, store and lock manager unless given its own. The current transaction is
a ``ContextVar``, so threads and tasks each see their own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, Protocol, TypeVar

from ..errors import ConfigurationError
from .states import CommitMode, IsolationLevel

__all__ = ["Nested", "coerce_enum", "current", "enter", "exit_to", "inherit", "register_default_store",
           "resolve_store"]


class Nested(Protocol):
    """What nesting reads and fills of a transaction (``transaction.Transaction``)."""

    key: str | None
    store: Any
    commit_mode: CommitMode | None
    isolation_level: IsolationLevel | None
    lock_manager: Any


# Holds a transaction.Transaction; typed here by what this module needs of it.
_current: ContextVar[Any] = ContextVar("resultkit_transaction", default=None)
_E = TypeVar("_E", bound=enum.Enum)


def current() -> Any:
    """The innermost open transaction in this context, or None (``get_transaction()``)."""
    return _current.get()


def enter(txn: Nested) -> Token[Any]:
    """Make ``txn`` the current transaction; the token undoes it (:func:`exit_to`)."""
    return _current.set(txn)


def exit_to(token: Token[Any], parent: Nested | None) -> None:
    """Undo :func:`enter`: the enclosing transaction is current again."""
    try:
        _current.reset(token)
    except ValueError:  # exited in another context (e.g. a different task): restore by hand
        _current.set(parent)


def _plain_default_store() -> Any:
    from ..results import ResultStore

    return ResultStore()


_default_store: Callable[[], Any] = _plain_default_store


def register_default_store(factory: Callable[[], Any]) -> None:
    """Set what ``transaction(key=...)`` with no store (and no parent's) writes to.

    The front door registers the store a task would use (the enclosing flow's or
    ``settings`` block's storage and serializer); without it, the default storage.
    """
    global _default_store
    _default_store = factory


def inherit(txn: Nested, parent: Nested | None) -> None:
    """Fill what ``txn`` was not given from ``parent`` (or the defaults, at the top)."""
    if txn.commit_mode is None:
        txn.commit_mode = parent.commit_mode if parent is not None else CommitMode.LAZY
    if txn.isolation_level is None:
        txn.isolation_level = parent.isolation_level if parent is not None else IsolationLevel.READ_COMMITTED
    if txn.store is None:
        if parent is not None and parent.store is not None:
            txn.store = parent.store
        elif txn.key is not None:
            txn.store = _default_store()
    if txn.lock_manager is None and parent is not None:
        txn.lock_manager = parent.lock_manager


def coerce_enum(enum_type: type[_E], value: object, name: str) -> _E | None:
    """``value`` as a member of ``enum_type`` (a member or its name in any case), or None."""
    if value is None or isinstance(value, enum_type):
        return value
    if isinstance(value, str) and value.upper() in enum_type.__members__:
        return enum_type[value.upper()]
    choices = ", ".join(enum_type.__members__)
    raise ConfigurationError(f"{name}={value!r} is not one of {choices}; pass e.g. {enum_type.__name__}.{choices.split(',')[0]}")


def resolve_store(store: Any) -> Any:
    """A store as given (anything with ``lookup`` and ``write``), or a ``ResultStore`` over a storage, path or URL."""
    if store is None or (hasattr(store, "lookup") and hasattr(store, "write")):
        return store
    from ..results import ResultStore  # a Storage, path or URL: wrap it

    return ResultStore(store)
