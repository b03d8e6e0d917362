"""Futures of submitted task calls (``t.submit``, ``t.map``) and ``unmapped``.

A :class:`TaskFuture` wraps the engine's own future (a ``concurrent.futures.Future``,
a ``distributed.Future`` or a Ray ``ObjectRef``); its :attr:`~TaskFuture.state` is the
same :class:`~resultkit.State` a direct ``t(..., return_state=True)`` call returns.

>>> from resultkit import task
>>> @task
... def double(x: int) -> int:
...     return 2 * x
>>> double.submit(21).result()
42
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

from .states import State

if TYPE_CHECKING:
    from .context import ContextSnapshot

__all__ = ["DoneAndNotDoneFutures", "FutureList", "TaskFuture", "as_completed", "resolve_arguments",
           "run_submitted", "unmapped", "wait"]

R = TypeVar("R")
T = TypeVar("T")


class unmapped(Generic[T]):  # lower case: Prefect's name, which users already write
    """Pass ``value`` whole to every call of ``t.map`` instead of mapping over it.

    >>> unmapped([1, 2])[7]
    [1, 2]
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __getitem__(self, index: object) -> T:
        # An infinite sequence of the same value, as in Prefect.
        return self.value

    def __eq__(self, other: object) -> bool:
        return type(other) is unmapped and other.value == self.value

    def __hash__(self) -> int:
        return hash((unmapped, self.value))  # like Prefect's (a tuple): hashable when the value is

    def __repr__(self) -> str:
        return f"unmapped({self.value!r})"


class _Outcome:
    """What a submitted call hands back through the engine: its final :class:`State`.

    Private on purpose: a worker that finds one among its arguments knows it is an
    upstream result to unwrap, never a user's value.
    """

    __slots__ = ("state",)

    def __init__(self, state: State[Any]) -> None:
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Outcome, (self.state,))


class _Engine(Protocol):
    """What a future asks of the runner that made it (``task_runners.TaskRunner``, which
    imports this module, so a future names it only by this protocol)."""

    def _native_result(self, native: Any, timeout: float | None) -> Any: ...
    def _native_done(self, native: Any) -> bool: ...
    def _native_add_done_callback(self, native: Any, fn: Callable[[Any], Any]) -> None: ...
    def _settle(self, futures: list[TaskFuture[Any]], timeout: float | None) -> None: ...


class TaskFuture(Generic[R]):
    """The result-to-be of one submitted task call.

    ``result(timeout=)`` waits and returns the value (or raises the task's exception),
    ``wait(timeout=)`` only waits, ``state`` is the final :class:`~resultkit.State`,
    ``native`` is the engine's own future.
    """

    def __init__(self, runner: _Engine, native: Any, task_name: str) -> None:
        self.runner = runner
        #: The engine's own future: ``concurrent.futures.Future``, ``distributed.Future``
        #: or ``ray.ObjectRef``.
        self.native = native
        self.task_name = task_name
        self._state: State[R] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        status = self._state.name if self._state is not None else ("done" if self.done() else "pending")
        return f"<TaskFuture {self.task_name!r} {status}>"

    def done(self) -> bool:
        """Whether the call has finished (successfully or not)."""
        return self._state is not None or self.runner._native_done(self.native)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the call finishes, or at most ``timeout`` seconds (it never raises)."""
        with contextlib.suppress(TimeoutError):
            self._final_state(timeout)

    @property
    def state(self) -> State[R]:
        """The call's final ``State`` (``Completed``, ``Cached``, ``Failed``...), waiting for it."""
        return self._final_state(None)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The call's value, waiting at most ``timeout`` seconds (``TimeoutError`` after).

        A failed call raises its exception; with ``raise_on_failure=False`` the exception
        is returned instead (as in Prefect).
        """
        state = self._final_state(timeout)
        if state.exception is not None and not raise_on_failure:
            return state.exception  # type: ignore[return-value]
        return state.result()

    def add_done_callback(self, fn: Callable[[TaskFuture[R]], Any]) -> None:
        """Call ``fn(future)`` when the call finishes (at once if it has)."""
        self.runner._native_add_done_callback(self.native, lambda _native: fn(self))

    def _final_state(self, timeout: float | None) -> State[R]:
        _check_timeout(timeout)
        state = self._state
        if state is not None:
            return state
        try:
            outcome = self.runner._native_result(self.native, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"task {self.task_name!r} did not finish within {timeout} s; wait longer with "
                "result(timeout=...) or check the engine's workers"
            ) from None
        except BaseException as exc:  # the engine itself failed (worker lost, unpicklable...)
            if not isinstance(exc, Exception):
                raise
            return self._settle_with(None, exc)
        return self._settle_with(outcome)

    def _settle_with(self, outcome: Any, error: BaseException | None = None) -> State[R]:
        """Record the engine's result (or ``error``) as this future's final state."""
        if error is not None:
            new: State[R] = State("Failed", exception=error)
        else:
            new = outcome.state if isinstance(outcome, _Outcome) else State("Completed", value=outcome)
        with self._lock:
            if self._state is None:
                self._state = new
            return self._state


def _check_timeout(timeout: object) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout < 0):
        from .errors import ConfigurationError

        raise ConfigurationError(
            f"'timeout' must be a non-negative number of seconds or None, got {timeout!r}"
        )


class FutureList(list[TaskFuture[R]]):
    """The futures ``t.map`` returns, in order, with ``wait()`` and ``result()`` for all of them."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every future (at most ``timeout`` seconds for each)."""
        with contextlib.suppress(TimeoutError):
            self._settle(timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every call's value, in order; the first failure raises (unless ``raise_on_failure=False``)."""
        self._settle(timeout)
        return [future.result(timeout, raise_on_failure) for future in self]

    def _settle(self, timeout: float | None) -> None:
        _check_timeout(timeout)
        # Each runner gathers its futures in one go where its engine can (Dask, Ray).
        by_runner: dict[int, tuple[Any, list[TaskFuture[R]]]] = {}
        for future in self:
            if future._state is None:
                by_runner.setdefault(id(future.runner), (future.runner, []))[1].append(future)
        for runner, futures in by_runner.values():
            runner._settle(futures, timeout)


class DoneAndNotDoneFutures(NamedTuple):
    """What :func:`wait` returns: the futures that finished and those that did not."""

    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def wait(futures: Iterable[TaskFuture[Any]], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait until every future finished, or ``timeout`` seconds passed in all (Prefect's ``wait``).

    >>> done, not_done = wait(futures, timeout=60)      # doctest: +SKIP
    """
    _check_timeout(timeout)
    pending = list(futures)
    deadline = None if timeout is None else time.monotonic() + timeout
    for future in pending:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        future.wait(left)
    done = {future for future in pending if future.done()}
    return DoneAndNotDoneFutures(done, set(pending) - done)


def as_completed(futures: Iterable[TaskFuture[R]], timeout: float | None = None
                 ) -> Iterator[TaskFuture[R]]:
    """Yield each future as it finishes; ``TimeoutError`` once ``timeout`` seconds passed in all.

    >>> for future in as_completed(futures):            # doctest: +SKIP
    ...     print(future.result())
    """
    _check_timeout(timeout)
    pending = list(dict.fromkeys(futures))
    finished: queue.SimpleQueue[TaskFuture[R]] = queue.SimpleQueue()
    for future in pending:
        future.add_done_callback(finished.put)
    deadline = None if timeout is None else time.monotonic() + timeout
    for count in range(len(pending)):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            future = finished.get(timeout=left)
        except queue.Empty:
            raise TimeoutError(f"{len(pending) - count} (of {len(pending)}) futures unfinished") from None
        yield future


# -- arguments ----------------------------------------------------------------------------

_SCALARS = (str, bytes, int, float, bool, type(None))


def _is_ray_ref(value: Any) -> bool:
    cls = type(value)
    return cls.__name__ == "ObjectRef" and cls.__module__.startswith("ray")


def replace_futures(value: Any, replace: Callable[[TaskFuture[Any]], Any],
                    found: list[TaskFuture[Any]]) -> Any:
    """``value`` with each future in it (also inside lists, tuples, dicts, sets) replaced.

    Futures seen are appended to ``found``; containers without futures are returned as is.
    """
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, TaskFuture):
        found.append(value)
        return replace(value)
    return _map_containers(value, lambda item: replace_futures(item, replace, found))


def _map_containers(value: Any, fn: Callable[[Any], Any]) -> Any:
    cls = type(value)
    if cls is FutureList:  # what t.map returned, passed on whole: a list of values
        return [fn(item) for item in value]
    if cls is list or cls is tuple or cls is set or cls is frozenset:
        items = [fn(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return cls(items)
    if cls is dict:
        new_items = {key: fn(item) for key, item in value.items()}
        if all(new_items[key] is item for key, item in value.items()):
            return value
        return new_items
    if isinstance(value, tuple) and hasattr(cls, "_make"):  # a namedtuple
        items = [fn(item) for item in value]
        return value if all(n is o for n, o in zip(items, value, strict=True)) else cls._make(items)
    return value


def resolve_arguments(value: Any) -> Any:
    """``value`` with every upstream result in it replaced by its value.

    An upstream future or result that failed raises its exception here, so the
    downstream call fails with the upstream's error before its key is computed.
    """
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, TaskFuture):
        return value.result()
    if isinstance(value, _Outcome):
        return value.state.result()
    if _is_ray_ref(value):  # nested refs are not resolved by Ray itself
        import ray

        return resolve_arguments(ray.get(value))
    return _map_containers(value, resolve_arguments)


def run_submitted(task: Any, snapshot: ContextSnapshot, args: tuple[Any, ...],
                  kwargs: dict[str, Any], wait_for: Iterable[Any], resolve: bool,
                  portable: bool) -> _Outcome:
    """Run one submitted call where the engine put it; never raises an ``Exception``.

    Restores the caller's run context, waits for (and unwraps) upstream results, then
    calls the task through its ordinary call path.
    """
    from .context import restore

    try:
        with restore(snapshot):
            if resolve:
                resolve_arguments(list(wait_for))
                args = resolve_arguments(args)
                kwargs = resolve_arguments(kwargs)
            if task.is_async:
                import asyncio

                state = asyncio.run(task(*args, return_state=True, **kwargs))
            else:
                state = task(*args, return_state=True, **kwargs)
    except Exception as exc:
        state = State("Failed", exception=exc)
    if portable:
        _ = state.reference  # a ResultReference travels lighter than (store, key)
    return _Outcome(state)


def iter_futures(values: Iterable[Any]) -> Iterator[TaskFuture[Any]]:
    """The futures among ``values`` (for ``wait_for=``), checked."""
    from .errors import ConfigurationError

    for value in values:
        if not isinstance(value, TaskFuture):
            raise ConfigurationError(
                f"wait_for= takes futures from t.submit() or t.map(), got {type(value).__name__} "
                f"{value!r}"
            )
        yield value
