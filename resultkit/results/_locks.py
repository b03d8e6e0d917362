"""Prefect's ``ResultStore`` lock API, mixed into :class:`~resultkit.results.ResultStore`.

The manager is the store's ``lock_manager``, else the storage's default
(:func:`resultkit.locking.default_lock_manager`). ``write`` and ``read`` consult it
only when it is cheap to (a configured manager, or the default file or memory
manager); ``lookup``, the cache-hit path, never does.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Any

from .._env import env_float
from ..errors import ConfigurationError, LockTimeout, TransactionError
from ..locking import (
    FileLockManager,
    LeasedLockManager,
    LockManager,
    MemoryLockManager,
    default_lock_manager,
)

__all__ = ["StoreLocks"]

_HOST = socket.gethostname()
_UNSET: Any = object()


class StoreLocks:
    """The lock half of a ``ResultStore``: acquire, release, test and wait for a key's lock."""

    storage: Any
    lock_manager: Any
    #: Seconds a ``read`` of a key another holder has locked waits for it before
    #: ``LockTimeout``; None means ``RESULTKIT_LOCK_TIMEOUT`` (default 300).
    lock_timeout: float | None = None

    @staticmethod
    def generate_default_holder() -> str:
        """This caller's holder id: host, pid and thread (and asyncio task, inside one), as Prefect's."""
        thread = threading.current_thread()
        holder = f"{_HOST}:{os.getpid()}:{threading.get_ident()}:{thread.name}"
        asyncio = sys.modules.get("asyncio")
        if asyncio is not None:
            try:
                task = asyncio.current_task()
            except RuntimeError:  # no running loop in this thread
                task = None
            if task is not None:
                holder += f":{id(task)}"
        return holder

    # -- which manager ----------------------------------------------------------------------

    def _locks(self) -> LockManager:
        """The manager for the lock API; ``ConfigurationError`` if there is none."""
        manager = self._checking_locks(cheap_only=False)
        if manager is None:
            raise ConfigurationError(
                f"ResultStore on {self.storage.describe()} has no lock manager: pass one, e.g. "
                "ResultStore(storage, lock_manager=RedisLockManager('redis://host:6379/0'))"
            )
        return manager

    def _checking_locks(self, cheap_only: bool = True) -> LockManager | None:
        manager = self.lock_manager
        if manager is not None:
            return manager  # type: ignore[no-any-return]
        default = self.__dict__.get("_default_locks", _UNSET)
        if default is _UNSET:
            default = self.__dict__["_default_locks"] = default_lock_manager(self.storage)
        if cheap_only and not isinstance(default, (FileLockManager, MemoryLockManager)):
            return None  # checking a remote default on every write would cost a request
        return default  # type: ignore[no-any-return]

    # -- Prefect's API ----------------------------------------------------------------------

    def acquire_lock(self, key: str, holder: str | None = None,
                     acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        """Take ``key``'s lock for ``holder`` (default: :meth:`generate_default_holder`)."""
        return self._locks().acquire_lock(key, holder or self.generate_default_holder(),
                                          acquire_timeout, hold_timeout)

    async def aacquire_lock(self, key: str, holder: str | None = None,
                            acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        """:meth:`acquire_lock` for coroutines: the wait is awaited."""
        return await self._locks().aacquire_lock(key, holder or self.generate_default_holder(),
                                                 acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str | None = None) -> None:
        """Release ``holder``'s lock on ``key``; ``LockNotHeldError`` if another holder holds it."""
        self._locks().release_lock(key, holder or self.generate_default_holder())

    def is_locked(self, key: str) -> bool:
        """Whether someone holds ``key``'s lock."""
        return self._locks().is_locked(key)

    def is_lock_holder(self, key: str, holder: str | None = None) -> bool:
        """Whether ``holder`` (default: this caller) holds ``key``'s lock."""
        return self._locks().is_lock_holder(key, holder or self.generate_default_holder())

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if still locked after ``timeout`` seconds."""
        return self._locks().wait_for_lock(key, timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """:meth:`wait_for_lock` for coroutines: the wait is awaited."""
        return await self._locks().await_for_lock(key, timeout)

    def supports_isolation_level(self, level: Any) -> bool:
        """Whether transactions on this store can run at ``level`` (SERIALIZABLE needs a lock manager)."""
        name = str(getattr(level, "value", level)).upper()
        if name == "READ_COMMITTED":
            return True
        if name == "SERIALIZABLE":
            return self._checking_locks(cheap_only=False) is not None
        raise ConfigurationError(
            f"unknown isolation level {level!r}; use 'READ_COMMITTED' or 'SERIALIZABLE'"
        )

    # -- the checks write and read make -------------------------------------------------------

    def _held_by_other(self, manager: LockManager, key: str, holder: str | None) -> bool:
        """Whether a holder other than ``holder`` (default: this caller) holds ``key``'s lock.

        Transactions write as their own holder (``write(..., holder=txn's)``).
        """
        if not manager.is_locked(key):
            return False
        return not manager.is_lock_holder(key, holder or self.generate_default_holder())

    def _check_write(self, key: str, holder: str | None) -> None:
        """Refuse a write of ``key`` while another holder has its lock.

        Only with a lock manager given to the store (as in Prefect): every task's miss
        writes through here, and checking the default manager would cost each one a
        lock-file read.
        """
        manager = self.lock_manager
        if manager is not None and self._held_by_other(manager, key, holder):
            named = manager.lock_holder(key) if isinstance(manager, LeasedLockManager) else None
            current = named or "another holder"
            raise TransactionError(
                f"cannot write the record {key!r} as holder "
                f"{holder or self.generate_default_holder()!r}: its lock is held by {current!r}; "
                "write as that holder (holder=...), or wait for it (store.wait_for_lock(key))"
            )

    def _wait_until_readable(self, key: str, holder: str | None) -> None:
        """Wait, up to ``lock_timeout``, while another holder has ``key``'s lock."""
        manager = self._checking_locks()
        if manager is None or not self._held_by_other(manager, key, holder):
            return
        timeout = self.lock_timeout if self.lock_timeout is not None else env_float(
            "lock_timeout", 300)
        if not manager.wait_for_lock(key, timeout):
            raise LockTimeout(
                f"reading the record {key!r} waited {timeout:g} s for its lock holder to finish "
                "and it still holds the lock; read later, or wait longer with store.lock_timeout "
                "or RESULTKIT_LOCK_TIMEOUT"
            )
