"""The run context: which flow run (if any) the current code runs in, and carrying it elsewhere.

A flow run and the ``settings()`` blocks around a call live in context variables of
the calling thread. :func:`capture` takes a small, picklable snapshot of both and
``with restore(snapshot):`` re-opens them anywhere (another thread, process or
machine), so tasks there see the caller's run id, parameters and defaults:

>>> from resultkit.context import capture, restore
>>> snapshot = capture()              # in the caller (e.g. inside a flow)
>>> with restore(snapshot):           # in the worker
...     pass
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = ["BoundCall", "ContextSnapshot", "FlowRunContext", "FlowRunInfo", "capture",
           "get_run_context", "restore", "run_context"]

_R = TypeVar("_R")


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

    def __reduce__(self) -> tuple[Any, ...]:
        # MappingProxyType does not pickle: travel as a plain dict, rebuilt read-only.
        return (_rebuild_run, (self.run_id, self.flow_name, dict(self.parameters), self.parent,
                               self.tags, self.version))


def _rebuild_run(run_id: str, flow_name: str, parameters: dict[str, Any],
                 parent: FlowRunContext | None, tags: tuple[str, ...] = (),
                 version: str | None = None) -> FlowRunContext:
    return FlowRunContext(run_id, flow_name, MappingProxyType(parameters), parent, tags, version)


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


@dataclass(frozen=True)
class ContextSnapshot:
    """What :func:`capture` took: the flow run (or None) and the ``settings()``/flow defaults.

    Picklable whenever the flow's parameters and the defaults' values are (storages and
    serializers are). The task runner in force is left out: it belongs to the caller.
    """

    run: FlowRunContext | None
    defaults: dict[str, Any]
    #: Names ``defaults`` (the same for every snapshot of one block), so a worker that
    #: restores many snapshots of it reuses one resolved configuration.
    token: str | None = None

    def __bool__(self) -> bool:
        return self.run is not None or bool(self.defaults)

    def bind(self, fn: Callable[..., _R]) -> BoundCall[_R]:
        """``fn`` made to run in this snapshot's context wherever it is called (it pickles).

        >>> client.map(capture().bind(train), days)     # doctest: +SKIP
        """
        return BoundCall(self, fn)


class BoundCall(Generic[_R]):
    """A callable that calls ``fn`` inside ``with restore(snapshot):``; see :meth:`ContextSnapshot.bind`."""

    __slots__ = ("fn", "snapshot")

    def __init__(self, snapshot: ContextSnapshot, fn: Callable[..., _R]) -> None:
        if not callable(fn):
            from .errors import ConfigurationError

            raise ConfigurationError(f"bind() needs a callable such as a task, got {type(fn).__name__} {fn!r}")
        self.snapshot = snapshot
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> _R:
        with restore(self.snapshot):
            return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (BoundCall, (self.snapshot, self.fn))

    def __repr__(self) -> str:
        return f"BoundCall({self.fn!r})"


def capture() -> ContextSnapshot:
    """A snapshot of the run context here, to :func:`restore` in another thread, process or machine.

    >>> capture().run is None            # outside any flow
    True
    """
    from ._settings import layer_token, layer_values

    defaults = layer_values()
    defaults.pop("task_runner", None)
    return ContextSnapshot(_current.get(), defaults, layer_token())


@contextmanager
def restore(snapshot: ContextSnapshot) -> Iterator[None]:
    """Run the block in the flow run and with the defaults ``snapshot`` was taken in.

    The snapshot replaces the context here for the block (it does not merge with it).
    """
    from ._settings import restored_layer
    from .errors import ConfigurationError

    if not isinstance(snapshot, ContextSnapshot):
        raise ConfigurationError(
            f"restore() needs a ContextSnapshot from resultkit.context.capture(), got "
            f"{type(snapshot).__name__} {snapshot!r}"
        )
    token = _current.set(snapshot.run)
    try:
        with restored_layer(snapshot.defaults, snapshot.token):
            yield
    finally:
        _current.reset(token)
