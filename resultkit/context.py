"""The flow-run context: which flow run (if any) the current code runs in."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["FlowRunContext", "FlowRunInfo", "get_run_context", "run_context"]


@dataclass(frozen=True)
class FlowRunContext:
    """One flow run: its id, name, bound parameters and the enclosing run (flows nest)."""

    run_id: str
    flow_name: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    parent: FlowRunContext | None = None
    #: The flow's ``tags``; tasks record them with their own.
    tags: tuple[str, ...] = ()
    #: The flow's ``version`` option.
    version: str | None = None


class FlowRunInfo(NamedTuple):
    """Prefect's ``flow_run`` in ``result_storage_key`` templates (None fields outside a flow)."""

    id: str | None
    name: str | None
    flow_name: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    flow_version: str | None

    @classmethod
    def of(cls, run: FlowRunContext | None) -> FlowRunInfo:
        """The ``flow_run`` of ``run`` (the innermost flow run, or None)."""
        if run is None:
            return cls(None, None, None, MappingProxyType({}), (), None)
        return cls(run.run_id, f"{run.flow_name}-{run.run_id[:8]}", run.flow_name, run.parameters,
                   run.tags, run.version)


_current: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "resultkit_flow_run", default=None
)


def get_run_context() -> FlowRunContext | None:
    """The innermost flow run, or None outside any flow."""
    return _current.get()


@contextmanager
def run_context(run_id: str, flow_name: str, parameters: Mapping[str, Any],
                tags: tuple[str, ...] = (), version: str | None = None) -> Iterator[FlowRunContext]:
    """Enter a flow run for the duration of the block."""
    ctx = FlowRunContext(run_id, flow_name, MappingProxyType(dict(parameters)), _current.get(), tags,
                         version)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
