"""One task call: resolve options -> key -> BEGIN (lookup) -> run -> STAGE -> COMMIT -> State.

``Task`` (in ``tasks.py``) owns the options; this module owns what happens per call.
The steps are separate methods of :class:`TaskCall` so the sync and async faces in
``tasks.py`` share everything but the body call and the retry sleep.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._options import TaskOptions, retry_delay
from .cache_policies.context import CacheKeyContext
from .cache_policies.policies import DEFAULT, NO_CACHE, CacheKeyFnPolicy
from .context import get_run_context
from .errors import ConfigurationError, StorageError
from .results import ResultStore
from .settings import EffectiveSettings, effective_settings, settings_fingerprint
from .states import State
from .storage.base import validate_key
from .transactions import transaction

if TYPE_CHECKING:
    from .storage.base import Storage

__all__ = ["CallPlan", "MemoryTier", "TaskCall", "plan_for", "run_with_retries", "run_with_retries_async"]

logger = logging.getLogger("resultkit")

_MEMORY_TIER_SIZE = 256


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


class MemoryTier:
    """Recent hits kept in memory, re-validated against storage with one cheap ``version`` call."""

    def __init__(self, storage: Storage, size: int = _MEMORY_TIER_SIZE) -> None:
        self._storage = storage
        self._size = size
        self._entries: OrderedDict[str, tuple[Any, float | None, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` if ``key`` is held, unexpired and unchanged in storage."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        value, expires, version = entry
        # Expiry and a deleted or replaced record must be honoured even from memory.
        if (expires is not None and time.time() >= expires) or self._storage.version(key) != version:
            with self._lock:
                self._entries.pop(key, None)
            return False, None
        return True, value

    def put(self, key: str, value: Any, expiration: datetime | None) -> None:
        """Remember ``value`` for ``key`` as stored now."""
        version = self._storage.version(key)
        if version is None:
            return
        with self._lock:
            self._entries[key] = (value, expiration.timestamp() if expiration else None, version)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


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


def _is_no_cache(policy: Any) -> bool:
    return policy is NO_CACHE or type(policy) is type(NO_CACHE)


def plan_for(options: TaskOptions, cache: dict[tuple[Any, ...], CallPlan]) -> CallPlan:
    """The plan for the current settings; built once per fingerprint and kept in ``cache``."""
    fingerprint = settings_fingerprint()
    plan = cache.get(fingerprint)
    if plan is None:
        plan = _build_plan(options)
        if len(cache) > 32:  # settings blocks are usually few; don't grow without bound
            cache.clear()
        cache[fingerprint] = plan
    return plan


def _build_plan(options: TaskOptions) -> CallPlan:
    env = effective_settings()
    if options.persist_result is not None:
        persist = options.persist_result
    elif options.implies_persistence():
        persist = True
    else:
        persist = env.persist_result
    if not persist or env.disable_caching:
        return CallPlan(env, persist and not env.disable_caching, None, None, None, "")
    if options.cache_key_fn is not None:
        policy: Any = CacheKeyFnPolicy(options.cache_key_fn)
    else:
        policy = options.cache_policy if options.cache_policy is not None else DEFAULT
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
    memory = MemoryTier(storage) if options.cache_result_in_memory else None
    return CallPlan(env, True, store, policy, memory, storage.describe())


class TaskCall:
    """The state of one call between its steps."""

    def __init__(self, task: Any, plan: CallPlan, inputs: Mapping[str, Any]) -> None:
        self.task = task
        self.plan = plan
        self.inputs = inputs
        self._call_id: str | None = None
        self.key: str | None = None
        self._stack = ExitStack()
        self._txn: Any = None
        self._cache_context: Any = None

    @property
    def call_id(self) -> str:
        """Unique id of this call (the task run id), made on first use."""
        if self._call_id is None:
            self._call_id = _next_call_id()
        return self._call_id

    # -- key ------------------------------------------------------------------------

    def compute_key(self) -> str | None:
        """The cache key (also the storage key), or None when this call is not cached."""
        plan, options = self.plan, self.task.options
        if plan.store is None:
            return None
        if options.result_storage_key is not None:
            self.key = self._format_storage_key(options.result_storage_key)
        elif plan.policy is not None:
            self.key = plan.policy.compute_key(self.cache_context(), self.inputs)
        return self.key

    def cache_context(self) -> Any:
        """The ``CacheKeyContext`` policies read for this call."""
        if self._cache_context is None:
            run = get_run_context()
            self._cache_context = CacheKeyContext(
                task_name=self.task.identity,
                task_source=self.task.source,
                run_id=run.run_id if run else None,
                flow_parameters=run.parameters if run else None,
                call_id=self.call_id,
            )
        return self._cache_context

    def key_parts(self) -> dict[str, Any] | None:
        """The key's parts (for explainable misses), or None."""
        if self.plan.policy is None or self.task.options.result_storage_key is not None:
            return None
        parts: dict[str, Any] | None = self.plan.policy.key_parts(self.cache_context(), self.inputs)
        return parts

    def _format_storage_key(self, template: str) -> str:
        run = get_run_context()
        try:
            key = template.format(
                parameters=self.inputs, task_name=self.task.name,
                flow_name=run.flow_name if run else None,
                flow_run_id=run.run_id if run else None, task_run_id=self.call_id,
            )
        except (KeyError, IndexError, AttributeError) as exc:
            raise ConfigurationError(
                f"task {self.task.name!r}: result_storage_key {template!r} cannot be filled for "
                f"this call ({type(exc).__name__}: {exc}); parameters are {sorted(self.inputs)}"
            ) from None
        return validate_key(key)

    # -- BEGIN ----------------------------------------------------------------------

    def begin(self) -> State[Any] | None:
        """Look the key up; a Cached state on a hit, None when the body must run."""
        plan = self.plan
        key = self.compute_key()
        refresh = self.task.options.refresh_cache
        if refresh is None:
            refresh = plan.settings.refresh_cache
        if key is not None and plan.memory is not None and not refresh:
            held, value = plan.memory.get(key)
            if held:
                self._log_hit(key, memory=True)
                return State("Cached", value=value, cache_key=key, reference=self._reference(key))
        policy = plan.policy
        self._txn = self._stack.enter_context(transaction(
            key=key if key is not None else (None if plan.store is None else self._random_key()),
            store=plan.store,
            isolation_level=getattr(policy, "isolation_level", None) if key is not None else None,
            lock_manager=getattr(policy, "lock_manager", None) if key is not None else None,
            overwrite=bool(refresh) or key is None,
        ))
        record = getattr(self._txn, "record", None)
        if key is not None and record is not None and self._txn.is_committed():
            self._stack.close()
            self._log_hit(key)
            value = record.result
            if plan.memory is not None:
                plan.memory.put(key, value, record.metadata.expiration)
            return State("Cached", value=value, cache_key=key, reference=self._reference(key))
        if key is not None and logger.isEnabledFor(logging.INFO):
            logger.info("cache miss: task %s, key %s, storage %s", self.task.name, key[:12],
                        plan.storage_label)
        return None

    def _random_key(self) -> str:
        # NO_CACHE (or a key function returning None) with persistence: the record is kept
        # for its reference but never looked up.
        return f"{self.task.name.replace('/', '_').replace('.', '_')}-{self.call_id}"

    def _log_hit(self, key: str, memory: bool = False) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info("cache hit: task %s, key %s, storage %s%s", self.task.name, key[:12],
                        self.plan.storage_label, " (memory tier)" if memory else "")

    def _reference(self, key: str) -> Any:
        store = self.plan.store
        if store is None:
            return None
        return (store, key)  # State builds the ResultReference on first access

    # -- STAGE and COMMIT -----------------------------------------------------------

    def succeed(self, value: Any) -> State[Any]:
        """Stage ``value`` with the task's hooks and commit (or hand it to the parent)."""
        txn, plan = self._txn, self.plan
        state: State[Any] = State("Completed", value=value, cache_key=self.key)

        def mark_rolled_back(_txn: Any) -> None:
            state.name = "RolledBack"

        expiration = None
        if self.task.options.cache_expiration is not None:
            expiration = datetime.now(timezone.utc) + self.task.options.cache_expiration
        try:
            txn.stage(value, on_commit=list(self.task.commit_hooks),
                      on_rollback=[mark_rolled_back, *self.task.rollback_hooks],
                      expiration=expiration, extra=self._record_extra())
        except BaseException as exc:  # leave no transaction open behind us
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        try:
            self._stack.close()
        except StorageError as exc:
            if not exc.has_value:
                raise StorageError(str(exc), value=value) from exc
            raise
        stored_key = txn.key if plan.store is not None else None
        if stored_key is not None:
            state.reference = self._reference(stored_key)
            if self.key is not None and plan.memory is not None and txn.is_committed():
                plan.memory.put(self.key, value, expiration)
        return state

    def _record_extra(self) -> dict[str, Any] | None:
        """The header's ``extra``: task identity and key parts, read by ``explain()``."""
        if self.plan.store is None:
            return None
        extra: dict[str, Any] = {"task_name": self.task.identity}
        parts = self.key_parts()
        if parts is not None:
            extra["key_parts"] = parts
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("task %s key %s parts %s", self.task.name, self.key, parts)
        return extra

    def fail(self, exc: BaseException) -> State[Any]:
        """Roll this call's transaction back; nothing is written under the key."""
        self._stack.__exit__(type(exc), exc, exc.__traceback__)
        return State("Failed", exception=exc, cache_key=self.key)


def run_with_retries(task: Any, call: Callable[[], Any]) -> Any:
    """Call ``call`` up to ``1 + retries`` times, sleeping ``retry_delay_seconds`` between."""
    options = task.options
    for attempt in range(options.retries + 1):
        try:
            return call()
        except Exception:
            if attempt >= options.retries:
                raise
            logger.info("task %s failed (attempt %d of %d); retrying", task.name, attempt + 1,
                        options.retries + 1)
            delay = retry_delay(options.retry_delay_seconds, attempt)
            if delay:
                time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def run_with_retries_async(task: Any, call: Callable[[], Any]) -> Any:
    """The async face of :func:`run_with_retries`: ``call()`` returns an awaitable."""
    import asyncio

    options = task.options
    for attempt in range(options.retries + 1):
        try:
            return await call()
        except Exception:
            if attempt >= options.retries:
                raise
            logger.info("task %s failed (attempt %d of %d); retrying", task.name, attempt + 1,
                        options.retries + 1)
            delay = retry_delay(options.retry_delay_seconds, attempt)
            if delay:
                await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
