"""Type aliases and protocols shared by every layer, and the one helper that flattens a buffer to bytes."""

from __future__ import annotations

import os
from typing import Protocol, TypeAlias

__all__ = ["Buffer", "KeyStorage", "LockManagerLike", "StorageLike", "as_byte_view"]

#: A bytes-like object that can be written or hashed without copying.
Buffer: TypeAlias = bytes | bytearray | memoryview


class StorageLike(Protocol):
    """A storage as a layer that holds one without using it sees it (``resultkit.storage.Storage``)."""

    def describe(self) -> str:
        """A short human-readable location."""
        ...


class LockManagerLike(Protocol):
    """A lock manager as a layer that holds one without using it sees it.

    The whole contract is ``resultkit.locking.LockManager``; a cache policy keeps
    ``configure(lock_manager=...)`` as given and ``transaction()`` checks it.
    """

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        """Take ``key``'s lock for ``holder``."""
        ...

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``key``'s lock held by ``holder``."""
        ...


#: What ``key_storage=`` accepts: a storage, a local path, a URL or a saved block's slug.
KeyStorage: TypeAlias = "StorageLike | str | os.PathLike[str]"


def as_byte_view(chunk: Buffer) -> memoryview:
    """``chunk`` as a flat unsigned-byte memoryview, without copying; ``TypeError`` if it is not bytes-like."""
    view = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
    # Pickle-5 and numpy buffers may be typed or multi-dimensional; hashers and os.write want bytes.
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")
