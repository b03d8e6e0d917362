"""Lock managers: leased locks on keys for SERIALIZABLE transactions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .._targets import load_target as _load_target
from .._targets import target_path as _target_path
from ..errors import ConfigurationError as _ConfigurationError
from ..storage.base import LOCKS_FOLDER as STORAGE_LOCKS_FOLDER
from ..storage.base import LockManagerSpec as _LockManagerSpec
from ..storage.base import Storage as _Storage
from .base import DEFAULT_HOLD_TIMEOUT, LeasedLockManager, LockManager
from .file import FileLockManager
from .memory import MemoryLockManager
from .memory import default_memory_lock_manager as _default_memory_lock_manager
from .object_store import ObjectStoreLockManager
from .redis import RedisLockManager

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "FileLockManager",
    "LeasedLockManager",
    "LockManager",
    "MemoryLockManager",
    "ObjectStoreLockManager",
    "RedisLockManager",
    "default_lock_manager",
    "lock_manager_from_spec",
]

# Users see resultkit.locking.FileLockManager, not the implementation module's path.
for _name in ("FileLockManager", "LeasedLockManager", "LockManager", "MemoryLockManager",
              "ObjectStoreLockManager", "RedisLockManager"):
    globals()[_name].__module__ = __name__
del _name

#: Name of the folder beside local storage's records that holds its lock files.
LOCKS_FOLDER = STORAGE_LOCKS_FOLDER

# What a storage's LockManagerSpec names: built here, since storage sits below locking.
_BUILDERS: dict[str, Callable[..., LockManager]] = {
    "file": FileLockManager,
    "memory": _default_memory_lock_manager,
    "object-store": ObjectStoreLockManager,
    "redis": RedisLockManager,
}
# One manager per spec, so its observations of leases (and its file handles) are shared.
_built: dict[tuple[Any, ...], LockManager] = {}
_built_guard = threading.Lock()


def default_lock_manager(store: Any) -> LockManager | None:
    """The lock manager that needs no configuration for a store's (or a storage's) records, or None.

    Each storage names it (``Storage.default_lock_manager()`` returns a
    :class:`~resultkit.storage.LockManagerSpec`) and this builds it, once per spec: local
    storage names a ``FileLockManager`` in ``basepath/.rk-locks``, in-process memory
    storage the process's ``MemoryLockManager``, S3 and GCS storage an
    ``ObjectStoreLockManager`` (leases in the bucket), ``CachedStorage`` its remote's; other
    storage names none (configure one, e.g. ``RedisLockManager(url)``). ``store`` is a
    ``ResultStore`` or a ``Storage``.
    """
    storage = store if isinstance(store, _Storage) else getattr(store, "storage", None)
    if not isinstance(storage, _Storage):
        return None
    spec = storage.default_lock_manager()
    return None if spec is None else lock_manager_from_spec(spec, storage)


def lock_manager_from_spec(spec: _LockManagerSpec, storage: Any = None) -> LockManager:
    """Build (or reuse) the lock manager ``spec`` names; ``storage`` is only for messages."""
    if not isinstance(spec, _LockManagerSpec):
        raise _ConfigurationError(
            f"{type(storage).__name__}.default_lock_manager() must return a LockManagerSpec or None, "
            f"got {type(spec).__name__} {spec!r}"
        )
    builder = _BUILDERS.get(spec.manager)
    if builder is None:
        if ":" not in spec.manager:
            raise _ConfigurationError(
                f"{type(storage).__name__}.default_lock_manager() names lock manager {spec.manager!r}; "
                f"use one of {sorted(_BUILDERS)} or a 'module:callable' path"
            )
        builder = _load_target(_target_path(spec.manager, "LockManagerSpec.manager"),
                              f"lock manager {spec.manager!r}")
    options = dict(spec.options)
    try:
        key: tuple[Any, ...] | None = (spec.manager, *sorted(options.items()))
        hash(key)
    except TypeError:  # unhashable options: a manager of its own
        key = None
    with _built_guard:
        manager = _built.get(key) if key is not None else None
        if manager is None:
            manager = builder(**options)
            if not isinstance(manager, LockManager):
                raise _ConfigurationError(
                    f"lock manager {spec.manager!r} built a {type(manager).__name__}, which is not a "
                    "LockManager (acquire_lock, release_lock, is_locked, ...)"
                )
            if key is not None:
                _built[key] = manager
    return manager
