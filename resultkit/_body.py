"""A task's or flow's body as it runs: ``timeout_seconds`` and ``log_prints`` around the call.

A timeout interrupts the body with :class:`~resultkit.errors.RunTimeout`. In the main
thread a timer signal does it, so blocking calls (sleeps, lock waits) are interrupted
too; in other threads (or under an outer timer due first) the exception is raised into
the body's thread by a watchdog timer, which takes effect at the body's next Python step.
An ``async def`` body is cancelled by the event loop.

``log_prints=True`` sends ``print()`` calls of the body (to stdout, the default) to the
``resultkit`` logger at INFO, as Prefect's ``log_prints`` does; it is a context
variable, so threads and other calls are unaffected, and a task with ``log_prints=None``
follows its flow.
"""

from __future__ import annotations

import builtins
import contextvars
import ctypes
import logging
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .errors import RunTimeout

__all__ = ["run_body", "run_body_async"]

R = TypeVar("R")

logger = logging.getLogger("resultkit")

# The label of the run whose prints are logged, or None: prints go where they would.
_printing_to_log: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "resultkit_log_prints", default=None)
_original_print = builtins.print
_print_installed = False
_install_lock = threading.Lock()


def _print(*values: object, sep: str | None = " ", end: str | None = "\n", file: Any = None,
           flush: bool = False) -> None:
    label = _printing_to_log.get()
    if label is None or (file is not None and file is not sys.stdout):
        _original_print(*values, sep=sep, end=end, file=file, flush=flush)
        return
    logger.info("%s", (" " if sep is None else sep).join(map(str, values)), extra={"run": label})


def _install_print() -> None:
    global _print_installed
    with _install_lock:
        if not _print_installed:
            builtins.print = _print
            _print_installed = True


@contextmanager
def _prints(log_prints: bool | None, label: str) -> Iterator[None]:
    if log_prints is None:  # follow the enclosing run
        yield
        return
    if log_prints:
        _install_print()
    token = _printing_to_log.set(label if log_prints else None)
    try:
        yield
    finally:
        _printing_to_log.reset(token)


class _Interrupt(BaseException):
    """Raised into a body that ran out of time (a BaseException, so ``except Exception`` in
    the body cannot swallow it); turned into ``RunTimeout`` at the boundary."""


class _Watchdog:
    """Interrupts one thread once after ``timeout`` seconds, unless finished first."""

    def __init__(self, timeout: float) -> None:
        # A class of its own, so nested timeouts each catch only their own interrupt.
        self.interrupt: type[_Interrupt] = type("_Interrupt", (_Interrupt,), {})
        self._thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._use_signal = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if self._use_signal:
            # An outer timer (an enclosing timeout, pytest-timeout) is suspended and re-armed
            # with its remaining time afterwards; if it would fire first, it keeps the signal.
            self._outer = signal.getitimer(signal.ITIMER_REAL)
            self._use_signal = not self._outer[0] or self._outer[0] > timeout
        if self._use_signal:
            self._started = time.monotonic()
            self._previous = signal.signal(signal.SIGALRM, self._on_signal)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        else:
            self._timer = threading.Timer(timeout, self._inject)
            self._timer.daemon = True
            self._timer.start()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self._done:
            self.fired = True
            raise self.interrupt

    def _inject(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id),
                                                       ctypes.py_object(self.interrupt))

    def finish(self) -> None:
        """Stop the watchdog; no interrupt arrives after this returns."""
        if self._use_signal:
            self._done = True
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            remaining, interval = self._outer
            if remaining:
                left = remaining - (time.monotonic() - self._started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), interval)
            return
        with self._lock:
            self._done = True
            if self.fired:  # cancel an interrupt that may still be pending for this thread
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id), None)
        self._timer.cancel()


def _timed_out(label: str, timeout: float) -> RunTimeout:
    return RunTimeout(
        f"{label} ran longer than its timeout_seconds={timeout:g} and was interrupted; "
        "raise timeout_seconds or make the body faster"
    )


def run_body(call: Callable[[], R], *, label: str, timeout: float | None,
             log_prints: bool | None) -> R:
    """``call()`` under ``timeout`` seconds (None: no limit) and ``log_prints``."""
    with _prints(log_prints, label):
        if timeout is None:
            return call()
        watchdog = _Watchdog(timeout)
        try:
            try:
                value = call()
            finally:
                watchdog.finish()
        except watchdog.interrupt:
            raise _timed_out(label, timeout) from None
        if watchdog.fired:  # it ran out of time as it returned: still a timeout
            raise _timed_out(label, timeout)
        return value


async def run_body_async(call: Callable[[], Awaitable[R]], *, label: str, timeout: float | None,
                         log_prints: bool | None) -> R:
    """The ``async def`` face of :func:`run_body`: the awaitable is cancelled on timeout."""
    import asyncio

    with _prints(log_prints, label):
        if timeout is None:
            return await call()
        # Not wait_for: a TimeoutError the body raises itself must stay the body's own.
        running = asyncio.ensure_future(call())
        try:
            done, _ = await asyncio.wait({running}, timeout=timeout)
        except asyncio.CancelledError:  # the caller was cancelled: so is the body
            running.cancel()
            raise
        if not done:
            running.cancel()
            await asyncio.wait({running})
            raise _timed_out(label, timeout)
        return running.result()
