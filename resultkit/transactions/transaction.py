"""Transactions: BEGIN (lock, look up), STAGE, then COMMIT all or nothing, or ROLLBACK.

One implementation serves ``with`` and ``async with``: the async face only moves
the (possibly long) wait for a lock off the event loop.

>>> with transaction(key="report/2026-11", store=store) as txn:   # doctest: +SKIP
...     if not txn.is_committed():
...         txn.stage(build_report(), on_rollback=[delete_upload])
"""

from __future__ import annotations

import copy
import enum
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from .._env import env_float
from ..errors import ConfigurationError, LockTimeout, StorageError, TransactionError
from ..locking import LockManager, default_lock_manager
from ..locking.lease import LEASE_SECONDS, drop_lease, keep_lease
from ..locking.memory import default_memory_lock_manager
from .hooks import Hook, check_hooks, run_hook
from .states import CommitMode, IsolationLevel, TransactionState

__all__ = ["Hook", "Transaction", "get_transaction", "transaction"]

logger = logging.getLogger("resultkit.transactions")

_current: ContextVar[Transaction | None] = ContextVar("resultkit_transaction", default=None)
_MISSING: Any = object()
_HOST = socket.gethostname()
_E = TypeVar("_E", bound=enum.Enum)


def get_transaction() -> Transaction | None:
    """The innermost open transaction in this context, or None."""
    return _current.get()


def _coerce(enum_type: type[_E], value: object, name: str) -> _E | None:
    if value is None or isinstance(value, enum_type):
        return value
    if isinstance(value, str) and value.upper() in enum_type.__members__:
        return enum_type[value.upper()]
    choices = ", ".join(enum_type.__members__)
    raise ConfigurationError(f"{name}={value!r} is not one of {choices}; pass e.g. {enum_type.__name__}.{choices.split(',')[0]}")


def _resolve_store(store: Any) -> Any:
    if store is None or (hasattr(store, "lookup") and hasattr(store, "write")):
        return store
    from ..results import ResultStore  # a Storage, path or URL: wrap it

    return ResultStore(store)


@dataclass
class _Staged:
    value: Any
    expiration: datetime | timedelta | None
    extra: dict[str, Any] | None


@dataclass
class _HeldLock:
    manager: LockManager
    holder: str
    lease_token: int | None


class Transaction:
    """A unit of work whose staged records are written together or not at all.

    Use :func:`transaction` to make one; see the module docstring for an example.
    """

    def __init__(
        self,
        key: str | None = None,
        store: Any = None,
        commit_mode: CommitMode | str | None = None,
        isolation_level: IsolationLevel | str | None = None,
        overwrite: bool = False,
        lock_timeout: float | None = None,
        lock_manager: LockManager | None = None,
    ) -> None:
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"transaction key must be a non-empty str or None, got {key!r}")
        if lock_timeout is not None and (not isinstance(lock_timeout, (int, float)) or not lock_timeout >= 0):
            raise ConfigurationError(f"lock_timeout must be a number of seconds >= 0, got {lock_timeout!r}")
        if lock_manager is not None and not isinstance(lock_manager, LockManager):
            raise ConfigurationError(
                f"lock_manager must implement acquire_lock/release_lock/is_locked/is_lock_holder/"
                f"wait_for_lock, got {type(lock_manager).__name__}; use e.g. RedisLockManager(url)"
            )
        self.key = key
        self.store = _resolve_store(store)
        self.commit_mode = _coerce(CommitMode, commit_mode, "commit_mode")
        self.isolation_level = _coerce(IsolationLevel, isolation_level, "isolation_level")
        self.overwrite = bool(overwrite)
        self.lock_timeout = lock_timeout
        self.lock_manager = lock_manager
        self.state = TransactionState.PENDING
        #: The stored record BEGIN found at ``key`` (the transaction is then committed).
        self.record: Any = None
        self._staged: _Staged | None = None
        self._on_commit: list[Hook] = []
        self._on_rollback: list[Hook] = []
        self._children: list[Transaction] = []
        self._parent: Transaction | None = None
        self._values: dict[str, Any] = {}
        self._token: Token[Transaction | None] | None = None
        self._lock: _HeldLock | None = None
        # Set by a caller that looked the key up just before BEGIN and found nothing
        # (the task hit path): BEGIN then skips its own first, unlocked lookup.
        self._known_miss = False

    def __repr__(self) -> str:
        return f"<Transaction key={self.key!r} state={self.state.value}>"

    # -- BEGIN --------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.state is not TransactionState.PENDING or self._token is not None:
            raise TransactionError(f"transaction on {self.key!r} was already begun; make a new one")
        self._parent = _current.get()
        if self.commit_mode is None:
            self.commit_mode = CommitMode.LAZY if self._parent is not None else CommitMode.EAGER
        if self.isolation_level is None:
            self.isolation_level = IsolationLevel.READ_COMMITTED

    def _needs_lock(self) -> bool:
        return self.isolation_level is IsolationLevel.SERIALIZABLE and self.key is not None

    def _choose_lock_manager(self) -> LockManager:
        if self.lock_manager is not None:
            return self.lock_manager
        if self.store is None:
            return default_memory_lock_manager()  # nothing is written, so nothing is shared
        manager = getattr(self.store, "lock_manager", None) or default_lock_manager(self.store)
        if manager is None:
            storage = getattr(self.store, "storage", self.store)
            raise ConfigurationError(
                f"SERIALIZABLE transaction on {self.key!r} needs a lock manager shared by every "
                f"writer of {getattr(storage, 'describe', lambda: storage)()}; configure one, e.g. "
                "cache_policy.configure(lock_manager=RedisLockManager('redis://host:6379/0')), "
                "ResultStore(storage, lock_manager=...) or transaction(..., lock_manager=...)"
            )
        return manager

    def _lookup(self) -> Any:
        if self.key is None or self.store is None or self.overwrite:
            return None
        return self.store.lookup(self.key)

    def _begin_io(self) -> None:
        """Look the key up and, under SERIALIZABLE on a miss, take its lock and look again.

        A stored record is final, so a hit needs no lock; a caller that waits for the
        lock checks the store each time the lock is released, so a whole herd of
        waiters reads the winner's record at once instead of taking the lock in turn.
        """
        self.record = None if self._known_miss else self._lookup()
        if self.record is not None or not self._needs_lock():
            return
        assert self.key is not None
        manager = self._choose_lock_manager()
        ancestor = self._parent
        while ancestor is not None:
            if ancestor.key == self.key and ancestor._lock and ancestor._lock.manager is manager:
                return  # an enclosing transaction already holds this key for us
            ancestor = ancestor._parent
        timeout = self.lock_timeout if self.lock_timeout is not None else env_float("lock_timeout", 300)
        deadline = time.monotonic() + timeout
        holder = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:16]}"
        renewable = callable(getattr(manager, "extend_lock", None))
        hold = LEASE_SECONDS if renewable else None
        while not manager.acquire_lock(self.key, holder, acquire_timeout=0, hold_timeout=hold):
            left = deadline - time.monotonic()
            if left <= 0 or not manager.wait_for_lock(self.key, timeout=left):
                self._raise_lock_timeout(manager, timeout)
            self.record = self._lookup()
            if self.record is not None:
                return  # the holder committed while we waited
        token = keep_lease(manager, self.key, holder, LEASE_SECONDS) if renewable else None
        self._lock = _HeldLock(manager, holder, token)
        try:
            self.record = self._lookup()  # under the lock: someone may have committed meanwhile
        except BaseException:
            self._release_lock()
            raise
        if self.record is not None:
            self._release_lock()

    def _raise_lock_timeout(self, manager: LockManager, timeout: float) -> NoReturn:
        lock_holder = getattr(manager, "lock_holder", None)
        current = lock_holder(self.key) if callable(lock_holder) else None
        raise LockTimeout(
            f"could not lock {self.key!r} within {timeout:g} s: it is held by "
            f"{current or 'another holder'!s} ({manager!r}); wait longer with lock_timeout= "
            "or RESULTKIT_LOCK_TIMEOUT, or stop the holder"
        )

    def _open(self) -> None:
        self._token = _current.set(self)
        self.state = TransactionState.COMMITTED if self.record is not None else TransactionState.ACTIVE

    def _release_lock(self) -> None:
        held, self._lock = self._lock, None
        if held is None:
            return
        drop_lease(held.lease_token)
        assert self.key is not None
        try:
            held.manager.release_lock(self.key, held.holder)
        except Exception:
            logger.warning("could not release the lock on %r (its lease may have run out)",
                           self.key, exc_info=True)

    def __enter__(self) -> Transaction:
        self._prepare()
        self._begin_io()
        self._open()
        return self

    async def __aenter__(self) -> Transaction:
        self._prepare()
        if self._needs_lock():
            import asyncio  # only async code gets here, and its loop has imported asyncio

            await asyncio.to_thread(self._begin_io)  # waiting must not block the loop
        else:
            self._begin_io()
        self._open()
        return self

    # -- STAGE --------------------------------------------------------------------------

    def stage(
        self,
        value: Any,
        on_commit: Iterable[Hook] | Hook = (),
        on_rollback: Iterable[Hook] | Hook = (),
        expiration: datetime | timedelta | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Stage ``value`` for this transaction's key, with hooks to run at COMMIT or ROLLBACK."""
        if self.state not in (TransactionState.ACTIVE, TransactionState.STAGED):
            raise TransactionError(
                f"cannot stage a value in a {self.state.value} transaction on {self.key!r}; "
                "stage inside the `with transaction()` block, before it commits or rolls back"
            )
        commit_hooks = check_hooks(on_commit, "on_commit")
        rollback_hooks = check_hooks(on_rollback, "on_rollback")
        self._staged = _Staged(value, expiration, extra)
        self._on_commit.extend(commit_hooks)
        self._on_rollback.extend(rollback_hooks)
        self.state = TransactionState.STAGED

    @property
    def staged_value(self) -> Any:
        """The value staged in this transaction (None if nothing is staged)."""
        return None if self._staged is None else self._staged.value

    # -- COMMIT / ROLLBACK -------------------------------------------------------------

    def _group(self) -> list[Transaction]:
        """This transaction's subtree, children (depth first, in order) before itself."""
        members: list[Transaction] = []
        for child in self._children:
            members.extend(child._group())
        members.append(self)
        return members

    def commit(self) -> bool:
        """Write every staged record of this transaction and its children, then run commit hooks.

        All or nothing: if any write fails, the records already written are deleted,
        rollback hooks run and ``StorageError`` (with ``err.value``) is raised.
        Returns False if the transaction had already committed or rolled back.
        """
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            return False
        if self.state is TransactionState.PENDING:
            raise TransactionError(f"transaction on {self.key!r} has not begun; use it in a with block")
        group = self._group()
        written: list[Transaction] = []
        failing = self
        try:
            for member in group:
                if member._staged is not None and member.store is not None and member.key is not None:
                    failing = member
                    member.store.write(member.key, member._staged.value,
                                       expiration=member._staged.expiration,
                                       extra=member._staged.extra)
                    written.append(member)
        except BaseException as exc:
            self._undo_writes(written)
            value = failing._staged.value if failing._staged is not None else None
            self.rollback()
            if not isinstance(exc, Exception):
                raise
            raise StorageError(
                f"committing the record {failing.key!r} failed ({type(exc).__name__}: {exc}), so the "
                f"transaction rolled back and removed the {len(written)} record(s) it had written; "
                "the computed value is on this error's .value",
                value=value,
            ) from exc
        try:
            for member in group:
                member.state = TransactionState.COMMITTED
            for member in group:
                for hook in member._on_commit:
                    run_hook("commit", hook, member)
        finally:
            for member in group:
                member._release_lock()
        return True

    @staticmethod
    def _undo_writes(written: list[Transaction]) -> None:
        for member in reversed(written):
            assert member.key is not None
            try:
                member.store.delete(member.key)
            except Exception:
                logger.error("could not remove the record %r written by a failed commit; delete it "
                             "by hand (e.g. `resultkit rm`)", member.key, exc_info=True)

    def rollback(self) -> bool:
        """Discard staged records and run rollback hooks, newest first (children's too).

        Returns False if the transaction had already committed or rolled back.
        """
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            return False
        group = self._group()
        hooks = [(hook, member) for member in group for hook in member._on_rollback]
        for member in group:
            member.state = TransactionState.ROLLED_BACK
        try:
            for hook, member in reversed(hooks):
                run_hook("rollback", hook, member)
        finally:
            for member in group:
                member._release_lock()
        return True

    # -- END of the block ----------------------------------------------------------------

    def _close_context(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            _current.reset(token)
        except ValueError:  # exited in another context (e.g. a different task): restore by hand
            _current.set(self._parent)

    def _finish(self, failed: bool) -> None:
        try:
            if failed:
                self.rollback()
            elif self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
                pass
            elif self.commit_mode is CommitMode.EAGER:
                self.commit()
            elif self.commit_mode is CommitMode.LAZY:
                self._hand_to_parent()
            else:  # OFF: nobody called commit(), so nothing is written
                self.rollback()
        finally:
            self._close_context()

    def _hand_to_parent(self) -> None:
        parent = self._parent
        if parent is None or parent.state is TransactionState.COMMITTED:
            self.commit()  # nobody above will write it
        elif parent.state is TransactionState.ROLLED_BACK:
            self.rollback()
        else:
            parent._children.append(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(failed=exc is not None)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(failed=exc is not None)

    # -- values shared down the tree ----------------------------------------------------

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """A copy of the value ``name`` set here or in a parent; ``default`` if none, else KeyError."""
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return copy.deepcopy(txn._values[name])
            txn = txn._parent
        if default is _MISSING:
            raise KeyError(f"no transaction value named {name!r} here or in a parent; "
                           f"set it with txn.set({name!r}, value) or pass a default")
        return default

    def set(self, name: str, value: Any) -> None:
        """Set ``name`` for this transaction and its children."""
        self._values[name] = value

    def get_parent(self) -> Transaction | None:
        """The enclosing transaction, or None."""
        return self._parent

    @property
    def children(self) -> list[Transaction]:
        """Children that handed their staged records to this transaction."""
        return list(self._children)

    def is_pending(self) -> bool:
        """Whether the transaction has not begun."""
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        """Whether the transaction has begun and nothing is staged yet."""
        return self.state is TransactionState.ACTIVE

    def is_staged(self) -> bool:
        """Whether a value is staged and not yet committed."""
        return self.state is TransactionState.STAGED

    def is_committed(self) -> bool:
        """Whether the transaction committed (or BEGIN found a stored record)."""
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        """Whether the transaction rolled back."""
        return self.state is TransactionState.ROLLED_BACK


def transaction(
    key: str | None = None,
    store: Any = None,
    commit_mode: CommitMode | str | None = None,
    isolation_level: IsolationLevel | str | None = None,
    overwrite: bool = False,
    lock_timeout: float | None = None,
    lock_manager: LockManager | None = None,
) -> Transaction:
    """A transaction to use with ``with`` or ``async with``.

    >>> with transaction() as txn:        # groups the task calls inside
    ...     txn.is_active()
    True
    """
    return Transaction(key=key, store=store, commit_mode=commit_mode,
                       isolation_level=isolation_level, overwrite=overwrite,
                       lock_timeout=lock_timeout, lock_manager=lock_manager)
