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
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

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

__all__ = ["Task", "task"]

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
                 identity: str | None = None) -> None:
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
        self.fn = fn
        self.options = options
        self.commit_hooks = commit_hooks
        self.rollback_hooks = rollback_hooks
        self.name: str = options.name or str(getattr(fn, "__name__", label))
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
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        self._init_runtime()
        prepare_plan(self)

    def _init_runtime(self) -> None:
        self._plans: dict[tuple[Any, ...], CallPlan] = {}
        self._lock = threading.Lock()

    # -- copies, hooks, pickling ----------------------------------------------------------

    def with_options(self, **overrides: Any) -> Task[P, R]:
        """A copy of this task with some options changed.

        >>> fresh = train.with_options(refresh_cache=True)  # doctest: +SKIP
        """
        return Task(self.fn, self.options.replace(**overrides), self.commit_hooks,
                    self.rollback_hooks, self.source, self.captured,
                    None if self.options.name else self.identity)

    def on_commit(self, hook: F) -> F:
        """Register ``hook(txn)`` to run after this task's record is committed."""
        self.commit_hooks = (*self.commit_hooks, _check_hook(hook, "on_commit"))
        return hook

    def on_rollback(self, hook: F) -> F:
        """Register ``hook(txn)`` to run when this task's staged value is rolled back."""
        self.rollback_hooks = (*self.rollback_hooks, _check_hook(hook, "on_rollback"))
        return hook

    def __reduce__(self) -> tuple[Any, ...]:
        import cloudpickle

        # cloudpickle, so the function travels by value even under plain pickle
        # (ProcessPoolExecutor) and to workers that cannot import its module.
        state = (self.fn, self.options, self.commit_hooks, self.rollback_hooks, self.source,
                 self.captured, self.identity)
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
        key = None
        if plan.warm is not None and not kwargs and len(args) == self.positional_count:
            key, value = memory_hit(self, plan, args)
            if value is not ABSENT:
                return State("Cached", value=value, cache_key=key,
                             reference=(plan.store, key)) if return_state else value
        call = TaskCall(self, plan, args, kwargs, key or None)
        if call.begin():
            return call.cached_state() if return_state else call.hit_value
        try:
            value = run_with_retries(self, lambda: self.fn(*args, **kwargs))
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
            value = await run_with_retries_async(self, lambda: self.fn(*args, **kwargs))
        except BaseException as exc:
            state = await call.afail(exc)
            if return_state and isinstance(exc, Exception):
                return state
            raise
        state = await call.asucceed(value)
        return state if return_state else state.result()

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
            alive._plans = {}

    return reset


def _rebuild_task(payload: bytes) -> Task[Any, Any]:
    import cloudpickle

    fn, options, commit_hooks, rollback_hooks, source, captured, identity = cloudpickle.loads(payload)
    return Task(fn, options, commit_hooks, rollback_hooks, source, captured, identity)


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
         retry_delay_seconds: Any = ...) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a task, bare (``@task``) or with options (``@task(cache_policy=INPUTS)``).

    Options: ``name``, ``cache_policy``, ``cache_key_fn``, ``cache_expiration``,
    ``refresh_cache``, ``persist_result``, ``result_storage``, ``result_serializer``,
    ``result_storage_key``, ``cache_result_in_memory``, ``retries``, ``retry_delay_seconds``.
    """
    task_options = TaskOptions().replace(**options)
    if fn is not None:
        return Task(fn, task_options)
    return lambda f: Task(f, task_options)
