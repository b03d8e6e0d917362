"""The flow-run context: which flow run (if any) the current code runs in."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["FlowRunContext", "get_run_context", "run_context"]


@dataclass(frozen=True)
class FlowRunContext:
    """One flow run: its id, name, bound parameters and the enclosing run (flows nest)."""

    run_id: str
    flow_name: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    parent: FlowRunContext | None = None


_current: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "resultkit_flow_run", default=None
)


def get_run_context() -> FlowRunContext | None:
    """The innermost flow run, or None outside any flow."""
    return _current.get()


@contextmanager
def run_context(run_id: str, flow_name: str, parameters: Mapping[str, Any]) -> Iterator[FlowRunContext]:
    """Enter a flow run for the duration of the block."""
    ctx = FlowRunContext(run_id, flow_name, MappingProxyType(dict(parameters)), _current.get())
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
