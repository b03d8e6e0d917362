"""BEGIN's lock requests as values, so one generator serves sync and async transactions.

BEGIN (in ``transaction.py``) yields an :class:`Acquire` or a :class:`WaitForRelease`
and is sent the answer; :func:`drive` answers with the lock manager's blocking calls and
:func:`adrive` with its awaited ones, so async code never blocks its event loop.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from ..locking import LockManager
from ..locking.base import Unreachable

__all__ = ["Acquire", "LockSteps", "WaitForRelease", "adrive", "drive"]


@dataclass(frozen=True)
class Acquire:
    """Try once to take ``key``'s lock for ``holder`` (an unreachable lock service: not yet)."""

    manager: LockManager
    key: str
    holder: str
    hold_timeout: float | None

    def run(self) -> bool:
        """The answer, blocking."""
        try:
            return self.manager.acquire_lock(self.key, self.holder, acquire_timeout=0,
                                             hold_timeout=self.hold_timeout)
        except Unreachable:
            return False  # the wait that follows retries the service with backoff

    async def arun(self) -> bool:
        """The answer, awaited."""
        try:
            return await self.manager.aacquire_lock(self.key, self.holder, acquire_timeout=0,
                                                    hold_timeout=self.hold_timeout)
        except Unreachable:
            return False


@dataclass(frozen=True)
class WaitForRelease:
    """Wait up to ``timeout`` seconds for ``key``'s lock to be released (False: it was not)."""

    manager: LockManager
    key: str
    timeout: float

    def run(self) -> bool:
        """The answer, blocking."""
        return bool(self.manager.wait_for_lock(self.key, timeout=self.timeout))

    async def arun(self) -> bool:
        """The answer, awaited."""
        return bool(await self.manager.await_for_lock(self.key, timeout=self.timeout))


#: What BEGIN's generator is: it yields requests and is sent their answers.
LockSteps = Generator["Acquire | WaitForRelease", bool, None]


def drive(steps: LockSteps) -> None:
    """Run ``steps`` to the end, answering each request with a blocking call."""
    try:
        request = next(steps)
        while True:
            request = steps.send(request.run())
    except StopIteration:
        pass


async def adrive(steps: LockSteps) -> None:
    """Run ``steps`` to the end, answering each request with an awaited call."""
    try:
        request = next(steps)
        while True:
            request = steps.send(await request.arun())
    except StopIteration:
        pass
