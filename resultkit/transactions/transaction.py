"""Transactions: BEGIN (lock, look up), STAGE, then COMMIT all or nothing, or ROLLBACK.

Nesting follows Prefect 3: a nested transaction inherits its parent's commit mode,
isolation level, store and lock manager unless given its own (``_context.py``, which also
keeps the current transaction); a child's rollback rolls
its parents back; ``LAZY`` children hand their staged records to the parent, which
writes them with its own in one group commit (crash-consistent: see ``journal.py``).

One implementation serves ``with`` and ``async with``: BEGIN is a generator of lock
waits that a sync driver and an async driver run, so async code awaits its lock waits
and never blocks the event loop.

>>> with transaction(key="report/2026-11", store=store) as txn:   # doctest: +SKIP
...     if not txn.is_committed():
...         txn.stage(build_report(), on_rollback=[delete_upload])
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from contextvars import Token
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, NoReturn

from .._env import env_float
from ..errors import ConfigurationError, LockTimeout, TransactionError, TransactionValueNotFound
from ..locking import LeasedLockManager, LockManager, default_lock_manager
from ..locking.lease import LEASE_SECONDS, drop_lease, keep_lease
from ..locking.memory import default_memory_lock_manager
from . import _context
from ._context import register_default_store
from .commit import GroupWriteFailed, PendingWrite, commit_error, write_group
from .hooks import Hook, check_hooks, run_hook
from .lock_steps import Acquire, LockSteps, WaitForRelease, adrive, drive
from .states import CommitMode, HasState, IsolationLevel, TransactionState

__all__ = [
    "Hook",
    "Transaction",
    "get_transaction",
    "register_default_store",
    "transaction",
]

_log = logging.getLogger("resultkit.transactions")

_MISSING: Any = object()
_HOST = socket.gethostname()


def get_transaction() -> Transaction | None:
    """The innermost open transaction in this context, or None."""
    txn: Transaction | None = _context.current()
    return txn


@dataclass
class _Staged:
    value: Any
    expiration: datetime | timedelta | None
    extra: dict[str, Any] | None


@dataclass
class _HeldLock:
    manager: LockManager
    lease_token: int | None


class Transaction(HasState):
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
        write_on_commit: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"transaction key must be a non-empty str or None, got {key!r}")
        if lock_timeout is not None and (not isinstance(lock_timeout, (int, float)) or not lock_timeout >= 0):
            raise ConfigurationError(f"lock_timeout must be a number of seconds >= 0, got {lock_timeout!r}")
        if lock_manager is not None and not isinstance(lock_manager, LockManager):
            raise ConfigurationError(
                f"lock_manager must implement acquire_lock/aacquire_lock/release_lock/is_locked/"
                f"is_lock_holder/wait_for_lock/await_for_lock, got {type(lock_manager).__name__}; use e.g. RedisLockManager(url)"
            )
        self.key = key
        self.store = _context.resolve_store(store)
        self.commit_mode = _context.coerce_enum(CommitMode, commit_mode, "commit_mode")
        self.isolation_level = _context.coerce_enum(IsolationLevel, isolation_level, "isolation_level")
        self.overwrite = bool(overwrite)
        self.lock_timeout = lock_timeout
        self.lock_manager = lock_manager
        self.write_on_commit = bool(write_on_commit)
        self.logger = logger or _log
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
        self._holder = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:16]}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} key={self.key!r} state={self.state.value}>"

    # -- BEGIN --------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.state is not TransactionState.PENDING or self._token is not None:
            raise TransactionError(f"transaction on {self.key!r} was already begun; make a new one")
        self._parent = get_transaction()
        _context.inherit(self, self._parent)

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

    def _begin_steps(self, known_miss: bool) -> LockSteps:
        """Look the key up and, under SERIALIZABLE on a miss, take its lock and look again.

        Yields lock requests (see ``lock_steps.py``) for a sync or an async driver to
        answer. A stored record is final, so a hit needs no lock; a waiter checks the
        store each time the lock is released, so a whole herd reads the winner's record
        at once.
        """
        self.record = None if known_miss else self._lookup()
        if self.record is not None or not self._needs_lock():
            return
        assert self.key is not None
        manager = self._choose_lock_manager()
        ancestor = self._parent
        while ancestor is not None:
            if ancestor.key == self.key and ancestor._lock and ancestor._lock.manager is manager:
                self._holder = ancestor._holder  # an enclosing transaction holds this key for us
                return
            ancestor = ancestor._parent
        timeout = self.lock_timeout if self.lock_timeout is not None else env_float("lock_timeout", 300)
        deadline = time.monotonic() + timeout
        renewable = isinstance(manager, LeasedLockManager)
        hold = LEASE_SECONDS if renewable else None
        while not (yield Acquire(manager, self.key, self._holder, hold)):
            left = deadline - time.monotonic()
            if left <= 0 or not (yield WaitForRelease(manager, self.key, left)):
                self._raise_lock_timeout(manager, timeout)
            self.record = self._lookup()
            if self.record is not None:
                return  # the holder committed while we waited
        token = keep_lease(manager, self.key, self._holder, LEASE_SECONDS) if renewable else None
        self._lock = _HeldLock(manager, token)
        try:
            self.record = self._lookup()  # under the lock: someone may have committed meanwhile
        except BaseException:
            self._release_lock()
            raise
        if self.record is not None:
            self._release_lock()

    def _raise_lock_timeout(self, manager: LockManager, timeout: float) -> NoReturn:
        assert self.key is not None
        current = manager.lock_holder(self.key) if isinstance(manager, LeasedLockManager) else None
        raise LockTimeout(
            f"could not lock {self.key!r} within {timeout:g} s: it is held by "
            f"{current or 'another holder'!s} ({manager!r}); wait longer with lock_timeout= "
            "or RESULTKIT_LOCK_TIMEOUT, or stop the holder"
        )

    def _open(self) -> None:
        self._token = _context.enter(self)
        self.state = TransactionState.COMMITTED if self.record is not None else TransactionState.ACTIVE

    def _release_lock(self) -> None:
        held, self._lock = self._lock, None
        if held is None:
            return
        drop_lease(held.lease_token)
        assert self.key is not None
        try:
            held.manager.release_lock(self.key, self._holder)
        except Exception:
            _log.warning("could not release the lock on %r (its lease may have run out)",
                           self.key, exc_info=True)

    def begin(self, known_miss: bool = False) -> Transaction:
        """BEGIN without a ``with`` block (pair it with :meth:`finish`).

        ``known_miss=True`` says the caller looked the key up just now and found
        nothing, so BEGIN skips its own first, unlocked lookup.
        """
        self._prepare()
        drive(self._begin_steps(known_miss))
        self._open()
        return self

    async def abegin(self, known_miss: bool = False) -> Transaction:
        """:meth:`begin` for async code: lock waits are awaited, the event loop keeps running."""
        self._prepare()
        await adrive(self._begin_steps(known_miss))
        self._open()
        return self

    def __enter__(self) -> Transaction:
        return self.begin()

    async def __aenter__(self) -> Transaction:
        return await self.abegin()

    # -- STAGE --------------------------------------------------------------------------

    def stage(
        self,
        value: Any,
        on_commit: Iterable[Hook] | Hook = (),
        on_rollback: Iterable[Hook] | Hook = (),
        expiration: datetime | timedelta | None = None,
        extra: dict[str, Any] | None = None,
        *,
        on_commit_hooks: Iterable[Hook] | None = None,
        on_rollback_hooks: Iterable[Hook] | None = None,
    ) -> None:
        """Stage ``value`` for this transaction's key, with hooks to run at COMMIT or ROLLBACK.

        ``on_commit_hooks`` / ``on_rollback_hooks`` are Prefect's spellings of the same
        hooks. On a transaction that BEGIN found committed, staging is ignored.
        """
        if self.state is TransactionState.COMMITTED:
            _log.debug("transaction on %r is already committed; the staged value is ignored", self.key)
            return
        if self.state not in (TransactionState.ACTIVE, TransactionState.STAGED):
            raise TransactionError(
                f"cannot stage a value in a {self.state.value} transaction on {self.key!r}; "
                "stage inside the `with transaction()` block, before it commits or rolls back"
            )
        commit_hooks = check_hooks(on_commit, "on_commit") + check_hooks(on_commit_hooks or (), "on_commit_hooks")
        rollback_hooks = (check_hooks(on_rollback, "on_rollback")
                          + check_hooks(on_rollback_hooks or (), "on_rollback_hooks"))
        self._staged = _Staged(value, expiration, extra)
        self._on_commit.extend(commit_hooks)
        self._on_rollback.extend(rollback_hooks)
        self.state = TransactionState.STAGED

    @property
    def staged_value(self) -> Any:
        """The value staged in this transaction (None if nothing is staged)."""
        return None if self._staged is None else self._staged.value

    def read(self) -> Any:
        """The record stored at this transaction's key (``RecordNotFound`` if none), or None without a key."""
        if self.store is None or self.key is None:
            return None
        return self.store.read(self.key, holder=self._holder)

    # -- COMMIT / ROLLBACK -------------------------------------------------------------

    def _group(self) -> list[Transaction]:
        """This transaction's open subtree, children (depth first, in order) before itself."""
        members: list[Transaction] = []
        for child in self._children:
            if child.state in (TransactionState.ACTIVE, TransactionState.STAGED):
                members.extend(child._group())
        members.append(self)
        return members

    def _writes(self, group: list[Transaction]) -> list[Transaction]:
        return [member for member in group if member._staged is not None and member.store is not None
                and member.key is not None and member.write_on_commit]

    def commit(self) -> bool:
        """Write every staged record of this transaction and its children, then run commit hooks.

        All or nothing, to every reader and after a crash at any point: a commit of
        several records writes a journal first, and its records are invisible until
        the journal is deleted at the end. If any write fails, the records already
        written are deleted, rollback hooks run and ``StorageError`` (with
        ``err.value``) is raised. Returns False if the transaction had already finished.
        """
        return self._commit()

    def _commit(self) -> bool:
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            self._release_lock()
            return False
        if self.state is TransactionState.PENDING:
            raise TransactionError(f"transaction on {self.key!r} has not begun; use it in a with block")
        group = self._group()
        self._write_all(self._writes(group))  # on failure: undone, rolled back, raised
        for member in group:
            member.state = TransactionState.COMMITTED
        try:
            for member in group:
                for hook in member._on_commit:
                    run_hook("commit", hook, member)
        finally:
            for member in group:
                member._release_lock()
        return True

    def _write_all(self, members: list[Transaction]) -> None:
        """Write the members' staged records as one group commit; on failure roll back and raise."""
        writes = []
        for member in members:
            assert member._staged is not None and member.key is not None
            writes.append(PendingWrite(member.store, member.key, member._staged.value,
                                       member._staged.expiration, member._staged.extra, member._holder))
        try:
            write_group(writes)
        except GroupWriteFailed as failure:
            self._rollback()
            raise commit_error(failure) from failure.cause

    def rollback(self) -> bool:
        """Discard staged records and run rollback hooks, newest first (children's too).

        Returns False if the transaction had already committed or rolled back.
        """
        return self._rollback()

    def _rollback(self) -> bool:
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            self._release_lock()
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

    def add_child(self, child: Transaction) -> None:
        """Make ``child`` part of this transaction: committed or rolled back with it."""
        if child is not self and all(existing is not child for existing in self._children):
            self._children.append(child)

    # -- END of the block ----------------------------------------------------------------

    def _close_context(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            _context.exit_to(token, self._parent)

    def _settle(self, failed: bool) -> None:
        """End of the block: roll back, commit, or hand over to the parent, as Prefect does."""
        parent = self._parent
        if failed:
            self._rollback()
        elif self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            self._release_lock()
        elif self.commit_mode is CommitMode.EAGER:
            self._commit()
        elif parent is None:
            if self.commit_mode is CommitMode.OFF:
                self._rollback()  # nobody called commit()
            else:
                self._commit()
        elif parent.state is TransactionState.COMMITTED:
            self._commit()  # BEGIN found the parent committed: nobody above will write this
        elif parent.state is TransactionState.ROLLED_BACK:
            self._rollback()
        if parent is not None:
            parent.add_child(self)
            if self.state is TransactionState.ROLLED_BACK:
                parent._rollback()

    def finish(self, exc: BaseException | None = None) -> None:
        """End a transaction begun with :meth:`begin`: roll back if ``exc``, else commit or hand over."""
        try:
            self._settle(failed=exc is not None)
        finally:
            self._close_context()

    async def afinish(self, exc: BaseException | None = None) -> None:
        """:meth:`finish` for async code: the commit's writes run off the event loop."""
        import asyncio  # only async code gets here, and its loop has imported asyncio

        try:
            await asyncio.to_thread(self._settle, exc is not None)
        finally:
            self._close_context()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exc)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.afinish(exc)

    # -- values shared down the tree ----------------------------------------------------

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """A copy of the value ``name`` set here or in a parent; ``default`` if none.

        An unknown name without a default raises ``TransactionValueNotFound`` (a
        ``KeyError`` and, as in Prefect, a ``ValueError``).
        """
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return copy.deepcopy(txn._values[name])
            txn = txn._parent
        if default is _MISSING:
            raise TransactionValueNotFound(f"no transaction value named {name!r} here or in a parent; "
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
        """The nested transactions that finished inside this one."""
        return list(self._children)


def transaction(
    key: str | None = None,
    store: Any = None,
    commit_mode: CommitMode | str | None = None,
    isolation_level: IsolationLevel | str | None = None,
    overwrite: bool = False,
    lock_timeout: float | None = None,
    lock_manager: LockManager | None = None,
    write_on_commit: bool = True,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> Transaction:
    """A transaction to use with ``with`` or ``async with``.

    >>> with transaction() as txn:        # groups the task calls inside
    ...     txn.is_active()
    True
    """
    return Transaction(key=key, store=store, commit_mode=commit_mode,
                       isolation_level=isolation_level, overwrite=overwrite,
                       lock_timeout=lock_timeout, lock_manager=lock_manager,
                       write_on_commit=write_on_commit, logger=logger)
