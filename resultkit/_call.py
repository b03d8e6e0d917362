"""One task call: resolve options -> key -> BEGIN (lookup) -> run -> STAGE -> COMMIT -> State.

``Task`` (in ``tasks.py``) owns the options; this module owns what happens per call.
The steps are separate methods of :class:`TaskCall` so the sync and async faces in
``tasks.py`` share everything but the body call and the retry sleep.

A hit is the hot path, so BEGIN looks the key up (memory tier, then one storage read)
before any transaction is built: a transaction that finds a record at BEGIN commits
with nothing staged, no lock held and no hook run, so skipping it changes nothing.
On a miss the transaction is told the lookup was done and does not read again.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ._memory import ABSENT, MemoryTier
from ._options import TaskOptions, retry_delay
from ._prefect import adopt_prefect_logging, cached_for_prefect, prefect_is_configured
from ._settings import EffectiveSettings, effective_settings, settings_fingerprint
from .cache_policies._compiled import CompiledKey, compile_key
from .cache_policies.context import CacheKeyContext
from .cache_policies.hashing import hash_value
from .cache_policies.policies import NO_CACHE, CacheKeyFnPolicy
from .context import FlowRunInfo, get_run_context
from .errors import ConfigurationError, StorageError
from .results import ResultStore
from .states import State
from .storage.base import Storage, validate_key
from .transactions import Transaction, get_transaction, register_default_store, transaction

__all__ = ["ABSENT", "CallPlan", "MemoryTier", "TaskCall", "memory_hit", "plan_for", "prepare_plan",
           "run_with_retries", "run_with_retries_async"]

logger = logging.getLogger("resultkit")

# Call ids: a random per-process token plus a counter. As unique as uuid4 per call, but
# without a urandom syscall on every call (the hot path builds one per call).
_process_token = uuid.uuid4().hex
_call_counter = itertools.count()


def _new_process_token() -> None:
    global _process_token
    _process_token = uuid.uuid4().hex


os.register_at_fork(after_in_child=_new_process_token)


def _next_call_id() -> str:
    return f"{_process_token}-{next(_call_counter)}"


@dataclass
class CallPlan:
    """What a task's options resolve to under one settings fingerprint (cached per task)."""

    settings: EffectiveSettings
    persist: bool
    #: None when the task does not persist or caching is disabled: no storage I/O at all.
    store: ResultStore | None
    #: The policy computing keys, or None for "no lookup" (NO_CACHE, not persisting).
    policy: Any
    memory: MemoryTier | None
    storage_label: str
    #: ``refresh_cache`` in force: skip the lookup, run and overwrite.
    refresh: bool = False
    #: The policy compiled for this task when its key depends on the arguments alone.
    compiled: CompiledKey | None = None
    #: ``compiled`` when a warm hit may be served from ``memory`` before anything else.
    warm: CompiledKey | None = None
    #: The task names its storage (so an enclosing transaction's store does not replace it).
    own_storage: bool = False
    #: Under Prefect: turns a hit's value into what the caller gets (``_prefect.cached_for_prefect``).
    on_hit: Callable[[Any, Any], Any] | None = None


def _is_no_cache(policy: Any) -> bool:
    return policy is NO_CACHE or type(policy) is type(NO_CACHE)


def plan_for(task: Any) -> CallPlan:
    """The plan of ``task`` for the current settings; built once per fingerprint."""
    fingerprint = settings_fingerprint()
    plan: CallPlan | None = task._plans.get(fingerprint)
    if plan is None:
        plan = _build_plan(task)
        cache = task._plans
        if len(cache) > 32:  # settings blocks are usually few; don't grow without bound
            cache.clear()
        cache[fingerprint] = plan
    return plan


def _storage_key_of(policy: Any, key: str) -> str:
    """A policy's key where it meets storage: unusable as a storage key is a ``ConfigurationError``.

    Built-in policies give hex digests; a ``cache_key_fn`` or a custom ``compute_key``
    gives its string as the storage key, so it is checked here, naming where it came from.
    """
    try:
        return validate_key(key)
    except StorageError as err:
        fn = getattr(policy, "cache_key_fn", None)
        source = (f"cache_key_fn {getattr(fn, '__qualname__', repr(fn))}" if fn is not None
                  else f"cache policy {type(policy).__qualname__}.compute_key")
        raise ConfigurationError(
            f"{source} returned {key!r}, which is not a usable storage key: {err}"
        ) from None


def prepare_plan(task: Any) -> None:
    """Build ``task``'s plan for the settings in force now, when that is cheap and safe.

    Called at decoration, so a process's first call (often a hit) does not pay for
    resolving settings, storage and serializer. Only local storage is prepared (remote
    backends import their client libraries, which a module that is imported but never
    calls the task should not pay for), and nothing raises or warns here: a problem
    surfaces at the first call, as it would without this.
    """
    try:
        options: TaskOptions = task.options
        spec = options.result_storage
        if spec is None:
            spec = getattr(options.cache_policy, "key_storage", None)
        if spec is None:
            spec = effective_settings().result_storage
        if isinstance(spec, (Storage, os.PathLike)) or (
            isinstance(spec, str) and "://" not in spec and (os.path.isabs(spec) or spec[:1] in ".~")
        ):
            _warm_up(plan_for(task))
    except Exception:
        logger.debug("task %s: plan not prepared at decoration", task.name, exc_info=True)


_warmed_up = False
# Never a real record: the key segment ".rk-" is reserved, so no user key can equal it.
_WARM_UP_KEY = ".rk-warm-up"


def _warm_up(plan: CallPlan) -> None:
    """Once per process: run a hit's decode steps so the first real call does not pay first use.

    A fresh process's first hit cost ~10x a later one (first use of orjson, xxhash,
    pickle, datetime parsing and the logging level cache); here, at decoration, that
    costs a few hundred microseconds once, with no storage I/O.
    """
    global _warmed_up
    if _warmed_up or plan.store is None:
        return
    _warmed_up = True
    plan.store.warm_up()
    logger.isEnabledFor(logging.INFO)
    hash_value(0)
    if plan.memory is not None:  # an absent key: nothing is kept
        plan.memory.get(_WARM_UP_KEY)
        plan.memory.put(_WARM_UP_KEY, None, None)


def _build_plan(task: Any) -> CallPlan:
    adopt_prefect_logging()  # a plan is built at a task's first call: Prefect is set up by then
    options: TaskOptions = task.options
    env = effective_settings()
    refresh = options.refresh_cache if options.refresh_cache is not None else env.refresh_cache
    if options.persist_result is not None:
        persist = options.persist_result
    elif options.implies_persistence():
        persist = True
    else:
        persist = env.persist_result
    if not persist or env.disable_caching:
        return CallPlan(env, persist and not env.disable_caching, None, None, None, "", refresh)
    if options.cache_key_fn is not None:
        policy: Any = CacheKeyFnPolicy(options.cache_key_fn)
    else:
        policy = options.cache_policy if options.cache_policy is not None else task.default_policy
    if env.isolation_level is not None and getattr(policy, "isolation_level", None) is None \
            and dataclasses.is_dataclass(policy) and not isinstance(policy, type):
        # The default isolation of settings()/RESULTKIT_ISOLATION_LEVEL; a policy's own wins.
        policy = dataclasses.replace(policy, isolation_level=env.isolation_level)
    storage_spec = options.result_storage
    if storage_spec is None:  # a policy's key_storage counts as the task's own option
        storage_spec = getattr(policy, "key_storage", None)
    store = ResultStore(
        storage_spec if storage_spec is not None else env.result_storage,
        options.result_serializer if options.result_serializer is not None else env.result_serializer,
    )
    storage = store.storage
    if _is_no_cache(policy) and options.result_storage_key is None:
        policy = None
    compiled = None
    if policy is not None and options.result_storage_key is None:
        # The transaction settings are checked here, once: a hit never builds a transaction.
        transaction(isolation_level=getattr(policy, "isolation_level", None),
                    lock_manager=getattr(policy, "lock_manager", None))
        compiled = compile_key(policy, task.identity, task.source, task.parameter_names,
                               captured=task.captured)
    memory = MemoryTier(storage) if options.cache_result_in_memory else None
    warm = compiled if memory is not None and not refresh else None
    on_hit = cached_for_prefect if prefect_is_configured() else None
    return CallPlan(env, True, store, policy, memory, storage.describe(), refresh, compiled, warm,
                    own_storage=storage_spec is not None, on_hit=on_hit)


def memory_hit(task: Any, plan: CallPlan, args: Sequence[Any]) -> tuple[str, tuple[str, ...], Any]:
    """``(key, digests, value)`` of a warm hit served from memory, or ``(key, digests, ABSENT)``.

    For calls passing every parameter positionally to a task whose plan has a ``warm``
    key; the hottest path, so it skips building a :class:`TaskCall`. ``digests`` are the
    argument digests the key was made of (for the record's key parts on a miss).
    """
    assert plan.warm is not None and plan.memory is not None
    key, digests = plan.warm.with_digests(args)
    if key is None:
        return "", (), ABSENT
    value = plan.memory.get(key)
    if value is not ABSENT and logger.isEnabledFor(logging.INFO):
        logger.info("cache hit: task %s, key %s, storage %s (memory tier)", task.name, key[:12],
                    plan.storage_label)
    return key, digests, value


class TaskCall:
    """The state of one call between its steps."""

    __slots__ = ("_cache_context", "_call_id", "_digests", "_expiration", "_inputs", "_looked_up",
                 "_parts", "_txn", "args", "hit_value", "key", "kwargs", "plan", "task")

    def __init__(self, task: Any, plan: CallPlan, args: Sequence[Any], kwargs: dict[str, Any],
                 key: str | None = None, digests: tuple[str, ...] | None = None) -> None:
        self.task = task
        self.plan = plan
        self.args = args
        self.kwargs = kwargs
        self._inputs: Mapping[str, Any] | None = None
        self._call_id: str | None = None
        #: The cache key; given when the caller computed it and already checked memory.
        self.key: str | None = key
        self.hit_value: Any = None
        #: The open transaction of a miss (entered by ``begin``, exited by ``succeed``/``fail``).
        self._txn: Any = None
        self._cache_context: Any = None
        self._looked_up = False
        self._expiration: datetime | None = None
        #: The argument digests of a compiled key (given with ``key``), for the key parts.
        self._digests: tuple[str, ...] | None = digests
        #: The key parts computed with the key by a policy that is not compiled.
        self._parts: dict[str, Any] | None = None

    @property
    def inputs(self) -> Mapping[str, Any]:
        """The call's arguments by parameter name, defaults applied (bound on first use)."""
        if self._inputs is None:
            self._inputs = self.task.bind(self.args, self.kwargs)
        return self._inputs

    @property
    def call_id(self) -> str:
        """Unique id of this call (the task run id), made on first use."""
        if self._call_id is None:
            self._call_id = _next_call_id()
        return self._call_id

    # -- key ------------------------------------------------------------------------

    def compute_key(self) -> str | None:
        """The cache key (also the storage key), or None when this call is not cached.

        Computed once per call, with its parts: each argument is hashed once and a
        ``cache_key_fn`` runs once; :meth:`key_parts` returns what this derived.
        """
        plan, options = self.plan, self.task.options
        if plan.store is None:
            return None
        compiled = plan.compiled
        if compiled is not None and not self.kwargs and self._inputs is None \
                and len(self.args) == self.task.positional_count:
            # Every parameter passed positionally: no binding, no inputs mapping.
            self.key, self._digests = compiled.with_digests(self.args)
            return self.key
        inputs = self.inputs  # binding checks the arguments before anything runs
        if compiled is not None:
            self.key, self._digests = compiled.inputs_with_digests(inputs)
        elif options.result_storage_key is not None:
            self.key = self._format_storage_key(options.result_storage_key)
        elif plan.policy is not None:
            key, self._parts = plan.policy.key_with_parts(self.cache_context(), inputs)
            self.key = None if key is None else _storage_key_of(plan.policy, key)
        return self.key

    def cache_context(self) -> Any:
        """The ``CacheKeyContext`` policies and key functions read for this call."""
        if self._cache_context is None:
            run = get_run_context()
            self._cache_context = CacheKeyContext(
                task_name=self.task.identity,
                task_source=self.task.source,
                run_id=run.run_id if run else None,
                flow_parameters=run.parameters if run else None,
                call_id=self.call_id,
                captured=self.task.captured,
                task=self.task,
                parameters=self.inputs,
            )
        return self._cache_context

    def key_parts(self) -> dict[str, Any] | None:
        """The key's parts (for explainable misses), as :meth:`compute_key` derived them."""
        if self.plan.policy is None or self.task.options.result_storage_key is not None:
            return None
        if self._digests is not None and self.plan.compiled is not None:
            return self.plan.compiled.parts(self._digests) if self.key is not None else None
        return self._parts

    def _format_storage_key(self, template: str) -> str:
        run = get_run_context()
        context = self.cache_context()
        try:
            key = template.format(
                parameters=self.inputs, task_name=self.task.name,
                flow_name=run.flow_name if run else None,
                flow_run_id=run.run_id if run else None, task_run_id=self.call_id,
                flow_run=FlowRunInfo.of(run), task_run=context.task_run,
            )
        except (KeyError, IndexError, AttributeError) as exc:
            raise ConfigurationError(
                f"task {self.task.name!r}: result_storage_key {template!r} cannot be filled for "
                f"this call ({type(exc).__name__}: {exc}); parameters are {sorted(self.inputs)}"
            ) from None
        return validate_key(key)

    # -- BEGIN ----------------------------------------------------------------------

    def begin(self) -> bool:
        """Look the key up: True on a hit (the value is in ``hit_value``), else False.

        After False the call's transaction is open and the body must run.
        """
        txn = self._lookup_then_transaction()
        if txn is None:
            return True
        return self._opened(txn.begin(known_miss=self._looked_up))

    async def abegin(self) -> bool:
        """:meth:`begin` for async tasks: a wait for a SERIALIZABLE lock is awaited."""
        txn = self._lookup_then_transaction()
        if txn is None:
            return True
        return self._opened(await txn.abegin(known_miss=self._looked_up))

    def _store(self) -> ResultStore | None:
        """The task's store, or the enclosing transaction's when the task names no storage."""
        store = self.plan.store
        if store is None or self.plan.own_storage:
            return store
        parent = get_transaction()
        parent_store = parent.store if parent is not None else None
        return parent_store if isinstance(parent_store, ResultStore) else store

    def _lookup_then_transaction(self) -> Transaction | None:
        """The hit path (memory tier, then one storage read); on a miss, the call's transaction."""
        plan = self.plan
        memory_checked = self.key is not None
        key = self.key if memory_checked else self.compute_key()
        store = self._store()
        self._looked_up = False
        if key is not None and not plan.refresh:
            memory = plan.memory
            if memory is not None and not memory_checked and store is plan.store:
                value = memory.get(key)
                if value is not ABSENT:
                    self._hit(key, value, " (memory tier)")
                    return None
            assert store is not None  # a key implies a store
            record = store.lookup(key)
            if record is not None:
                self._hit(key, record.result, "")
                if memory is not None and store is plan.store:
                    memory.put(key, record.result, record.metadata.expiration)
                return None
            self._looked_up = True
        policy = plan.policy
        return transaction(
            key=key if key is not None else (None if store is None else self._random_key()),
            store=store,
            isolation_level=getattr(policy, "isolation_level", None) if key is not None else None,
            lock_manager=getattr(policy, "lock_manager", None) if key is not None else None,
            overwrite=plan.refresh or key is None,
        )

    def _opened(self, txn: Transaction) -> bool:
        """After BEGIN: True if the transaction found the record (a holder committed meanwhile)."""
        key, record = self.key, txn.record
        if key is not None and record is not None and txn.is_committed():
            txn.finish()
            self._hit(key, record.result, "")
            if self.plan.memory is not None and txn.store is self.plan.store:
                self.plan.memory.put(key, record.result, record.metadata.expiration)
            return True
        self._txn = txn
        if key is not None and logger.isEnabledFor(logging.INFO):
            logger.info("cache miss: task %s, key %s, storage %s", self.task.name, key[:12],
                        self.plan.storage_label)
        return False

    def _hit(self, key: str, value: Any, where: str) -> None:
        self.hit_value = value
        if logger.isEnabledFor(logging.INFO):
            logger.info("cache hit: task %s, key %s, storage %s%s", self.task.name, key[:12],
                        self.plan.storage_label, where)

    def cached_state(self) -> State[Any]:
        """The ``Cached`` state of a hit."""
        return State("Cached", value=self.hit_value, cache_key=self.key,
                     reference=self._reference(self.key))

    def _random_key(self) -> str:
        # NO_CACHE (or a key function returning None) with persistence: the record is kept
        # for its reference but never looked up.
        return f"{self.task.name.replace('/', '_').replace('.', '_')}-{self.call_id}"

    def _reference(self, key: str | None) -> Any:
        store = self.plan.store
        if store is None or key is None:
            return None
        return (store, key)  # State builds the ResultReference on first access

    # -- STAGE and COMMIT -----------------------------------------------------------

    def stage(self, value: Any) -> State[Any]:
        """Stage ``value`` with the task's hooks; the state a :meth:`settled` call returns."""
        txn = self._txn
        assert txn is not None  # begin() returned False
        state: State[Any] = State("Completed", value=value, cache_key=self.key)

        def mark_rolled_back(_txn: Any) -> None:
            state.name = "RolledBack"

        expiration = None
        if self.task.options.cache_expiration is not None:
            expiration = datetime.now(timezone.utc) + self.task.options.cache_expiration
        self._expiration = expiration
        try:
            txn.stage(value, on_commit=list(self.task.commit_hooks),
                      on_rollback=[mark_rolled_back, *self.task.rollback_hooks],
                      expiration=expiration, extra=self._record_extra())
        except BaseException as exc:  # leave no transaction open behind us
            txn.finish(exc)
            raise
        return state

    def succeed(self, value: Any) -> State[Any]:
        """Stage ``value`` with the task's hooks and commit (or hand it to the parent)."""
        state = self.stage(value)
        try:
            self._txn.finish()
        except StorageError as exc:
            raise _with_value(exc, value) from exc
        return self.settled(state)

    async def asucceed(self, value: Any) -> State[Any]:
        """:meth:`succeed` for async tasks: the commit runs off the event loop."""
        state = self.stage(value)
        try:
            await self._txn.afinish()
        except StorageError as exc:
            raise _with_value(exc, value) from exc
        return self.settled(state)

    def settled(self, state: State[Any]) -> State[Any]:
        """``state`` with its reference, once the call's transaction has ended."""
        txn, plan = self._txn, self.plan
        if txn.store is not None and txn.key is not None and plan.store is not None:
            state.reference = (txn.store, txn.key)
            if self.key is not None and plan.memory is not None and txn.is_committed() \
                    and txn.store is plan.store:
                plan.memory.put(self.key, state._value, self._expiration)
        return state

    def _record_extra(self) -> dict[str, Any] | None:
        """The header's ``extra``: task identity and key parts, read by ``explain()``."""
        if self.plan.store is None:
            return None
        extra: dict[str, Any] = {"task_name": self.task.identity}
        tags = self.task.run_tags()
        if tags:
            extra["tags"] = tags
        parts = self.key_parts()
        if parts is not None:
            extra["key_parts"] = parts
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("task %s key %s parts %s", self.task.name, self.key, parts)
        return extra

    def fail(self, exc: BaseException) -> State[Any]:
        """Roll this call's transaction back; nothing is written under the key."""
        assert self._txn is not None  # begin() returned False
        self._txn.finish(exc)
        return State("Failed", exception=exc, cache_key=self.key)

    async def afail(self, exc: BaseException) -> State[Any]:
        """:meth:`fail` for async tasks: rollback hooks run off the event loop."""
        assert self._txn is not None  # begin() returned False
        await self._txn.afinish(exc)
        return State("Failed", exception=exc, cache_key=self.key)


def _with_value(exc: StorageError, value: Any) -> StorageError:
    """``exc``, carrying the computed ``value`` (so nothing computed is lost)."""
    return exc if exc.has_value else StorageError(str(exc), value=value)


def _default_transaction_store() -> ResultStore:
    """What ``transaction(key=...)`` without a store writes to: the store a task would use."""
    env = effective_settings()
    return ResultStore(env.result_storage, env.result_serializer)


register_default_store(_default_transaction_store)


def _delay_before_retry(task: Any, attempt: int) -> float | None:
    """Seconds to wait before retrying after failed ``attempt`` (0-based); None: out of retries."""
    options = task.options
    if attempt >= options.retries:
        return None
    logger.info("task %s failed (attempt %d of %d); retrying", task.name, attempt + 1,
                options.retries + 1)
    return retry_delay(options.retry_delay_seconds, attempt)


def run_with_retries(task: Any, call: Callable[[], Any]) -> Any:
    """Call ``call`` up to ``1 + retries`` times, sleeping ``retry_delay_seconds`` between."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception:
            delay = _delay_before_retry(task, attempt)
            if delay is None:
                raise
        if delay:
            time.sleep(delay)
        attempt += 1


async def run_with_retries_async(task: Any, call: Callable[[], Any]) -> Any:
    """The async face of :func:`run_with_retries`: ``call()`` returns an awaitable."""
    import asyncio

    attempt = 0
    while True:
        try:
            return await call()
        except Exception:
            delay = _delay_before_retry(task, attempt)
            if delay is None:
                raise
        if delay:
            await asyncio.sleep(delay)
        attempt += 1
