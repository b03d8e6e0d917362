"""What a cache policy may look at besides the inputs: the task, its source and the run."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import textwrap
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .hashing import code_digest

__all__ = ["CacheKeyContext", "TaskRunInfo", "capture_source"]

#: Prefix of the text :func:`capture_source` returns when a function has no source.
CODE_DIGEST_PREFIX = "<code xxh3_128:"


class TaskRunInfo(NamedTuple):
    """Prefect's ``context.task_run``: the call as a task run (``id`` is the call id)."""

    id: str
    name: str
    flow_run_id: str | None
    task_name: str


@dataclass(frozen=True)
class CacheKeyContext:
    """Facts about one task call that policies other than ``INPUTS`` read.

    It is also what a ``cache_key_fn(context, parameters)`` receives, with Prefect's
    ``context.task_run`` (``id``, ``name``, ``flow_run_id``, ``task_name``),
    ``context.task`` and ``context.parameters``.

    >>> CacheKeyContext(task_name="mod.train", task_source="def train(): ...", call_id="c1")
    CacheKeyContext(task_name='mod.train', task_source='def train(): ...', run_id=None, flow_parameters=None, call_id='c1')
    >>> CacheKeyContext(task_name="mod.train", task_source="", run_id="r1", call_id="c1").task_run.flow_run_id
    'r1'
    """

    #: The task's identity: ``module.qualname`` of the function, or the task's ``name=``.
    task_name: str
    #: Source text captured at decoration (see :func:`capture_source`).
    task_source: str
    #: Id of the enclosing flow run, or None outside a flow.
    run_id: str | None = None
    #: Bound parameters of the enclosing flow run, or None outside a flow.
    flow_parameters: Mapping[str, Any] | None = None
    #: Unique per call; ``RUN_ID`` uses it outside a flow so such calls never share a key.
    call_id: str = ""
    #: What policy parts captured from the task's function at decoration (``CODE``'s traced
    #: code under ``"code"``); travels with the task when it is pickled.
    captured: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The task being called (Prefect's ``context.task``), or None.
    task: Any = field(default=None, repr=False, compare=False)
    #: The call's bound arguments (Prefect's ``context.parameters``), or None.
    parameters: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def task_run(self) -> TaskRunInfo:
        """The call as Prefect's ``task_run``: ``id``, ``name``, ``flow_run_id``, ``task_name``."""
        display = str(getattr(self.task, "name", None) or self.task_name.rsplit(".", 1)[-1])
        return TaskRunInfo(self.call_id, f"{display}-{self.call_id.rsplit('-', 1)[-1]}",
                           self.run_id, display)

    @classmethod
    def coerce(cls, value: Any, flow_parameters: Any = None) -> CacheKeyContext:
        """``value`` as a context: itself, or one read from a Prefect-shaped context or None.

        What Prefect code passes as ``task_ctx`` (None in its tests, or an object with
        ``task`` and ``task_run``) becomes a context with whatever of those it offers.
        """
        params = flow_parameters if isinstance(flow_parameters, Mapping) else None
        if isinstance(value, CacheKeyContext):
            if params is None or params == value.flow_parameters:
                return value
            return dataclasses.replace(value, flow_parameters=params)
        task = getattr(value, "task", None)
        run = getattr(value, "task_run", None)
        source = getattr(task, "source", None) or getattr(task, "source_code", None)
        if source is None and task is not None and callable(task):
            source = capture_source(getattr(task, "fn", task))
        flow_run_id = getattr(run, "flow_run_id", None)
        run_id = getattr(run, "id", None)
        return cls(
            task_name=str(getattr(task, "identity", "") or ""),
            task_source=str(source or ""),
            run_id=None if flow_run_id is None else str(flow_run_id),
            flow_parameters=params,
            call_id="" if run_id is None else str(run_id),
            task=task,
            parameters=getattr(value, "parameters", None),
        )


def capture_source(fn: Callable[..., Any]) -> str:
    """Return ``fn``'s dedented source text, or a stable digest of its code when it has none.

    Called at decoration so the text travels with the task when it is pickled to a worker.

    >>> def double(x):
    ...     return 2 * x
    >>> capture_source(double).splitlines()[0]
    'def double(x):'
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    # A callable instance's behaviour is its class's code: capture the class.
    target = fn if inspect.isroutine(fn) or inspect.isclass(fn) else type(fn)
    try:
        return textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        # Lambdas typed at a REPL, exec'd code, builtins: fall back to the code object.
        pass
    code = _find_code(fn)
    if code is None:
        identity = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
        return f"<no source: {identity}>"
    return f"{CODE_DIGEST_PREFIX}{code_digest(code)}>"


def _find_code(fn: Any) -> types.CodeType | None:
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        return code
    func = getattr(fn, "__func__", None)  # bound methods, classmethods, staticmethods
    if func is not None and func is not fn:
        return _find_code(func)
    # Callable instances: the code of their class's __call__.
    call_code = getattr(type(fn).__call__, "__code__", None) if callable(fn) else None
    return call_code if isinstance(call_code, types.CodeType) else None
