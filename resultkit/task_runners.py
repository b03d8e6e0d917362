"""Task runners: where ``t.submit`` and ``t.map`` run, each over an engine's own futures.

- :class:`ThreadPoolTaskRunner` (the default): ``concurrent.futures.ThreadPoolExecutor``.
- :class:`ProcessPoolTaskRunner`: ``concurrent.futures.ProcessPoolExecutor`` (spawned).
- :class:`DaskTaskRunner`: ``distributed.Client.submit`` (``pip install 'resultkit[dask]'``).
- :class:`RayTaskRunner`: ``ray.remote`` (``pip install 'resultkit[ray]'``).

Choose one with ``@flow(task_runner=...)`` (started for the flow run, closed after it)
or ``settings(task_runner=...)``. Every submitted call carries a snapshot of the
caller's run context (``resultkit.context.capture()``), so it sees the flow's run id,
parameters and defaults wherever it runs. No runner schedules anything itself: the
engine does.

>>> from resultkit import flow, task
>>> from resultkit.task_runners import ThreadPoolTaskRunner
>>> @task
... def inc(x: int) -> int:
...     return x + 1
>>> @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
... def pipeline() -> list[int]:
...     return inc.map(range(3)).result()
>>> pipeline()
[1, 2, 3]
"""

from __future__ import annotations

import abc
import atexit
import concurrent.futures as cf
import contextlib
import functools
import inspect
import itertools
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from .context import ContextSnapshot, capture
from .errors import ConfigurationError
from .futures import FutureList, TaskFuture, iter_futures, replace_futures, run_submitted, unmapped

__all__ = ["DaskTaskRunner", "ProcessPoolTaskRunner", "RayTaskRunner", "TaskRunner",
           "ThreadPoolTaskRunner", "current_task_runner"]

_R = TypeVar("_R", bound="TaskRunner")
_UNSHIPPABLE: Any = object()
# Engine keys of submitted calls: unique across processes (the token) and calls (the
# counter) without reading urandom per call, which costs ~400 us on some VMs.
_NAME_TOKEN = uuid.uuid4().hex[:12]
_call_numbers = itertools.count()


def _new_name_token() -> None:
    global _NAME_TOKEN
    _NAME_TOKEN = uuid.uuid4().hex[:12]


os.register_at_fork(after_in_child=_new_name_token)


class TaskRunner(abc.ABC):
    """Runs submitted task calls on an engine; use it with ``with`` to start and close it.

    A runner that is used before it was started starts itself and is closed at exit.
    Closing waits for every call still running.
    """

    #: Whether calls run in another process, so results cross a pickling boundary.
    portable: ClassVar[bool] = True

    def __init__(self) -> None:
        self._started = False
        self._start_lock = threading.RLock()
        self._pending: set[TaskFuture[Any]] = set()
        self._pending_lock = threading.Lock()
        self._dispatcher: cf.ThreadPoolExecutor | None = None
        #: Names this runner in context snapshots (unique in this process, never reused).
        self._token = f"runner-{next(_call_numbers)}"

    # -- life cycle ---------------------------------------------------------------------

    @abc.abstractmethod
    def duplicate(self: _R) -> _R:
        """A new, unstarted runner with the same configuration (one per flow run)."""

    @abc.abstractmethod
    def _start(self) -> None:
        """Start (or connect to) the engine."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Stop what :meth:`_start` started."""

    def start(self) -> None:
        """Start the engine (idempotent)."""
        with self._start_lock:
            if not self._started:
                self._start()
                self._started = True

    def close(self) -> None:
        """Wait for every running call, then stop what :meth:`start` started."""
        with self._start_lock:
            if not self._started:
                return
            with self._pending_lock:
                pending = list(self._pending)
            for future in pending:
                future.wait()
            if self._dispatcher is not None:
                self._dispatcher.shutdown(wait=True)
                self._dispatcher = None
            self._started = False
            self._close()

    def __enter__(self: _R) -> _R:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ensure_started(self) -> None:
        if not self._started:
            with self._start_lock:
                if not self._started:
                    self.start()
                    atexit.register(self.close)

    # -- the engine's futures -------------------------------------------------------------

    @abc.abstractmethod
    def _submit_native(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Submit ``fn(*args)`` to the engine; returns the engine's future."""

    def _native_result(self, native: Any, timeout: float | None) -> Any:
        """The engine future's result; ``TimeoutError`` after ``timeout`` seconds."""
        return native.result(timeout=timeout)

    def _native_done(self, native: Any) -> bool:
        return bool(native.done())

    def _native_add_done_callback(self, native: Any, fn: Callable[[Any], Any]) -> None:
        native.add_done_callback(fn)

    def _ship(self, future: TaskFuture[Any]) -> Any:
        """What to pass the engine for an upstream ``future``, or ``_UNSHIPPABLE``.

        By default an upstream future is passed as the engine's own future when it ran
        on this runner (the engine then waits for it), else it cannot be passed.
        """
        if future.runner is self and not isinstance(future.native, cf.Future):
            return future.native
        return _UNSHIPPABLE

    # -- submitting -----------------------------------------------------------------------

    def submit(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
               wait_for: Iterable[Any] | None = None) -> TaskFuture[Any]:
        """Submit one call of ``task``; futures among the arguments are resolved first."""
        return self._submit_all(task, [(args, kwargs)], list(iter_futures(wait_for or ())))[0]

    def _submit_all(self, task: Any, calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
                    wait_for: list[TaskFuture[Any]]) -> list[TaskFuture[Any]]:
        """Submit calls of ``task``: those with nothing to wait for here in one engine batch."""
        self._ensure_started()
        snapshot = capture()
        if not self.portable:  # same process: nested submits go to this runner too, as in Prefect
            snapshot = ContextSnapshot(snapshot.run, {**snapshot.defaults, "task_runner": self},
                                       f"{snapshot.token}+{self._token}")
        natives: list[Any] = [None] * len(calls)
        batch: list[tuple[int, str, tuple[Any, ...]]] = []
        for index, (args, kwargs) in enumerate(calls):
            upstream: list[TaskFuture[Any]] = []
            unshippable: list[TaskFuture[Any]] = []

            def ship(future: TaskFuture[Any], unshippable: list[TaskFuture[Any]] = unshippable) -> Any:
                shipped = self._ship(future)
                if shipped is _UNSHIPPABLE:
                    unshippable.append(future)
                    return future
                return shipped

            args = replace_futures(args, ship, upstream)
            kwargs = replace_futures(kwargs, ship, upstream)
            waits = [ship(f) for f in wait_for]
            resolve = bool(upstream) or bool(waits)
            call = (task, snapshot, args, kwargs, waits, resolve, self.portable)
            name = f"{task.name}-{_NAME_TOKEN}-{next(_call_numbers)}"
            if unshippable:
                natives[index] = self._dispatch(name, call, unshippable)
            else:
                batch.append((index, name, call))
        if batch:
            submitted = self._submit_natives([name for _, name, _ in batch],
                                             [call for _, _, call in batch])
            for (index, _, _), native in zip(batch, submitted, strict=True):
                natives[index] = native
        futures: list[TaskFuture[Any]] = [TaskFuture(self, native, task.name) for native in natives]
        with self._pending_lock:
            self._pending.update(futures)
        for future in futures:
            self._native_add_done_callback(future.native, functools.partial(self._forget_native, future))
        return futures

    def _forget_native(self, future: TaskFuture[Any], _native: Any) -> None:
        self._forget(future)

    def _submit_natives(self, names: list[str], calls: list[tuple[Any, ...]]) -> list[Any]:
        """Submit ``run_submitted(*call)`` for each call; engines that batch override this."""
        return [self._submit_native(name, run_submitted, *call) for name, call in zip(names, calls, strict=True)]

    def _settle(self, futures: list[TaskFuture[Any]], timeout: float | None) -> None:
        """Wait for ``futures`` of this runner; engines that gather in one call override this."""
        for future in futures:
            future._final_state(timeout)

    def _forget(self, future: TaskFuture[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def _dispatch(self, name: str, call: tuple[Any, ...], unshippable: list[TaskFuture[Any]]) -> Any:
        """Submit ``call`` once ``unshippable`` futures finished, passing their results instead.

        A helper thread waits for them (the engine cannot), then submits and waits for
        the engine's future, so what callers hold is one ``concurrent.futures.Future``.
        """
        from .futures import _Outcome

        with self._start_lock:
            if self._dispatcher is None:
                self._dispatcher = cf.ThreadPoolExecutor(max_workers=32,
                                                         thread_name_prefix="resultkit-dispatch")
        task, snapshot, args, kwargs, waits, resolve, portable = call

        def when_ready() -> Any:
            def settled(future: TaskFuture[Any]) -> Any:
                return _Outcome(future.state)

            found: list[TaskFuture[Any]] = []
            ready_args = replace_futures(args, settled, found)
            ready_kwargs = replace_futures(kwargs, settled, found)
            ready_waits = [settled(w) if isinstance(w, TaskFuture) else w for w in waits]
            native = self._submit_native(name, run_submitted, task, snapshot, ready_args,
                                         ready_kwargs, ready_waits, resolve, portable)
            return self._native_result(native, None)

        return self._dispatcher.submit(when_ready)

    def map(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
            wait_for: Iterable[Any] | None = None) -> FutureList[Any]:
        """Submit one call per element of the iterable arguments (Prefect's ``map``)."""
        waits = list(iter_futures(wait_for or ()))
        return FutureList(self._submit_all(task, expand_map_arguments(task, args, kwargs), waits))


def expand_map_arguments(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
                         ) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The ``(args, kwargs)`` of each mapped call: iterables zipped, ``unmapped`` and scalars repeated.

    Top-level futures are waited for first, so a future returning a list is mapped over.
    ``str``, ``bytes`` and file objects count as scalars, as in Prefect.
    """
    try:
        bound = task.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"task {task.name!r}: {exc}") from None
    mapped: dict[str, list[Any]] = {}
    constant: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = task.signature.parameters[name].kind
        if isinstance(value, TaskFuture):
            value = value.result()
        if isinstance(value, unmapped):
            constant[name] = value.value
        elif kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            constant[name] = value
        elif _is_mappable(value):
            mapped[name] = list(value)
        else:
            constant[name] = value
    if not mapped:
        raise ConfigurationError(
            f"{task.name}.map() got no iterable argument to map over (arguments: "
            f"{', '.join(bound.arguments) or 'none'}); pass a list, range or other iterable, "
            "or call .submit() for a single call"
        )
    lengths = {name: len(values) for name, values in mapped.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigurationError(
            f"{task.name}.map() got iterables of different lengths {lengths}; make them equal, "
            "or wrap a constant iterable in resultkit.unmapped(...)"
        )
    calls = []
    for index in range(next(iter(lengths.values()))):
        arguments = {**constant, **{name: values[index] for name, values in mapped.items()}}
        ordered = {name: arguments[name] for name in bound.arguments}
        call = inspect.BoundArguments(task.signature, ordered)  # type: ignore[arg-type]
        calls.append((call.args, call.kwargs))
    return calls


def _is_mappable(value: Any) -> bool:
    import io

    if isinstance(value, (str, bytes, bytearray, io.IOBase)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


# -- threads and processes --------------------------------------------------------------------


class ThreadPoolTaskRunner(TaskRunner):
    """Calls in threads of this process (``concurrent.futures.ThreadPoolExecutor``); the default.

    ``max_workers=None`` sets no limit, as in Prefect: a thread is started whenever no idle
    one is free, so tasks that submit tasks and wait for them can never deadlock the pool.
    """

    portable = False

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        _check_workers("ThreadPoolTaskRunner", max_workers)
        self.max_workers = max_workers
        self._executor: cf.ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers!r})"

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers)

    def _start(self) -> None:
        self._executor = cf.ThreadPoolExecutor(self.max_workers or sys.maxsize,
                                               thread_name_prefix="resultkit-task")

    def _close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _ship(self, future: TaskFuture[Any]) -> Any:
        # Same process: the worker thread waits for any future itself. Upstream calls were
        # submitted earlier, so they are ahead in the queue: waiting cannot deadlock.
        return future

    def _submit_native(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        return self._executor.submit(fn, *args)


class ProcessPoolTaskRunner(TaskRunner):
    """Calls in spawned worker processes (``concurrent.futures.ProcessPoolExecutor``).

    Tasks travel pickled (by value, with cloudpickle); arguments and results must pickle.
    ``max_workers=None`` is the number of CPUs.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        _check_workers("ProcessPoolTaskRunner", max_workers)
        self.max_workers = max_workers
        self._executor: cf.ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers!r})"

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def _start(self) -> None:
        import multiprocessing

        # Spawned, not forked: a fork of a process with threads (ours, s3fs's, the
        # engine's) can deadlock in the child.
        self._executor = cf.ProcessPoolExecutor(self.max_workers,
                                                mp_context=multiprocessing.get_context("spawn"))

    def _close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _ship(self, future: TaskFuture[Any]) -> Any:
        return _UNSHIPPABLE  # a concurrent.futures.Future cannot travel to another process

    def _submit_native(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        return self._executor.submit(fn, *args)


def _check_workers(kind: str, max_workers: Any) -> None:
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                    or max_workers < 1):
        raise ConfigurationError(f"{kind}(max_workers={max_workers!r}): use an int >= 1, or None")


# -- Dask -------------------------------------------------------------------------------------


def _import_extra(module: str, extra: str, runner: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"{runner} needs {module.split('.')[0]!r}, which is not installed ({exc}): "
            f"pip install 'resultkit[{extra}]'"
        ) from None


class DaskTaskRunner(TaskRunner):
    """Calls on a Dask cluster through ``distributed.Client.submit`` (prefect-dask's arguments).

    - ``address``: a scheduler address (``"tcp://host:8786"``) to connect to;
    - ``cluster``: a running cluster object, or ``client``: a ``distributed.Client``, used as is;
    - otherwise a cluster of ``cluster_class`` (default ``distributed.LocalCluster``, or an
      import path such as ``"dask_kubernetes.KubeCluster"``) made with ``cluster_kwargs``
      is started for the flow run and closed after it; ``adapt_kwargs`` make it adaptive.

    ``client_kwargs`` go to ``distributed.Client``. Upstream futures are passed to Dask as
    its own futures, so it moves results between workers itself.
    """

    def __init__(self, address: str | None = None, cluster_class: Any = None,
                 cluster_kwargs: Mapping[str, Any] | None = None,
                 client_kwargs: Mapping[str, Any] | None = None, *,
                 adapt_kwargs: Mapping[str, Any] | None = None,
                 cluster: Any = None, client: Any = None) -> None:
        super().__init__()
        given = [name for name, value in (("address", address), ("cluster", cluster),
                                          ("client", client)) if value is not None]
        if len(given) > 1:
            raise ConfigurationError(
                f"DaskTaskRunner got {' and '.join(given)}; pass only one of address=, cluster=, client="
            )
        if address is not None and not isinstance(address, str):
            raise ConfigurationError(
                f"DaskTaskRunner(address={address!r}): use a scheduler address such as "
                "'tcp://127.0.0.1:8786' (pass a Client as client=, a cluster as cluster=)"
            )
        if given and (cluster_class is not None or cluster_kwargs):
            raise ConfigurationError(
                f"DaskTaskRunner: cluster_class/cluster_kwargs describe a cluster to start, but "
                f"{given[0]}= names one already running; drop one of them"
            )
        for name, value in (("cluster_kwargs", cluster_kwargs), ("adapt_kwargs", adapt_kwargs),
                            ("client_kwargs", client_kwargs)):
            if value is not None and not isinstance(value, Mapping):
                raise ConfigurationError(f"DaskTaskRunner({name}={value!r}): use a dict of keyword arguments")
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self.cluster = cluster
        self.client: Any = client
        self._own_client = False
        self._own_cluster = False

    def __repr__(self) -> str:
        where = self.address or (self.cluster and repr(self.cluster)) or (self.client and repr(self.client))
        return f"DaskTaskRunner({where or 'LocalCluster'})"

    def duplicate(self) -> DaskTaskRunner:
        return DaskTaskRunner(self.address, self.cluster_class, self.cluster_kwargs, self.client_kwargs,
                              adapt_kwargs=self.adapt_kwargs,
                              cluster=self.cluster if not self._own_cluster else None,
                              client=self.client if not self._own_client else None)

    def _start(self) -> None:
        distributed = _import_extra("distributed", "dask", "DaskTaskRunner")
        if self.client is not None and not self._own_client:
            return
        if self.address is None and self.cluster is None:
            cluster_class = self.cluster_class or distributed.LocalCluster
            if isinstance(cluster_class, str):
                module, _, name = cluster_class.rpartition(".")
                cluster_class = getattr(_import_extra(module, "dask", "DaskTaskRunner"), name)
            self.cluster = cluster_class(**self.cluster_kwargs)
            self._own_cluster = True
            if self.adapt_kwargs:
                self.cluster.adapt(**self.adapt_kwargs)
        target = self.address if self.address is not None else self.cluster
        self.client = distributed.Client(target, **self.client_kwargs)
        self._own_client = True

    def _close(self) -> None:
        if self._own_client and self.client is not None:
            self.client.close()
            self.client = None
            self._own_client = False
        if self._own_cluster and self.cluster is not None:
            self.cluster.close()
            self.cluster = None
            self._own_cluster = False

    def _submit_native(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, key=name, pure=False)

    def _submit_natives(self, names: list[str], calls: list[tuple[Any, ...]]) -> list[Any]:
        if len(calls) == 1:
            return [self._submit_native(names[0], run_submitted, *calls[0])]
        # One client.map: one message to the scheduler for the whole batch.
        return list(self.client.map(run_submitted, *zip(*calls, strict=True), key=names, pure=False))

    def _settle(self, futures: list[TaskFuture[Any]], timeout: float | None) -> None:
        distributed: Any = _import_extra("distributed", "dask", "DaskTaskRunner")
        natives = [f.native for f in futures if isinstance(f.native, distributed.Future)]
        if len(natives) > 1:
            # A timeout is left to the one-by-one settling below, which names the late task.
            with contextlib.suppress(TimeoutError):
                distributed.wait(natives, timeout=timeout)
            finished = [n for n in natives if n.status == "finished"]
            outcomes = dict(zip((n.key for n in finished), self.client.gather(finished), strict=True))
            for future in futures:  # one round trip above for every result
                if future.native.key in outcomes:
                    future._settle_with(outcomes[future.native.key])
        super()._settle(futures, timeout)


# -- Ray --------------------------------------------------------------------------------------


class RayTaskRunner(TaskRunner):
    """Calls as Ray tasks through ``ray.remote`` (prefect-ray's arguments).

    With Ray already initialised in this process, that Ray is used (and left running);
    otherwise ``ray.init(address, **init_kwargs)`` is called at start (``address=None``
    starts a local Ray) and ``ray.shutdown()`` at close. Upstream futures are passed as
    Ray ``ObjectRef``s.
    """

    def __init__(self, address: str | None = None, init_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if address is not None and not isinstance(address, str):
            raise ConfigurationError(
                f"RayTaskRunner(address={address!r}): use a Ray address such as 'ray://host:10001' or 'auto'"
            )
        if init_kwargs is not None and not isinstance(init_kwargs, Mapping):
            raise ConfigurationError(f"RayTaskRunner(init_kwargs={init_kwargs!r}): use a dict of ray.init arguments")
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self._own_ray = False
        self._remote: Any = None
        self._named: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RayTaskRunner({self.address or 'local'!r})"

    def duplicate(self) -> RayTaskRunner:
        return RayTaskRunner(self.address, self.init_kwargs)

    def _start(self) -> None:
        ray = _import_extra("ray", "ray", "RayTaskRunner")
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
            self._own_ray = True
        self._remote = ray.remote(run_submitted)

    def _close(self) -> None:
        self._remote = None
        self._named.clear()
        if self._own_ray:
            import ray

            ray.shutdown()
            self._own_ray = False

    def _submit_native(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        label = name.rsplit("-", 2)[0]  # the task's name, shown in Ray's dashboard
        remote = self._named.get(label)
        if remote is None:  # .options() builds a new wrapper: once per task name, not per call
            remote = self._named[label] = self._remote.options(name=label)
        return remote.remote(*args)

    # A call that waited for futures of another runner is a dispatcher's
    # concurrent.futures.Future (see TaskRunner._dispatch), not an ObjectRef.

    def _native_result(self, native: Any, timeout: float | None) -> Any:
        if isinstance(native, cf.Future):
            return super()._native_result(native, timeout)
        ray = _ray()
        try:
            return ray.get(native, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise TimeoutError(f"Ray object {native} not ready within {timeout} s") from None

    def _native_done(self, native: Any) -> bool:
        if isinstance(native, cf.Future):
            return native.done()
        ready, _ = _ray().wait([native], timeout=0)
        return bool(ready)

    def _native_add_done_callback(self, native: Any, fn: Callable[[Any], Any]) -> None:
        if isinstance(native, cf.Future):
            native.add_done_callback(fn)
        else:
            native.future().add_done_callback(fn)

    def _settle(self, futures: list[TaskFuture[Any]], timeout: float | None) -> None:
        refs = [f for f in futures if not isinstance(f.native, cf.Future)]
        if len(refs) > 1:
            ray = _ray()
            ready, _ = ray.wait([f.native for f in refs], num_returns=len(refs), timeout=timeout)
            settled = [f for f in refs if f.native in ready]
            try:
                outcomes = ray.get([f.native for f in settled])  # one call for every result
            except Exception:  # a failed Ray task among them: settle one by one below
                outcomes = None
            if outcomes is not None:
                for future, outcome in zip(settled, outcomes, strict=True):
                    future._settle_with(outcome)
        super()._settle(futures, timeout)


def _ray() -> Any:
    import ray

    return ray


# -- which runner --------------------------------------------------------------------------------

_default_runner: ThreadPoolTaskRunner | None = None
_default_lock = threading.Lock()


def current_task_runner() -> TaskRunner:
    """The runner of the innermost flow or ``settings(task_runner=...)`` block, else the default.

    The default is one ``ThreadPoolTaskRunner`` per process, started on first use.
    """
    from ._settings import current_layer

    runner = current_layer().values.get("task_runner")
    if runner is not None:
        return runner  # type: ignore[no-any-return]
    global _default_runner
    with _default_lock:
        if _default_runner is None:
            _default_runner = ThreadPoolTaskRunner()
        return _default_runner
