"""``MemoryLockManager``: leased locks shared by the threads and asyncio tasks of one process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .base import DEFAULT_HOLD_TIMEOUT, check_lock_args, not_held_error

__all__ = ["MemoryLockManager", "default_memory_lock_manager"]


@dataclass
class _Lease:
    holder: str
    expires: float  # time.monotonic() deadline


class MemoryLockManager:
    """Locks for one process: threads (and asyncio tasks, via distinct holders) wait on each other.

    >>> locks = MemoryLockManager()
    >>> locks.acquire_lock("k", holder="a", acquire_timeout=0)
    True
    >>> locks.acquire_lock("k", holder="b", acquire_timeout=0)
    False
    """

    def __init__(self) -> None:
        self._leases: dict[str, _Lease] = {}
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return "MemoryLockManager()"

    def __reduce__(self) -> tuple[type[MemoryLockManager], tuple[()]]:
        # Locks cannot cross processes; a copy in another process is a fresh manager.
        return (MemoryLockManager, ())

    def _live(self, key: str) -> _Lease | None:
        lease = self._leases.get(key)
        if lease is not None and lease.expires <= time.monotonic():
            del self._leases[key]
            return None
        return lease

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
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        with self._changed:
            while True:
                lease = self._live(key)
                if lease is None or lease.holder == holder:
                    self._leases[key] = _Lease(holder, time.monotonic() + hold)
                    return True
                if not self._wait_for_change(lease, deadline):
                    return False

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``; raises ``TransactionError`` if not held by it."""
        check_lock_args(key, holder)
        with self._changed:
            lease = self._live(key)
            if lease is None or lease.holder != holder:
                raise not_held_error(key, holder, lease.holder if lease else None)
            del self._leases[key]
            self._changed.notify_all()

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
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                lease = self._live(key)
                if lease is None:
                    return True
                if not self._wait_for_change(lease, deadline):
                    return False

    def _wait_for_change(self, lease: _Lease, deadline: float | None) -> bool:
        """Wait (condition held) until a release or ``lease``'s expiry; False if ``deadline`` passed."""
        now = time.monotonic()
        wait = lease.expires - now
        if deadline is not None:
            if deadline <= now:
                return False
            wait = min(wait, deadline - now)
        self._changed.wait(wait)
        return True


_DEFAULT = MemoryLockManager()


def default_memory_lock_manager() -> MemoryLockManager:
    """The process-wide ``MemoryLockManager``."""
    return _DEFAULT
