"""``@flow``: a run with an id and parameters whose tasks share storage and settings.

A flow is not a transaction: tasks called directly in it each commit on their own.
``f(..., return_state=True)`` returns a :class:`~resultkit.states.State`; with
``persist_result=True`` the flow's own return value is stored too (``state.reference``).

>>> from resultkit import flow, task
>>> @flow(result_storage="/tmp/results")     # doctest: +SKIP
... def pipeline(day: str) -> None:
...     train(load(day))
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ._body import run_body, run_body_async
from ._options import FlowOptions, retry_delay
from ._settings import effective_settings, pushed_layer
from .context import run_context
from .errors import ConfigurationError
from .states import State

__all__ = ["Flow", "flow"]

logger = logging.getLogger("resultkit")

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A function whose calls are flow runs. Made by :func:`flow`; ``f.fn`` is the original."""

    def __init__(self, fn: Callable[P, R], options: FlowOptions | None = None) -> None:
        label = getattr(fn, "__qualname__", repr(fn))
        if not callable(fn):
            raise ConfigurationError(f"@flow needs a function, got {type(fn).__name__} {fn!r}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigurationError(f"@flow cannot wrap generator function {label!r}; return a value instead")
        options = options or FlowOptions()
        options.validate(repr(label))
        self.fn = fn
        self.options = options
        self.name: str = options.name or str(getattr(fn, "__name__", label))
        self.description: str | None = options.description or inspect.getdoc(fn)
        self.tags: set[str] = set(options.tags)
        self.version: str | None = options.version
        self.timeout_seconds: float | None = options.timeout_seconds
        self.log_prints: bool | None = options.log_prints
        self.persist_result: bool | None = options.persist_result
        self.result_storage: Any = options.result_storage
        self.result_serializer: Any = options.result_serializer
        self.retries: int = options.retries
        self.retry_delay_seconds: Any = options.retry_delay_seconds
        self.signature = inspect.signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def with_options(self, **overrides: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        overrides.setdefault("tags", self.tags)
        return Flow(self.fn, self.options.replace(**overrides))

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self if instance is None else functools.partial(self, instance)

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        """Run the flow; a retry keeps the run id, so completed tasks are cache hits.

        ``return_state=True`` returns a ``State`` (``Failed`` instead of raising).
        """
        if self.is_async:
            return self._call_async(args, kwargs, return_state)
        run_id = uuid.uuid4().hex
        for attempt in range(self.options.retries + 1):
            try:
                with self._run(run_id, args, kwargs):
                    value = run_body(lambda: self.fn(*args, **kwargs), label=f"flow {self.name!r}",
                                     timeout=self.options.timeout_seconds,
                                     log_prints=self._log_prints())
                    state = self._completed(run_id, value)
                return state if return_state else value
            except Exception as exc:
                if not self._should_retry(attempt):
                    if return_state:
                        return State("Failed", exception=exc)
                    raise
                time.sleep(retry_delay(self.options.retry_delay_seconds, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_async(self, args: Any, kwargs: Any, return_state: bool) -> Any:
        import asyncio

        run_id = uuid.uuid4().hex
        for attempt in range(self.options.retries + 1):
            try:
                with self._run(run_id, args, kwargs):
                    value: Any = await run_body_async(
                        lambda: self.fn(*args, **kwargs),  # type: ignore[arg-type,return-value]
                        label=f"flow {self.name!r}", timeout=self.options.timeout_seconds,
                        log_prints=self._log_prints())
                    state = self._completed(run_id, value)
                return state if return_state else value
            except Exception as exc:
                if not self._should_retry(attempt):
                    if return_state:
                        return State("Failed", exception=exc)
                    raise
                await asyncio.sleep(retry_delay(self.options.retry_delay_seconds, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _log_prints(self) -> bool | None:
        # A flow that says nothing prints normally, unless an enclosing flow logs prints.
        return self.options.log_prints

    def _completed(self, run_id: str, value: Any) -> State[Any]:
        """The ``Completed`` state; with ``persist_result=True`` the value is written first.

        A flow returning a task's ``State`` ends with that state's record (nothing more is
        written); one returning a collection of states persists nothing of its own.
        """
        if isinstance(value, State):
            return State("Completed", value=value, reference=value.reference)
        if self.options.persist_result is not True or _holds_states(value):
            return State("Completed", value=value)
        from .results import ResultStore

        env = effective_settings()  # inside the run: the flow's own storage and serializer
        store = ResultStore(env.result_storage, env.result_serializer)
        key = f"{_SAFE.sub('_', self.name)}-{run_id}"
        extra: dict[str, Any] = {"flow_name": self.name, "flow_run_id": run_id}
        if self.tags:
            extra["tags"] = sorted(self.tags)
        store.write(key, value, extra=extra)
        if not self.options.cache_result_in_memory:  # result() reads the record back
            return State("Completed", reference=(store, key), load_from_reference=True)
        return State("Completed", value=value, cache_key=None, reference=(store, key))

    def _should_retry(self, attempt: int) -> bool:
        if attempt >= self.options.retries:
            return False
        logger.info("flow %s failed (attempt %d of %d); retrying with the same run id",
                    self.name, attempt + 1, self.options.retries + 1)
        return True

    @contextmanager
    def _run(self, run_id: str, args: Any, kwargs: Any) -> Iterator[None]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"flow {self.name!r}: {exc}") from None
        bound.apply_defaults()
        layer = {"result_storage": self.options.result_storage,
                 "result_serializer": self.options.result_serializer,
                 "persist_result": self.options.persist_result}
        with ExitStack() as stack:
            if self.options.task_runner is not None:  # one runner per flow run, closed after it
                layer["task_runner"] = stack.enter_context(self.options.task_runner.duplicate())
            stack.enter_context(run_context(run_id, self.name, bound.arguments,
                                            tuple(sorted(self.tags)), self.version))
            stack.enter_context(pushed_layer(layer, f"@flow {self.name!r}"))
            yield


def _holds_states(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return isinstance(items, (list, tuple, set, frozenset, type({}.values()))) and any(
        isinstance(item, State) for item in items)


# Characters a flow name may hold that a storage key should not.
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(*, name: str | None = ..., persist_result: bool | None = ..., result_storage: Any = ...,
         result_serializer: Any = ..., retries: int = ..., retry_delay_seconds: Any = ...,
         description: str | None = ..., tags: Any = ..., version: str | None = ...,
         timeout_seconds: float | None = ..., log_prints: bool | None = ...,
         cache_result_in_memory: bool = ..., task_runner: Any = ...
         ) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a flow, bare (``@flow``) or with options (``@flow(retries=2)``).

    Options: ``name``, ``persist_result``, ``result_storage``, ``result_serializer``,
    ``retries``, ``retry_delay_seconds``, ``description``, ``tags``, ``version``,
    ``timeout_seconds``, ``log_prints``, ``cache_result_in_memory``, ``task_runner`` (a
    ``resultkit.task_runners`` runner for ``t.submit``/``t.map``, started for each run and
    closed after it).
    """
    flow_options = FlowOptions().replace(**options)
    if fn is not None:
        return Flow(fn, flow_options)
    return lambda f: Flow(f, flow_options)
