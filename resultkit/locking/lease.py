"""Keeps the leases of held locks alive while their holder process lives.

A transaction holds its lock with a short lease (``LEASE_SECONDS``, 15 s) and this
keeper renews it every third of that, from one daemon thread per process. A
holder that dies stops renewing, so its lock frees itself within one lease (a
Redis lock of a killed machine is taken over within 15 s), while a slow but live
holder is never overtaken. A renewal that fails because the lock service is down
is retried at the next turn.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from .._env import env_float
from .base import LeasedLockManager

__all__ = ["LEASE_SECONDS", "drop_lease", "keep_lease"]

logger = logging.getLogger("resultkit.transactions")

#: Lease of a transaction's lock; a dead holder's lock is free again within this.
#: ``RESULTKIT_LOCK_LEASE_SECONDS`` (read at import) changes it, e.g. for tests.
LEASE_SECONDS = env_float("lock_lease_seconds", 15.0)


@dataclass
class _Held:
    manager: Any
    key: str
    holder: str
    hold_timeout: float
    renew_at: float


class _Keeper:
    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}
        self._tokens = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def keep(self, manager: Any, key: str, holder: str, hold_timeout: float) -> int | None:
        if not isinstance(manager, LeasedLockManager):
            return None  # a third-party manager without renewal: its lease is all it gets
        with self._changed:
            token = next(self._tokens)
            self._held[token] = _Held(manager, key, holder, hold_timeout,
                                      time.monotonic() + hold_timeout / 3)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="resultkit-lease-keeper",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()
            return token

    def drop(self, token: int | None) -> None:
        if token is not None:
            with self._changed:
                self._held.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [(t, h) for t, h in self._held.items() if h.renew_at <= now]
                if not due:
                    nxt = min((h.renew_at for h in self._held.values()), default=now + 3600)
                    self._changed.wait(nxt - now)
                    continue
            for token, held in due:
                try:
                    renewed = held.manager.extend_lock(held.key, held.holder, held.hold_timeout)
                except Exception:
                    logger.warning("could not renew the lock on %r; retrying", held.key, exc_info=True)
                    renewed = True  # transient: try again at the next renewal
                with self._changed:
                    if not renewed:
                        logger.warning("lost the lock on %r: its lease ran out before renewal",
                                       held.key)
                        self._held.pop(token, None)
                    elif token in self._held:
                        held.renew_at = time.monotonic() + held.hold_timeout / 3


_keeper = _Keeper()


def _reset_after_fork() -> None:
    global _keeper
    _keeper = _Keeper()  # the parent's thread does not exist in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def keep_lease(manager: Any, key: str, holder: str, hold_timeout: float) -> int | None:
    """Renew ``holder``'s lock on ``key`` every ``hold_timeout / 3`` s until ``drop_lease``."""
    return _keeper.keep(manager, key, holder, hold_timeout)


def drop_lease(token: int | None) -> None:
    """Stop renewing the lease registered as ``token``."""
    _keeper.drop(token)
