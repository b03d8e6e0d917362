"""``@flow``: a run with an id and parameters whose tasks share storage and settings.

A flow is not a transaction: tasks called directly in it each commit on their own.

>>> from resultkit import flow, task
>>> @flow(result_storage="/tmp/results")     # doctest: +SKIP
... def pipeline(day: str) -> None:
...     train(load(day))
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ._options import FlowOptions, retry_delay
from .context import run_context
from .errors import ConfigurationError
from .settings import pushed_layer

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
        self.signature = inspect.signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def with_options(self, **overrides: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        return Flow(self.fn, self.options.replace(**overrides))

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self if instance is None else functools.partial(self, instance)

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow; a retry keeps the run id, so completed tasks are cache hits."""
        if self.is_async:
            return self._call_async(args, kwargs)  # type: ignore[return-value]
        run_id = uuid.uuid4().hex
        for attempt in range(self.options.retries + 1):
            try:
                with self._run(run_id, args, kwargs):
                    return self.fn(*args, **kwargs)
            except Exception:
                if not self._should_retry(attempt):
                    raise
                time.sleep(retry_delay(self.options.retry_delay_seconds, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_async(self, args: Any, kwargs: Any) -> Any:
        import asyncio

        run_id = uuid.uuid4().hex
        for attempt in range(self.options.retries + 1):
            try:
                with self._run(run_id, args, kwargs):
                    return await self.fn(*args, **kwargs)  # type: ignore[misc]
            except Exception:
                if not self._should_retry(attempt):
                    raise
                await asyncio.sleep(retry_delay(self.options.retry_delay_seconds, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

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
        with run_context(run_id, self.name, bound.arguments), pushed_layer(layer, f"@flow {self.name!r}"):
            yield


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(*, name: str | None = ..., persist_result: bool | None = ..., result_storage: Any = ...,
         result_serializer: Any = ..., retries: int = ...,
         retry_delay_seconds: Any = ...) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a flow, bare (``@flow``) or with options (``@flow(retries=2)``).

    Options: ``name``, ``persist_result``, ``result_storage``, ``result_serializer``,
    ``retries``, ``retry_delay_seconds``.
    """
    flow_options = FlowOptions().replace(**options)
    if fn is not None:
        return Flow(fn, flow_options)
    return lambda f: Flow(f, flow_options)
