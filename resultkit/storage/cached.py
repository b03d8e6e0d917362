"""``CachedStorage``: a local read-through copy of remote storage, on ``diskcache``.

A read first asks the remote for the object's ``version`` (ETag, generation: one small
request). If the local copy was stored under that same version it is served; otherwise
the object is fetched, kept with its version, and served. So a record overwritten or
deleted by someone else is never served stale. Writes and deletes go to the remote and
drop the local copy. The local tier evicts least-recently-used copies past ``size_limit``.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import diskcache

from .._env import resultkit_home
from ..errors import ConfigurationError
from ._mapping import map_descriptor, mapping_enabled
from .base import Buffer, IncompleteUpload, LockManagerSpec, Storage, TempFile

__all__ = ["CachedStorage"]

_MISSING = object()


class CachedStorage(Storage):
    """``remote`` (a ``Storage``, URL, path or slug) with a local read-through copy.

    Large records load by mapping the local copy copy-on-write; ``mmap=False`` turns that
    off (``None``: ``RESULTKIT_MMAP`` decides), e.g. when ``directory`` is on a network mount.

    >>> store = CachedStorage(S3Storage("my-bucket", "results"), size_limit=10 << 30)  # doctest: +SKIP
    """

    block_type = "cached"
    mmap: bool | None = None  # instances pickled before the option existed

    def __init__(
        self,
        remote: Storage | str | os.PathLike[str] | Mapping[str, Any],
        directory: str | os.PathLike[str] | None = None,
        size_limit: int = 1 << 30,
        mmap: bool | None = None,
    ) -> None:
        if isinstance(remote, Mapping):
            from .blocks import storage_from_config

            remote = storage_from_config(remote, where="CachedStorage remote")
        from .resolve import resolve_storage

        self.remote: Storage = resolve_storage(remote)
        if isinstance(self.remote, CachedStorage):
            raise ConfigurationError("CachedStorage(remote) got a CachedStorage; pass its .remote instead")
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit <= 0:
            raise ConfigurationError(
                f"CachedStorage size_limit must be a positive number of bytes, got {size_limit!r}; "
                "e.g. size_limit=10 * 2**30 for 10 GiB"
            )
        self.size_limit = size_limit
        if mmap is not None and not isinstance(mmap, bool):
            raise ConfigurationError(
                f"CachedStorage mmap must be True, False or None (RESULTKIT_MMAP decides), got "
                f"{type(mmap).__name__} {mmap!r}"
            )
        self.mmap = mmap
        self._explicit_directory = directory is not None
        self.directory = Path(directory).expanduser().absolute() if directory is not None else (
            resultkit_home() / "cache"
        )
        # Copies of different remotes share one cache directory without colliding.
        options = getattr(self.remote, "options", None) or {}
        self._namespace = f"{type(self.remote).__name__}:{self.remote.describe()}|{options.get('endpoint_url', '')}|"
        self._cache: diskcache.Cache | None = None
        self._cache_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedStorage({self.remote!r}, directory={str(self.directory)!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CachedStorage)
            and (other.remote, other.directory, other.size_limit) == (self.remote, self.directory, self.size_limit)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.remote, self.directory))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        del state["_cache_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache_lock = threading.Lock()

    def describe(self) -> str:
        return f"{self.remote.describe()} (cached in {self.directory})"

    def to_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {
            "remote": {"type": self.remote.block_type, **self.remote.to_block()},
            "size_limit": self.size_limit,
        }
        if self._explicit_directory:
            block["directory"] = str(self.directory)
        if self.mmap is not None:
            block["mmap"] = self.mmap
        return block

    @property
    def cache(self) -> diskcache.Cache:
        """The local ``diskcache.Cache`` (opened on first use)."""
        cache = self._cache
        if cache is None:
            with self._cache_lock:
                cache = self._cache
                if cache is None:
                    cache = diskcache.Cache(
                        str(self.directory), size_limit=self.size_limit,
                        eviction_policy="least-recently-used",
                    )
                    self._cache = cache
        return cache

    def _local(self, key: str, version: str, read: bool) -> Any:
        """The local copy of ``key`` if it was stored under ``version``, else ``_MISSING``."""
        value, tag = self.cache.get(self._namespace + key, default=_MISSING, read=read, tag=True)
        if value is _MISSING:
            return _MISSING
        if tag != version:
            if read:
                value.close()
            return _MISSING
        return value

    def _current_version(self, key: str) -> str:
        version = self.remote.version(key)
        if version is None:
            self.cache.delete(self._namespace + key)
            raise FileNotFoundError(f"no object at key {key!r} in {self.remote.describe()}")
        return version

    # -- primitives ----------------------------------------------------------------------

    def _read(self, key: str) -> bytes:
        version = self._current_version(key)
        local = self._local(key, version, read=False)
        if local is not _MISSING:
            return bytes(local)
        # Fetched after the version check, so the data is at least as new as its tag;
        # a newer object under an older tag only costs one extra fetch later.
        data = self.remote.read(key)
        self.cache.set(self._namespace + key, data, tag=version)
        return data

    def _read_head(self, key: str, size: int) -> bytes:
        # One ranged request either way; checking the local copy would add one.
        return self.remote.read_head(key, size)

    def _open_read(self, key: str) -> IO[bytes]:
        version = self._current_version(key)
        local = self._local(key, version, read=True)
        if local is not _MISSING:
            return local if not isinstance(local, bytes) else io.BytesIO(local)
        with self.remote.open_read(key) as remote_file:
            # Streamed to the local cache file in blocks: no full copy in memory.
            self.cache.set(self._namespace + key, remote_file, read=True, tag=version)
        local = self._local(key, version, read=True)
        if local is _MISSING:  # evicted at once (bigger than size_limit)
            return self.remote.open_read(key)
        return local if not isinstance(local, bytes) else io.BytesIO(local)

    def _map_read(self, key: str, size: int) -> memoryview | None:
        # The local copy is a diskcache file: diskcache writes every value to a new file
        # and unlinks replaced or evicted ones, so a mapping of it outlives both.
        if not mapping_enabled(self.mmap):
            return None
        local = self._open_read(key)
        try:
            try:
                fd = local.fileno()  # a BytesIO (a small value kept in SQLite) has none
            except (AttributeError, OSError, ValueError):
                return None
            return map_descriptor(fd, size)
        finally:
            local.close()

    def _write_chunks(self, key: str, chunks: Iterable[Buffer]) -> None:
        try:
            self.remote.write(key, chunks)
        finally:
            self.cache.delete(self._namespace + key)

    def _write_with_head(self, key: str, body: Sequence[memoryview], head_size: int,
                         make_head: Callable[[], Buffer]) -> None:
        try:
            self.remote.write_with_head(key, body, head_size, make_head)
        finally:
            self.cache.delete(self._namespace + key)

    def _exists(self, key: str) -> bool:
        return self.remote.exists(key)

    def _delete(self, key: str) -> bool:
        try:
            return self.remote.delete(key)
        finally:
            self.cache.delete(self._namespace + key)

    def _list(self, prefix: str) -> Iterator[str]:
        return self.remote.list(prefix)

    def _version(self, key: str) -> str | None:
        return self.remote.version(key)

    def incomplete_uploads(self) -> Sequence[IncompleteUpload]:
        return self.remote.incomplete_uploads()

    def abort_upload(self, upload: IncompleteUpload) -> bool:
        return self.remote.abort_upload(upload)

    def stale_temp_files(self, min_age: float) -> Sequence[TempFile]:
        return self.remote.stale_temp_files(min_age)

    def remove_temp_file(self, temp: TempFile) -> bool:
        return self.remote.remove_temp_file(temp)

    def default_lock_manager(self) -> LockManagerSpec | None:
        """The remote's: the records (and the writers that contend for them) are there."""
        return self.remote.default_lock_manager()
