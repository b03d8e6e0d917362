"""Running commit and rollback hooks: sync or async, one failure never stops the others."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..errors import ConfigurationError

__all__ = ["Hook", "check_hooks", "run_hook"]

logger = logging.getLogger("resultkit.transactions")

#: A commit or rollback hook: ``hook(txn)``, plain or ``async def``.
Hook = Callable[[Any], Any]


def _hook_name(hook: Any) -> str:
    return str(getattr(hook, "__qualname__", None) or getattr(hook, "__name__", None) or repr(hook))


def check_hooks(hooks: Iterable[Hook] | Hook, name: str) -> list[Hook]:
    """``hooks`` (one callable or an iterable of them) as a list; ConfigurationError if not callable."""
    items = [hooks] if callable(hooks) else list(hooks)
    for hook in items:
        if not callable(hook):
            raise ConfigurationError(
                f"{name} must hold callables hook(txn), got {type(hook).__name__} {hook!r}"
            )
    return items


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _finish_awaitable(awaitable: Awaitable[Any]) -> None:
    # Imported here: only async hooks need them, and `import resultkit` stays lighter.
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_awaited(awaitable))
        return
    # This thread's loop is busy running us, so the hook gets its own loop elsewhere.
    with ThreadPoolExecutor(1, thread_name_prefix="resultkit-hook") as pool:
        pool.submit(asyncio.run, _awaited(awaitable)).result()


def run_hook(kind: str, hook: Hook, txn: Any) -> None:
    """Call ``hook(txn)`` (awaiting it if async); log, never raise, if it fails."""
    try:
        result = hook(txn)
        if inspect.isawaitable(result):
            _finish_awaitable(result)
    except Exception:
        logger.error("%s hook %s of the transaction on %r raised; the other hooks still run",
                     kind, _hook_name(hook), txn.key, exc_info=True)
