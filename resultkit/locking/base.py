"""The lock-manager contract (Prefect's ``LockManager`` protocol) and the waiting algorithm.

Every lock is a lease: it has a holder id and a hold timeout, and a lock whose
lease ran out (or whose holder is known to be dead) is reclaimed by the next
acquirer. Only the holder may release or extend a lock.

Waiting is written once, as :func:`wait_steps`: a generator that says how long to
pause before each attempt and decides, from each attempt's outcome, when to stop.
:func:`drive` runs it with blocking pauses (threads) and :func:`adrive` with awaited
ones (coroutines), so the sync and async faces of every manager share one algorithm.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError, LockNotHeldError

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "LeasedLockManager",
    "LockManager",
    "PollingLockManager",
    "Unreachable",
    "adrive",
    "backoff_delays",
    "check_lock_args",
    "doubling_delays",
    "drive",
    "not_held_error",
    "wait_steps",
]

logger = logging.getLogger("resultkit.locking")

#: Lease length, in seconds, when ``acquire_lock`` gets no ``hold_timeout``.
DEFAULT_HOLD_TIMEOUT = 300.0

# While the lock service is unreachable, attempts back off from this to _OUTAGE_MOST s.
_OUTAGE_FIRST = 0.05
_OUTAGE_MOST = 1.0


@runtime_checkable
class LockManager(Protocol):
    """Grants leased locks on string keys to named holders (Prefect's protocol, sync and async).

    Managers that can also renew a lease and name a lock's holder implement
    :class:`LeasedLockManager` (``extend_lock``, ``lock_holder``): every manager
    resultkit ships does. Those two stay optional for third-party managers: a
    transaction checks ``isinstance(manager, LeasedLockManager)``; without them its
    lock lasts its hold timeout unrenewed and a ``LockTimeout`` cannot name the holder.

    >>> from resultkit.transactions import MemoryLockManager
    >>> MemoryLockManager().acquire_lock("doc/k", holder="me", acquire_timeout=0)
    True
    >>> MemoryLockManager().release_lock("doc/k", holder="me")
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

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """:meth:`acquire_lock` for coroutines: waiting is awaited, the event loop keeps running."""
        ...

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``.

        Raises ``LockNotHeldError`` (a ``ValueError``) if another holder holds it; a
        lock that no longer exists (released, or its lease ran out) is a no-op.
        """
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

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """:meth:`wait_for_lock` for coroutines: the wait is awaited."""
        ...


@runtime_checkable
class LeasedLockManager(LockManager, Protocol):
    """A :class:`LockManager` that can renew a lease and name a lock's holder."""

    def extend_lock(self, key: str, holder: str, hold_timeout: float) -> bool:
        """Renew ``holder``'s lease on ``key`` for ``hold_timeout`` seconds; False if not held."""
        ...

    def lock_holder(self, key: str) -> str | None:
        """The holder of the live lock on ``key``, or None."""
        ...


class Unreachable(ConfigurationError):
    """The lock service cannot be reached right now.

    Waiting calls retry it with backoff until their timeout and raise it only then;
    a call with a timeout of 0 raises it at once.
    """


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


def not_held_error(key: str, holder: str, actual: str | None = None) -> LockNotHeldError:
    """The error for ``holder`` releasing the lock on ``key`` that ``actual`` (another holder) holds.

    Only for a lock another holder holds: releasing a lock that no longer exists is a no-op.
    """
    who = repr(actual) if actual else "another holder"
    return LockNotHeldError(
        f"no lock held by {holder!r} on {key!r}: it is held by {who}; only the holder "
        "that acquired a lock may release it (pass the holder you acquired it with)"
    )


def doubling_delays(first: float = 0.002, most: float = 0.01) -> Iterator[float]:
    """Pause lengths doubling from ``first`` to ``most``, for ever (``wait_steps`` caps them).

    The default cap is small on purpose: a waiter of a thundering herd should see the
    winner's record within ~10 ms of its release, and a poll is one stat or one Redis GET.
    """
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


def backoff_delays(timeout: float | None, first: float = 0.002, most: float = 0.01) -> Iterator[float]:
    """Sleep lengths for polling until ``timeout`` seconds pass (forever when None).

    Yields the next delay (already capped by the time left); stops when time is up.
    Kept for managers that poll by hand; the managers here use :func:`wait_steps`.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    for delay in doubling_delays(first, most):
        if deadline is None:
            yield delay
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return
        yield min(delay, left)


def wait_steps(
    timeout: float | None, what: str, delays: Iterator[float] | None = None
) -> Generator[float, bool, bool]:
    """The waiting algorithm, written once for every manager and both faces.

    Yields the pause before each attempt (0 before the first) and is sent each
    attempt's outcome; returns True on the first success, False when ``timeout``
    seconds passed (None: never). An attempt that raised :class:`Unreachable` is
    thrown in: it counts as a failure, later attempts back off up to 1 s, and if the
    time runs out while the service is still unreachable, that error is raised.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delays = doubling_delays() if delays is None else delays
    outage: Unreachable | None = None
    outage_delay = _OUTAGE_FIRST
    delay = 0.0
    while True:
        try:
            acquired = yield delay
        except Unreachable as exc:
            if outage is None:
                logger.warning("%s: %s; retrying with backoff until the timeout", what, exc)
                outage_delay = _OUTAGE_FIRST
            outage = exc
        else:
            if outage is not None:
                logger.warning("%s: reachable again", what)
                outage = None
            if acquired:
                return True
        left = float("inf") if deadline is None else deadline - time.monotonic()
        if left <= 0:
            if outage is not None:
                raise outage
            return False
        if delay == 0.0:
            logger.debug("%s: waiting (timeout %s s)", what, timeout)
        if outage is not None:
            delay, outage_delay = outage_delay, min(outage_delay * 2, _OUTAGE_MOST)
        else:
            delay = next(delays)
        delay = min(delay, left)


def drive(steps: Generator[float, bool, bool], attempt: Callable[[], bool],
          pause: Callable[[float], object]) -> bool:
    """Run :func:`wait_steps` in this thread: ``pause`` blocks, ``attempt`` tries once."""
    try:
        delay = next(steps)
        while True:
            if delay > 0:
                pause(delay)
            try:
                outcome = attempt()
            except Unreachable as exc:
                delay = steps.throw(exc)
            else:
                delay = steps.send(outcome)
    except StopIteration as stop:
        return bool(stop.value)


async def adrive(steps: Generator[float, bool, bool], attempt: Callable[[], Awaitable[bool]],
                 pause: Callable[[float], Awaitable[object]]) -> bool:
    """Run :func:`wait_steps` in a coroutine: ``pause`` and ``attempt`` are awaited."""
    try:
        delay = next(steps)
        while True:
            if delay > 0:
                await pause(delay)
            try:
                outcome = await attempt()
            except Unreachable as exc:
                delay = steps.throw(exc)
            else:
                delay = steps.send(outcome)
    except StopIteration as stop:
        return bool(stop.value)


class PollingLockManager(abc.ABC):
    """The shared face of lock managers that can only poll (lock files, Redis keys).

    Subclasses implement ``_try_acquire(key, holder, hold_timeout)`` (one attempt),
    ``lock_holder(key)``, ``release_lock`` and ``extend_lock``; waiting is done here
    by :func:`wait_steps`, polling because neither files nor Redis can notify a waiter,
    with pauses doubling from ``first_poll`` to ``slowest_poll`` seconds (a subclass whose
    poll costs more, e.g. a request to an object store, raises them). The async face runs
    each attempt in a worker thread unless a subclass overrides ``_atry_acquire`` /
    ``_ais_free`` with native coroutines.
    """

    #: Polling bounds, in seconds (see :func:`doubling_delays`).
    first_poll = 0.002
    slowest_poll = 0.01

    def _steps(self, timeout: float | None, key: str) -> Generator[float, bool, bool]:
        return wait_steps(timeout, f"lock {key!r} ({self!r})",
                          doubling_delays(self.first_poll, self.slowest_poll))

    @abc.abstractmethod
    def _try_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        """One attempt to take the lock on ``key`` for ``holder``; True if taken."""

    @abc.abstractmethod
    def lock_holder(self, key: str) -> str | None:
        """The holder of the live lock on ``key``, or None."""

    async def _atry_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        import asyncio

        return await asyncio.to_thread(self._try_acquire, key, holder, hold_timeout)

    async def _ais_free(self, key: str) -> bool:
        import asyncio

        return not await asyncio.to_thread(self.is_locked, key)

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
                     lambda: self._try_acquire(key, holder, hold), time.sleep)

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """:meth:`acquire_lock` for coroutines: polls with awaited pauses."""
        import asyncio

        check_lock_args(key, holder, acquire_timeout, hold_timeout)
        hold = DEFAULT_HOLD_TIMEOUT if hold_timeout is None else hold_timeout
        return await adrive(self._steps(acquire_timeout, key),
                            lambda: self._atry_acquire(key, holder, hold), asyncio.sleep)

    def is_locked(self, key: str) -> bool:
        """Whether someone holds a live lock on ``key``."""
        return self.lock_holder(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        """Whether ``holder`` holds a live lock on ``key``."""
        return self.lock_holder(key) == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if still locked after ``timeout`` seconds."""
        return drive(self._steps(timeout, key), lambda: not self.is_locked(key), time.sleep)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """:meth:`wait_for_lock` for coroutines: polls with awaited pauses."""
        import asyncio

        return await adrive(self._steps(timeout, key), lambda: self._ais_free(key),
                            asyncio.sleep)
