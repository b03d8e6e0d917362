"""Lock managers: leased locks on keys for SERIALIZABLE transactions."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

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
]

# Users see resultkit.locking.FileLockManager, not the implementation module's path.
for _name in ("FileLockManager", "LeasedLockManager", "LockManager", "MemoryLockManager",
              "ObjectStoreLockManager", "RedisLockManager"):
    globals()[_name].__module__ = __name__
del _name

#: Name of the folder beside local storage's records that holds its lock files.
LOCKS_FOLDER = ".rk-locks"

_file_managers: dict[Path, FileLockManager] = {}
_file_managers_guard = threading.Lock()


def default_lock_manager(store: Any) -> LockManager | None:
    """The lock manager that needs no configuration for a store's (or a storage's) records, or None.

    Local storage gets a ``FileLockManager`` in ``basepath/.rk-locks``; in-process
    memory storage gets the process's ``MemoryLockManager``; S3 and GCS storage get an
    ``ObjectStoreLockManager`` (leases in the bucket); other remote storage gets None
    (configure one, e.g. ``RedisLockManager(url)``). ``store`` is a ``ResultStore`` or a
    ``Storage``.
    """
    from ..storage import LocalStorage, MemoryStorage, Storage

    storage = store if isinstance(store, Storage) else getattr(store, "storage", None)
    if storage is None:
        return None

    if isinstance(storage, LocalStorage):
        directory = Path(storage.basepath) / LOCKS_FOLDER
        with _file_managers_guard:
            manager = _file_managers.get(directory)
            if manager is None:
                manager = _file_managers[directory] = FileLockManager(directory)
        return manager
    if isinstance(storage, MemoryStorage):
        return _default_memory_lock_manager()
    return _object_store_manager(getattr(storage, "remote", storage))


_object_managers: dict[Any, ObjectStoreLockManager] = {}


def _object_store_manager(storage: Any) -> ObjectStoreLockManager | None:
    from ..storage import FsspecStorage

    if not isinstance(storage, FsspecStorage) or storage.protocol not in ("s3", "s3a", "gs", "gcs"):
        return None
    with _file_managers_guard:  # one per storage, so its observations of leases are shared
        manager = _object_managers.get(storage)
        if manager is None:
            manager = _object_managers[storage] = ObjectStoreLockManager(storage)
    return manager
