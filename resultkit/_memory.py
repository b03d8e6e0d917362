"""The in-memory tier: values of recent hits, served after one cheap check against storage.

A value is served from memory only while its record is unexpired and unchanged in
storage: a deleted or replaced record is seen on the next call. For ``LocalStorage``
(any storage whose ``local_file_root()`` is a folder) that check is one ``os.stat`` of a path built by concatenation (the "little more
than a file stat" of a warm hit); other storages answer ``version()``.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from .storage.base import Storage

__all__ = ["ABSENT", "MemoryTier"]

#: What :meth:`MemoryTier.get` returns for a key it cannot serve.
ABSENT: Any = object()

_DEFAULT_SIZE = 256


class MemoryTier:
    """Recent hits kept in memory, re-validated against storage on every read."""

    def __init__(self, storage: Storage, size: int = _DEFAULT_SIZE) -> None:
        self._storage = storage
        self._size = size
        # key -> (value, expiry timestamp or None, version token when stored)
        self._entries: OrderedDict[str, tuple[Any, float | None, Any]] = OrderedDict()
        self._lock = threading.Lock()
        # Where the storage offers its objects as plain files, a check is one stat.
        self._root = storage.local_file_root()

    def get(self, key: str) -> Any:
        """The value held for ``key`` if unexpired and unchanged in storage, else :data:`ABSENT`."""
        entry = self._entries.get(key)
        if entry is None:
            return ABSENT
        value, expires, version = entry
        if expires is None or time.time() < expires:
            root = self._root
            if root is None:
                current = self._current_version(key)
            else:  # inlined: this stat is most of a warm hit's cost
                try:
                    st = os.stat(root + key)
                except OSError:
                    current = None
                else:
                    current = (st.st_ino, st.st_size, st.st_mtime_ns)
            if current == version:
                return value
        with self._lock:
            self._entries.pop(key, None)
        return ABSENT

    def put(self, key: str, value: Any, expiration: datetime | None) -> None:
        """Remember ``value`` for ``key`` as stored now."""
        try:
            version = self._current_version(key, strict=True)
        except OSError:
            return  # cannot be checked later, so it is not kept
        if version is None:
            return
        with self._lock:
            self._entries[key] = (value, expiration.timestamp() if expiration else None, version)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def _current_version(self, key: str, strict: bool = False) -> Any:
        """A token that changes when the record at ``key`` is replaced; None when it is gone.

        Keys reach here only after a read or write at them succeeded, so they are valid.
        A stat that fails for another reason is "changed": the full lookup then reports it.
        """
        root = self._root
        if root is None:
            try:
                return self._storage.version(key)
            except Exception:
                if strict:
                    raise OSError(f"cannot check the version of {key!r}") from None
                return None
        try:
            st = os.stat(root + key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            if strict:
                raise
            return None
        if strict and not stat.S_ISREG(st.st_mode):
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)
