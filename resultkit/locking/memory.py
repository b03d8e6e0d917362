"""``MemoryLockManager``: leased locks shared by the threads and coroutines of one process.

There is one lock table per process: ``MemoryLockManager()`` always returns the same
manager (as in Prefect), so two parts of a program that each make one still exclude
each other. Waiters are woken when a lock is released, not by polling: threads
through a condition variable, coroutines through a future resolved on their own
event loop, so a coroutine's wait never blocks its loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import (
    DEFAULT_HOLD_TIMEOUT,
    adrive,
    check_lock_args,
    doubling_delays,
    drive,
    not_held_error,
    wait_steps,
)

if TYPE_CHECKING:
    import asyncio

__all__ = ["MemoryLockManager", "default_memory_lock_manager"]

logger = logging.getLogger("resultkit.locking")

# Waiters are woken by releases; this only bounds one pause (leases expire sooner anyway).
_LONGEST_PAUSE = 3600.0


@dataclass
class _Lease:
    holder: str
    expires: float  # time.monotonic() deadline


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MemoryLockManager:
    """Locks for one process: threads and coroutines (with distinct holders) wait on each other.

    >>> locks = MemoryLockManager()
    >>> locks is MemoryLockManager()
    True
    >>> locks.acquire_lock("doc/m", holder="a", acquire_timeout=0)
    True
    >>> locks.acquire_lock("doc/m", holder="b", acquire_timeout=0)
    False
    >>> locks.release_lock("doc/m", holder="a")
    """

    _instance: ClassVar[MemoryLockManager | None] = None
    _leases: dict[str, _Lease]
    _changed: threading.Condition
    _async_waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]]

    def __new__(cls) -> MemoryLockManager:
        instance = MemoryLockManager._instance
        if instance is None:
            instance = super().__new__(cls)
            instance._leases = {}
            instance._reset_waiting()
            MemoryLockManager._instance = instance
        return instance

    def _reset_waiting(self) -> None:
        self._changed = threading.Condition()
        self._async_waiters = {}

    def __repr__(self) -> str:
        return "MemoryLockManager()"

    def __reduce__(self) -> tuple[type[MemoryLockManager], tuple[()]]:
        # Unpickles as this process's manager; locks cannot cross processes.
        with self._changed:
            held = sum(1 for key in list(self._leases) if self._live(key) is not None)
        if held:
            logger.warning(
                "pickling MemoryLockManager with %d held lock(s): in another process the copy "
                "is that process's own manager, and the lock information will not be available "
                "there; use FileLockManager or RedisLockManager to lock across processes", held)
        return (MemoryLockManager, ())

    # -- the table (callers hold self._changed) --------------------------------------------

    def _live(self, key: str) -> _Lease | None:
        lease = self._leases.get(key)
        if lease is not None and lease.expires <= time.monotonic():
            del self._leases[key]
            return None
        return lease

    def _released(self, key: str) -> None:
        self._changed.notify_all()
        for loop, future in self._async_waiters.pop(key, ()):
            # A closed loop (RuntimeError) has nobody waiting on it any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, future)

    def _try_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        with self._changed:
            lease = self._live(key)
            if lease is not None and lease.holder != holder:
                return False
            self._leases[key] = _Lease(holder, time.monotonic() + hold_timeout)
            return True

    def _is_free(self, key: str) -> bool:
        with self._changed:
            return self._live(key) is None

    # -- pauses: until a release, the lease's expiry or ``delay`` ---------------------------

    def _pause(self, key: str, delay: float) -> None:
        with self._changed:
            lease = self._live(key)
            if lease is not None:
                self._changed.wait(min(delay, lease.expires - time.monotonic()))

    async def _apause(self, key: str, delay: float) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        with self._changed:
            lease = self._live(key)
            if lease is None:
                return
            wait = min(delay, lease.expires - time.monotonic())
            future: asyncio.Future[None] = loop.create_future()
            entry = (loop, future)
            self._async_waiters.setdefault(key, []).append(entry)
        try:
            await asyncio.wait_for(future, wait)
        except TimeoutError:
            pass
        finally:
            with self._changed:
                waiters = self._async_waiters.get(key)
                if waiters is not None and entry in waiters:
                    waiters.remove(entry)
                    if not waiters:
                        del self._async_waiters[key]

    # -- protocol -------------------------------------------------------------------------

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``holder``; False if not free within ``acquire_timeout``."""
        check_lock_args(key, holder, acquire_timeout, hold_timeout)
        hold = DEFAULT_HOLD_TIMEOUT if hold_timeout is None else hold_timeout
        return drive(self._steps(acquire_timeout, key),
                     lambda: self._try_acquire(key, holder, hold),
                     lambda delay: self._pause(key, delay))

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """:meth:`acquire_lock` for coroutines: the wait is awaited, the loop keeps running."""
        check_lock_args(key, holder, acquire_timeout, hold_timeout)
        hold = DEFAULT_HOLD_TIMEOUT if hold_timeout is None else hold_timeout

        async def attempt() -> bool:
            return self._try_acquire(key, holder, hold)

        return await adrive(self._steps(acquire_timeout, key), attempt,
                            lambda delay: self._apause(key, delay))

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``; ``LockNotHeldError`` if another holder holds it.

        Releasing a lock that no longer exists (released, or its lease ran out) does nothing.
        """
        check_lock_args(key, holder)
        with self._changed:
            lease = self._live(key)
            if lease is None:
                logger.debug("lock %r released by %r was already free", key, holder)
                return
            if lease.holder != holder:
                raise not_held_error(key, holder, lease.holder)
            del self._leases[key]
            self._released(key)

    def extend_lock(self, key: str, holder: str, hold_timeout: float) -> bool:
        """Renew ``holder``'s lease on ``key`` for ``hold_timeout`` seconds; False if not held."""
        check_lock_args(key, holder, hold_timeout)
        with self._changed:
            lease = self._live(key)
            if lease is None or lease.holder != holder:
                return False
            lease.expires = time.monotonic() + hold_timeout
            return True

    def lock_holder(self, key: str) -> str | None:
        """The holder of the unexpired lock on ``key``, or None."""
        with self._changed:
            lease = self._live(key)
            return lease.holder if lease else None

    def is_locked(self, key: str) -> bool:
        """Whether someone holds an unexpired lock on ``key``."""
        return self.lock_holder(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        """Whether ``holder`` holds an unexpired lock on ``key``."""
        return self.lock_holder(key) == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if still locked after ``timeout`` seconds."""
        return drive(self._steps(timeout, key), lambda: self._is_free(key),
                     lambda delay: self._pause(key, delay))

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """:meth:`wait_for_lock` for coroutines: the wait is awaited."""

        async def attempt() -> bool:
            return self._is_free(key)

        return await adrive(self._steps(timeout, key), attempt,
                            lambda delay: self._apause(key, delay))

    def _steps(self, timeout: float | None, key: str) -> Generator[float, bool, bool]:
        # Releases wake waiters, so pauses may be long: no polling interval.
        return wait_steps(timeout, f"lock {key!r} (MemoryLockManager)",
                          doubling_delays(_LONGEST_PAUSE, _LONGEST_PAUSE))


_DEFAULT = MemoryLockManager()


def _after_fork_in_child() -> None:
    # Another thread may have held the condition at fork; the leases are kept (as in Prefect).
    _DEFAULT._reset_waiting()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def default_memory_lock_manager() -> MemoryLockManager:
    """The process's ``MemoryLockManager`` (the same object as ``MemoryLockManager()``)."""
    return _DEFAULT
