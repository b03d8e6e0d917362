"""``@task``: wrap a function so matching calls return a stored result instead of running.

>>> from resultkit import task
>>> from resultkit.cache_policies import INPUTS
>>> @task(cache_policy=INPUTS)            # doctest: +SKIP
... def square(x: int) -> int:
...     return x * x
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from . import _env
from ._body import run_body, run_body_async
from ._call import (
    ABSENT,
    CallPlan,
    TaskCall,
    memory_hit,
    plan_for,
    prepare_plan,
    run_with_retries,
    run_with_retries_async,
)
from ._identity import task_identity
from ._options import TaskOptions
from .errors import ConfigurationError
from .states import State

__all__ = ["Task", "task", "task_input_hash"]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


class Task(Generic[P, R]):
    """A function whose calls are cached, persisted and run in transactions.

    Made by :func:`task`; ``t.fn`` is the original function.
    """

    def __init__(self, fn: Callable[P, R], options: TaskOptions | None = None,
                 commit_hooks: tuple[Callable[..., Any], ...] = (),
                 rollback_hooks: tuple[Callable[..., Any], ...] = (),
                 source: str | None = None, captured: Mapping[str, Any] | None = None,
                 identity: str | None = None, default_no_cache: bool | None = None) -> None:
        label = getattr(fn, "__qualname__", repr(fn))
        if not callable(fn):
            raise ConfigurationError(f"@task needs a function, got {type(fn).__name__} {fn!r}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigurationError(
                f"@task cannot wrap generator function {label!r}: a generator's values are "
                "produced lazily and cannot be stored as one result; return a list instead"
            )
        options = options or TaskOptions()
        options.validate(repr(label))
        if options.cache_key_fn is not None and options.cache_policy is not None:
            warnings.warn(
                f"@task {label!r}: both cache_policy and cache_key_fn were given; cache_key_fn "
                "wins and cache_policy is ignored", UserWarning, stacklevel=3,
            )
        # fn, options and hooks live in one box that pickles with cloudpickle, so the
        # task's __dict__ pickles even with plain pickle (Prefect copies that dict).
        self._payload = _Payload(fn, options, commit_hooks, rollback_hooks)
        self.name: str = options.name or str(getattr(fn, "__name__", label))
        #: Prefect's task attributes: ``tags`` is this task's own (mutable) set.
        self.description: str | None = options.description or inspect.getdoc(fn)
        self.tags: set[str] = set(options.tags)
        if default_no_cache is None:  # read at decoration, as Prefect reads its setting
            default_no_cache = _env.env_bool("default_no_cache", False)
        self._default_no_cache = default_no_cache
        #: The policy of a task that sets neither ``cache_policy`` nor ``cache_key_fn``.
        self.default_policy: Any = _default_policy(default_no_cache)
        #: Identity used in keys: ``module.qualname`` (the module as named when imported,
        #: also for a script run as ``__main__``: see ``_identity.py``) or the ``name=`` option.
        #: ``identity`` carries it to worker processes, whose ``__main__`` is another program.
        self.identity: str = options.name or identity or task_identity(fn)
        self.signature = inspect.signature(fn)
        self._positional = _plain_positional_names(self.signature)
        #: Every parameter's name, in signature order (the names ``INPUTS`` hashes).
        self.parameter_names: tuple[str, ...] = tuple(self.signature.parameters)
        # How many positional arguments bind without ``Signature.bind`` (-1: never).
        self.positional_count = -1 if self._positional is None else len(self._positional)
        self.is_async = inspect.iscoroutinefunction(fn)
        if source is None:
            from .cache_policies.context import capture_source

            source = capture_source(fn)
        self.source: str = source
        #: What the cache policy's parts captured from ``fn`` at decoration (CODE's trace, ...).
        self.captured: dict[str, Any] = {}
        if options.cache_key_fn is None and options.cache_policy is not None:
            from .cache_policies._capture import capture_for

            self.captured = capture_for(options.cache_policy, fn, captured)
        elif captured:
            self.captured = dict(captured)
        for value in self.captured.values():
            when_final = getattr(value, "when_final", None)
            if when_final is not None:  # CODE's trace resolved on first use: plans compile again
                when_final(_plans_reset(self))
        # functools.update_wrapper, except __wrapped__: a property (self.fn), kept out of __dict__.
        for attribute in functools.WRAPPER_ASSIGNMENTS:
            if hasattr(fn, attribute):
                setattr(self, attribute, getattr(fn, attribute))
        self.__dict__.update(getattr(fn, "__dict__", {}))
        self._plans: dict[tuple[Any, ...], CallPlan] = _PlanCache()
        self._plain_body = options.timeout_seconds is None and options.log_prints is None
        prepare_plan(self)

    # -- what the task wraps ------------------------------------------------------------

    @property
    def fn(self) -> Callable[P, R]:
        """The original function (may be replaced: ``t.fn = other``, as in Prefect)."""
        return cast("Callable[P, R]", self._payload.fn)

    @fn.setter
    def fn(self, fn: Callable[P, R]) -> None:
        self._payload = self._payload.changed(fn=fn)

    @property
    def __wrapped__(self) -> Callable[P, R]:
        return cast("Callable[P, R]", self._payload.fn)

    @property
    def options(self) -> TaskOptions:
        """The validated ``@task`` options."""
        return self._payload.options

    @property
    def commit_hooks(self) -> tuple[Callable[..., Any], ...]:
        """Hooks run after this task's record is committed."""
        return self._payload.commit_hooks

    @property
    def rollback_hooks(self) -> tuple[Callable[..., Any], ...]:
        """Hooks run when this task's staged value is rolled back."""
        return self._payload.rollback_hooks

    # -- Prefect's option attributes ----------------------------------------------------

    @property
    def cache_policy(self) -> Any:
        """The policy in force, resolved as Prefect resolves ``task.cache_policy``.

        A ``cache_key_fn`` gives a ``CacheKeyFnPolicy``; ``persist_result=False`` gives
        ``NO_CACHE``; no policy gives ``DEFAULT`` (``NO_CACHE`` under
        ``RESULTKIT_DEFAULT_NO_CACHE``), or None beside a ``result_storage_key``.
        """
        from .cache_policies.policies import NO_CACHE, CacheKeyFnPolicy, NoCache

        options = self.options
        given = options.cache_policy is not None or "cache_policy" in options.given
        policy = options.cache_policy if given else self.default_policy
        if options.cache_key_fn is not None:
            policy = CacheKeyFnPolicy(options.cache_key_fn)
        if _env.env_bool("disable_caching", False):
            return NO_CACHE
        if options.persist_result is False:
            return None if given and options.cache_policy is None else NO_CACHE
        if not given and options.cache_key_fn is None and options.result_storage_key is None:
            return self.default_policy
        if options.result_storage_key is not None and not isinstance(policy, NoCache):
            return None  # the storage key names the record; no policy computes it
        return policy

    @property
    def persist_result(self) -> bool | None:
        """``persist_result`` as given, True when another option implies it, else None
        (then the enclosing flow, ``settings`` block or environment decides per call)."""
        if self.options.persist_result is not None:
            return self.options.persist_result
        return True if self.options.implies_persistence() else None

    @property
    def cache_key_fn(self) -> Callable[..., str | None] | None:
        """The ``cache_key_fn`` option."""
        return self.options.cache_key_fn

    @property
    def cache_expiration(self) -> timedelta | None:
        """The ``cache_expiration`` option."""
        return self.options.cache_expiration

    @property
    def refresh_cache(self) -> bool | None:
        """The ``refresh_cache`` option (None: ``RESULTKIT_REFRESH_CACHE`` decides)."""
        return self.options.refresh_cache

    @property
    def result_storage(self) -> Any:
        """The ``result_storage`` option as given (a storage, path, URL or slug), or None."""
        return self.options.result_storage

    @property
    def result_serializer(self) -> Any:
        """The ``result_serializer`` option as given, or None."""
        return self.options.result_serializer

    @property
    def result_storage_key(self) -> str | None:
        """The ``result_storage_key`` template, or None."""
        return self.options.result_storage_key

    @property
    def cache_result_in_memory(self) -> bool:
        """The ``cache_result_in_memory`` option."""
        return self.options.cache_result_in_memory

    @property
    def retries(self) -> int:
        """The ``retries`` option."""
        return self.options.retries

    @property
    def retry_delay_seconds(self) -> Any:
        """The ``retry_delay_seconds`` option."""
        return self.options.retry_delay_seconds

    @property
    def timeout_seconds(self) -> float | None:
        """The ``timeout_seconds`` option: each attempt is interrupted after it."""
        return self.options.timeout_seconds

    @property
    def log_prints(self) -> bool | None:
        """The ``log_prints`` option (None: as the enclosing flow says)."""
        return self.options.log_prints

    @property
    def version(self) -> str | None:
        """The ``version`` option."""
        return self.options.version

    def run_tags(self) -> list[str]:
        """This task's tags and the enclosing flow's, sorted (recorded in record headers)."""
        from .context import get_run_context

        run = get_run_context()
        tags = self.tags | set(run.tags) if run is not None and run.tags else self.tags
        return sorted(tags)

    # -- copies, hooks, pickling ----------------------------------------------------------

    def with_options(self, **overrides: Any) -> Task[P, R]:
        """A copy of this task with some options changed.

        >>> fresh = train.with_options(refresh_cache=True)  # doctest: +SKIP
        """
        overrides.setdefault("tags", self.tags)  # a copy: later changes to self.tags stay here
        return Task(self.fn, self.options.replace(**overrides), self.commit_hooks,
                    self.rollback_hooks, self.source, self.captured,
                    None if self.options.name else self.identity)

    def on_commit(self, hook: F) -> F:
        """Register ``hook(txn)`` to run after this task's record is committed."""
        self._payload = self._payload.changed(
            commit_hooks=(*self.commit_hooks, _check_hook(hook, "on_commit")))
        return hook

    def on_rollback(self, hook: F) -> F:
        """Register ``hook(txn)`` to run when this task's staged value is rolled back."""
        self._payload = self._payload.changed(
            rollback_hooks=(*self.rollback_hooks, _check_hook(hook, "on_rollback")))
        return hook

    def __reduce__(self) -> tuple[Any, ...]:
        import cloudpickle

        # cloudpickle, so the function travels by value even under plain pickle
        # (ProcessPoolExecutor) and to workers that cannot import its module.
        options = self.options.replace(tags=self.tags)
        state = (self.fn, options, self.commit_hooks, self.rollback_hooks, self.source,
                 self.captured, self.identity, self._default_no_cache)
        return (_rebuild_task, (cloudpickle.dumps(state),))

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # A task on a class is a method: bind `self`, which becomes an input.
        return self if instance is None else _BoundTask(self, instance)

    def __repr__(self) -> str:
        return f"Task({self.identity!r})"

    # -- calling ------------------------------------------------------------------------

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        """Run (or look up) the call; ``return_state=True`` returns a :class:`State`."""
        if self.is_async:
            return self._call_async(args, kwargs, return_state)
        plan = plan_for(self)
        key = digests = None
        if plan.warm is not None and not kwargs and len(args) == self.positional_count:
            key, digests, value = memory_hit(self, plan, args)
            if value is not ABSENT:
                if return_state:
                    return State("Cached", value=value, cache_key=key, reference=(plan.store, key))
                return value if plan.on_hit is None else plan.on_hit(self, value)
        call = TaskCall(self, plan, args, kwargs, key or None, digests if key else None)
        if call.begin():
            if return_state:
                return call.cached_state()
            return call.hit_value if plan.on_hit is None else plan.on_hit(self, call.hit_value)
        try:
            if self._plain_body:
                value = run_with_retries(self, lambda: self.fn(*args, **kwargs))
            else:
                value = run_with_retries(self, lambda: run_body(
                    lambda: self.fn(*args, **kwargs), label=f"task {self.name!r}",
                    timeout=self.options.timeout_seconds, log_prints=self.options.log_prints))
        except BaseException as exc:
            state = call.fail(exc)
            if return_state and isinstance(exc, Exception):
                return state
            raise
        state = call.succeed(value)
        return state if return_state else state.result()

    async def _call_async(self, args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool) -> Any:
        call = TaskCall(self, plan_for(self), args, kwargs)
        if await call.abegin():
            return call.cached_state() if return_state else call.hit_value
        try:
            value = await run_with_retries_async(self, lambda: self._body_async(args, kwargs))
        except BaseException as exc:
            state = await call.afail(exc)
            if return_state and isinstance(exc, Exception):
                return state
            raise
        state = await call.asucceed(value)
        return state if return_state else state.result()

    def _body_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._plain_body:
            return self.fn(*args, **kwargs)
        return run_body_async(lambda: self.fn(*args, **kwargs), label=f"task {self.name!r}",  # type: ignore[arg-type,return-value]
                              timeout=self.options.timeout_seconds, log_prints=self.options.log_prints)

    # -- submitting to a task runner ----------------------------------------------------

    def submit(self, *args: Any, wait_for: Any = None, return_state: bool = False,
               **kwargs: Any) -> Any:
        """Run the call on the current task runner; returns a :class:`~resultkit.futures.TaskFuture`.

        Futures among the arguments are resolved (their values passed) before the key
        is computed; ``wait_for=[futures]`` waits for calls that pass no value. The
        runner is the flow's (``@flow(task_runner=...)``), a ``settings(task_runner=...)``
        block's, else a thread pool. ``return_state=True`` waits and returns the ``State``.

        >>> future = train.submit("raw/2026-11.parquet")  # doctest: +SKIP
        >>> future.result(timeout=600)                     # doctest: +SKIP
        """
        from .task_runners import current_task_runner

        future = current_task_runner().submit(self, args, kwargs, wait_for)
        return future.state if return_state else future

    def map(self, *args: Any, wait_for: Any = None, return_state: bool = False,
            **kwargs: Any) -> Any:
        """Submit one call per element of the iterable arguments; returns a list of futures.

        Iterables are zipped (all must have the same length); ``str``, scalars and
        ``resultkit.unmapped(value)`` are passed whole to every call, as in Prefect.

        >>> add.map([1, 2, 3], unmapped([10])).result()   # doctest: +SKIP
        """
        from .task_runners import current_task_runner

        futures = current_task_runner().map(self, args, kwargs, wait_for)
        return [future.state for future in futures] if return_state else futures

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied (what ``INPUTS`` hashes)."""
        names = self._positional
        if not kwargs and names is not None and len(args) == len(names):
            return dict(zip(names, args, strict=True))  # fast path: every parameter passed positionally
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return bound.arguments

    def explain(self, *args: Any, **kwargs: Any) -> Any:
        """Why a call with these arguments would hit or miss, as an :class:`Explanation`.

        >>> print(train.explain("raw/2026-11.parquet", alpha=2))  # doctest: +SKIP
        miss: argument 'alpha' differs from record 3f2a...
        """
        from ._explain import explain_call

        return explain_call(self, args, kwargs)


class _BoundTask:
    """A task bound to an instance (``obj.method``); ``obj`` is passed as ``self``."""

    __slots__ = ("instance", "task")

    def __init__(self, task: Task[Any, Any], instance: Any) -> None:
        self.task = task
        self.instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.task(self.instance, *args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`Task.submit`, with the bound instance as ``self``."""
        return self.task.submit(self.instance, *args, **kwargs)

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`Task.map`, with the bound instance passed whole to every call."""
        from .futures import unmapped

        return self.task.map(unmapped(self.instance), *args, **kwargs)

    def explain(self, *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`Task.explain`, with the bound instance as ``self``."""
        return self.task.explain(self.instance, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)


def _plans_reset(task: Task[Any, Any]) -> Callable[[], None]:
    """A callback dropping ``task``'s cached plans (without keeping the task alive)."""
    ref = weakref.ref(task)

    def reset() -> None:
        alive = ref()
        if alive is not None:
            alive._plans = _PlanCache()

    return reset


@functools.lru_cache(maxsize=64)
def _rebuild_task(payload: bytes) -> Task[Any, Any]:
    # Memoised by the pickled bytes: a worker handed the same task call after call (t.map on
    # Dask or Ray) rebuilds it once and keeps its resolved plan and memory tier. Equal bytes
    # are an equal task, captured globals included.
    import cloudpickle

    fn, options, commit_hooks, rollback_hooks, source, captured, identity, default_no_cache = (
        cloudpickle.loads(payload))
    return Task(fn, options, commit_hooks, rollback_hooks, source, captured, identity, default_no_cache)


class _Payload:
    """What a task wraps (function, options, hooks); pickles by value with cloudpickle."""

    __slots__ = ("commit_hooks", "fn", "options", "rollback_hooks")

    def __init__(self, fn: Any, options: TaskOptions, commit_hooks: tuple[Callable[..., Any], ...],
                 rollback_hooks: tuple[Callable[..., Any], ...]) -> None:
        self.fn = fn
        self.options = options
        self.commit_hooks = commit_hooks
        self.rollback_hooks = rollback_hooks

    def changed(self, **changes: Any) -> _Payload:
        values = {name: getattr(self, name) for name in self.__slots__}
        return _Payload(**{**values, **changes})

    def __reduce__(self) -> tuple[Any, ...]:
        import cloudpickle

        state = (self.fn, self.options, self.commit_hooks, self.rollback_hooks)
        return (_unpack_payload, (cloudpickle.dumps(state),))

    def __copy__(self) -> _Payload:
        return self.changed()


def _unpack_payload(data: bytes) -> _Payload:
    import cloudpickle

    return _Payload(*cloudpickle.loads(data))


class _PlanCache(dict):  # type: ignore[type-arg]
    """A task's resolved plans: rebuilt where the task goes, never copied or pickled.

    Plans hold stores, memory tiers and locks, which cannot (and should not) travel;
    Prefect copies a task's ``__dict__`` (``@prefect.task`` over a resultkit task), so
    that dict must pickle.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_PlanCache, ())

    def __copy__(self) -> _PlanCache:
        return _PlanCache()

    def __deepcopy__(self, memo: Any) -> _PlanCache:
        return _PlanCache()


def _default_policy(no_cache: bool) -> Any:
    from .cache_policies.policies import DEFAULT, NO_CACHE

    return NO_CACHE if no_cache else DEFAULT


def task_input_hash(context: Any, arguments: Mapping[str, Any]) -> str | None:
    """Prefect's ``task_input_hash`` for ``cache_key_fn``: the task, its code and its arguments.

    The key changes with the task's identity, the bytecode of ``context.task.fn`` and
    any argument; an argument that cannot be hashed raises ``HashError``.

    >>> from resultkit.tasks import task_input_hash
    >>> @task(cache_key_fn=task_input_hash)   # doctest: +SKIP
    ... def load(day: str) -> bytes: ...
    """
    from .cache_policies.hashing import hash_value

    task_obj = getattr(context, "task", None)
    fn = getattr(task_obj, "fn", task_obj)
    code = getattr(inspect.unwrap(fn), "__code__", None) if fn is not None else None
    identity = getattr(task_obj, "identity", None) or getattr(context, "task_name", "")
    return hash_value(("task_input_hash", identity, code.co_code if code is not None else b"",
                       dict(arguments)))


def _plain_positional_names(signature: inspect.Signature) -> tuple[str, ...] | None:
    """Parameter names when all are plain positional-or-keyword ones, else None."""
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = signature.parameters.values()
    return tuple(p.name for p in params) if all(p.kind in plain for p in params) else None


def _check_hook(hook: Any, kind: str) -> Any:
    if not callable(hook):
        raise ConfigurationError(f"{kind} hook must be a callable hook(txn), got {type(hook).__name__} {hook!r}")
    return hook


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(*, name: str | None = ..., cache_policy: Any = ..., cache_key_fn: Any = ...,
         cache_expiration: Any = ..., refresh_cache: bool | None = ...,
         persist_result: bool | None = ..., result_storage: Any = ...,
         result_serializer: Any = ..., result_storage_key: str | None = ...,
         cache_result_in_memory: bool = ..., retries: int = ...,
         retry_delay_seconds: Any = ..., description: str | None = ..., tags: Any = ...,
         version: str | None = ..., timeout_seconds: float | None = ...,
         log_prints: bool | None = ...) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a task, bare (``@task``) or with options (``@task(cache_policy=INPUTS)``).

    Options: ``name``, ``cache_policy``, ``cache_key_fn``, ``cache_expiration``,
    ``refresh_cache``, ``persist_result``, ``result_storage``, ``result_serializer``,
    ``result_storage_key``, ``cache_result_in_memory``, ``retries``, ``retry_delay_seconds``,
    ``description``, ``tags``, ``version``, ``timeout_seconds``, ``log_prints``.
    """
    task_options = TaskOptions().replace(**options)
    if fn is not None:
        return Task(fn, task_options)
    return lambda f: Task(f, task_options)
