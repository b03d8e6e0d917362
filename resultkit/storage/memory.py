"""``MemoryStorage``: objects in a dict, for tests and throwaway work.

Thread-safe and process-local: another process has its own, empty store (a pickled
instance carries a snapshot of the contents, not a live link).
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any, ClassVar

from ..errors import ConfigurationError
from .base import Buffer, LockManagerSpec, Storage, hidden_from_listing

__all__ = ["MemoryStorage"]

# One counter for every instance, so a version token is never reused after delete + write.
_generations = itertools.count(1)


class MemoryStorage(Storage):
    """Objects held in this process's memory.

    >>> store = MemoryStorage()
    >>> store.write("a/b", b"hi"); store.read("a/b")
    b'hi'
    """

    block_type = "memory"
    remote_reads: ClassVar[bool] = False

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, int]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStorage(<{len(self._objects)} objects>)"

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"_objects": dict(self._objects)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._objects = state["_objects"]
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"memory (process-local, id {id(self):#x})"

    def to_block(self) -> dict[str, Any]:
        raise ConfigurationError(
            "MemoryStorage lives in one process's memory and cannot be saved as a block; "
            "save a LocalStorage, S3Storage, GCSStorage or FsspecStorage instead"
        )

    def default_lock_manager(self) -> LockManagerSpec:
        """The process's ``MemoryLockManager`` (the records live in this process too)."""
        return LockManagerSpec("memory")

    def _get(self, key: str) -> bytes:
        try:
            return self._objects[key][0]
        except KeyError:
            raise FileNotFoundError(f"no object at key {key!r} in MemoryStorage") from None

    def _read(self, key: str) -> bytes:
        return self._get(key)

    def _read_head(self, key: str, size: int) -> bytes:
        return self._get(key)[:size]

    def _open_read(self, key: str) -> IO[bytes]:
        return io.BytesIO(self._get(key))

    def _write_chunks(self, key: str, chunks: Iterable[Buffer]) -> None:
        # Joined before the lock is taken: a failing chunk iterator stores nothing.
        data = b"".join(chunks)
        with self._lock:
            self._objects[key] = (data, next(_generations))

    def _exists(self, key: str) -> bool:
        return key in self._objects

    def _delete(self, key: str) -> bool:
        with self._lock:
            return self._objects.pop(key, None) is not None

    def _list(self, prefix: str) -> Iterator[str]:
        with self._lock:
            keys = [k for k in self._objects
                    if k.startswith(prefix) and not hidden_from_listing(k, prefix)]
        return iter(keys)

    def _version(self, key: str) -> str | None:
        entry = self._objects.get(key)
        return None if entry is None else str(entry[1])
