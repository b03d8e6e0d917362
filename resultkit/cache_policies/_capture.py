"""What policies take from a task's function when it is decorated, so it travels with the task.

``TASK_SOURCE`` reads the source text captured at decoration; ``CODE`` and
``Packages.auto()`` need more (the traced code), and ``Files`` checks its argument
names against the signature. A policy part with a ``capture(fn, captured)`` method adds
what it needs to ``captured`` (a dict keyed by what was captured, e.g. ``"code"``);
the task keeps the dict, pickles it with itself, and hands it to every key computation
as ``CacheKeyContext.captured``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["capture_for"]


def capture_for(policy: Any, fn: Callable[..., Any],
                captured: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run the decoration hooks of ``policy``'s parts on ``fn``; keep what ``captured`` already has."""
    result = dict(captured or {})
    members = getattr(policy, "policies", None)
    for member in members if isinstance(members, tuple) else (policy,):
        hook = getattr(member, "capture", None)
        if callable(hook):
            hook(fn, result)
    return result
