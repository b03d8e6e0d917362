"""The async face of :class:`~resultkit.results.ResultStore`, derived from its sync methods.

Each coroutine runs the sync method in a worker thread (``asyncio.to_thread``), so
storage I/O and lock waits never block the event loop, and context variables (the
open transaction, settings) travel with the call. One implementation per behaviour:
the sync method is the core, the coroutine is a thin face over it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["in_thread"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def in_thread(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """An ``async def`` twin of ``method`` that awaits it in a worker thread.

    The method is looked up on the instance at call time, so an override of the sync
    method is what its async face runs.
    """
    name = method.__name__

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        import asyncio  # only async code gets here, and its loop has imported asyncio

        sync: Callable[P, R] = getattr(self, name)
        return await asyncio.to_thread(sync, *args, **kwargs)

    run.__name__ = "a" + name
    owner, _, _ = method.__qualname__.rpartition(".")
    run.__qualname__ = f"{owner}.a{name}" if owner else f"a{name}"
    run.__doc__ = f"Async :meth:`{name}`: runs it in a worker thread, so the event loop is never blocked."
    return run
