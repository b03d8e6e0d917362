"""The lock-manager contract (Prefect's ``LockManager`` protocol) and shared helpers.

Every lock is a lease: it has a holder id and a hold timeout, and a lock whose
lease ran out (or whose holder is known to be dead) is reclaimed by the next
acquirer. Only the holder may release or extend a lock.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError, TransactionError

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "LockManager",
    "PollingLockManager",
    "backoff_delays",
    "check_lock_args",
    "not_held_error",
]

#: Lease length, in seconds, when ``acquire_lock`` gets no ``hold_timeout``.
DEFAULT_HOLD_TIMEOUT = 300.0


@runtime_checkable
class LockManager(Protocol):
    """Grants leased locks on string keys to named holders.

    >>> from resultkit.transactions import MemoryLockManager
    >>> MemoryLockManager().acquire_lock("k", holder="me", acquire_timeout=0)
    True
    """

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``holder``; False if not free within ``acquire_timeout``.

        ``acquire_timeout=None`` waits as long as it takes, ``0`` tries once.
        ``hold_timeout`` is the lease in seconds (default ``DEFAULT_HOLD_TIMEOUT``).
        Acquiring a lock one already holds renews its lease and returns True.
        """
        ...

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``; raises ``TransactionError`` if not held by it."""
        ...

    def is_locked(self, key: str) -> bool:
        """Whether someone holds an unexpired lock on ``key``."""
        ...

    def is_lock_holder(self, key: str, holder: str) -> bool:
        """Whether ``holder`` holds an unexpired lock on ``key``."""
        ...

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if still locked after ``timeout`` seconds."""
        ...


def check_lock_args(key: object, holder: object, *timeouts: float | None) -> None:
    """Raise ``ConfigurationError`` for a non-str or empty key/holder or a negative timeout."""
    for name, value in (("key", key), ("holder", holder)):
        if not isinstance(value, str) or not value:
            raise ConfigurationError(
                f"lock {name} must be a non-empty str, got {type(value).__name__} {value!r}"
            )
    for timeout in timeouts:
        if timeout is not None and not timeout >= 0:
            raise ConfigurationError(
                f"lock timeout must be a number of seconds >= 0 or None, got {timeout!r}"
            )


def not_held_error(key: str, holder: str, actual: str | None) -> TransactionError:
    """The error for releasing a lock ``holder`` does not hold."""
    who = f"it is held by {actual!r}" if actual else "it is not locked"
    return TransactionError(
        f"cannot release the lock on {key!r} for holder {holder!r}: {who}; "
        "only the holder that acquired a lock may release it (its lease may have run out)"
    )


def backoff_delays(timeout: float | None, first: float = 0.002, most: float = 0.01) -> Iterator[float]:
    """Sleep lengths for polling until ``timeout`` seconds pass (forever when None).

    Yields the next delay (already capped by the time left); stops when time is up.
    The cap is small on purpose: a waiter of a thundering herd should see the winner's
    record within ~10 ms of its release, and a poll is one stat or one Redis GET.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = first
    while True:
        if deadline is None:
            yield delay
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            yield min(delay, left)
        delay = min(delay * 2, most)


class PollingLockManager(abc.ABC):
    """The shared face of lock managers that can only poll (lock files, Redis keys).

    Subclasses implement ``_try_acquire(key, holder, hold_timeout)`` (one attempt),
    ``lock_holder(key)``, ``release_lock`` and ``extend_lock``; waiting is done here,
    polling with ``backoff_delays`` because neither files nor Redis can notify a waiter.
    """

    @abc.abstractmethod
    def _try_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        """One attempt to take the lock on ``key`` for ``holder``; True if taken."""

    @abc.abstractmethod
    def lock_holder(self, key: str) -> str | None:
        """The holder of the live lock on ``key``, or None."""

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
        if self._try_acquire(key, holder, hold):
            return True
        for delay in backoff_delays(acquire_timeout):
            time.sleep(delay)  # polling: the store cannot notify us when the lock is freed
            if self._try_acquire(key, holder, hold):
                return True
        return False

    def is_locked(self, key: str) -> bool:
        """Whether someone holds a live lock on ``key``."""
        return self.lock_holder(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        """Whether ``holder`` holds a live lock on ``key``."""
        return self.lock_holder(key) == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if still locked after ``timeout`` seconds."""
        if not self.is_locked(key):
            return True
        for delay in backoff_delays(timeout):
            time.sleep(delay)  # polling, as in acquire_lock
            if not self.is_locked(key):
                return True
        return False
