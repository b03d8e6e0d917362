"""The storage contract: bytes at relative keys.

A backend implements a handful of primitives (``_read``, ``_read_head``,
``_open_read``, ``_write_chunks``, ``_exists``, ``_delete``, ``_list``,
``_version``); the public methods validate keys, add retries and map errors, so every
backend behaves the same. Writes are atomic: a reader sees the whole object or
nothing, whatever dies mid-write.
"""

from __future__ import annotations

import abc
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar

from .._types import Buffer, as_byte_view
from ..errors import ConfigurationError, StorageError

__all__ = ["LOCKS_FOLDER", "RESERVED_PREFIX", "TEMP_PREFIX", "Buffer", "IncompleteUpload", "LockManagerSpec",
           "Storage", "TempFile", "as_buffer", "hidden_from_listing", "remove_local_temp_file", "stale_local_temp_files", "validate_key"]

#: Key segments starting with this are resultkit's own (temporary files, lock files);
#: they are rejected as user keys and never listed.
RESERVED_PREFIX = ".rk-"
#: Names of the temporary files a write leaves behind if its writer dies mid-write.
TEMP_PREFIX = RESERVED_PREFIX + "tmp-"
#: The folder beside a folder of records that holds its default lock files.
LOCKS_FOLDER = RESERVED_PREFIX + "locks"


def hidden_from_listing(key: str, prefix: str) -> bool:
    """Whether ``_list(prefix)`` skips ``key``: a reserved segment below the prefix's folder.

    So ``list("")`` never shows resultkit's own objects, while resultkit itself can list
    one of its reserved folders with ``_list(".rk-txn/")``.
    """
    folder = prefix.rpartition("/")[0]
    rest = key[len(folder) + 1:] if folder else key
    return any(part.startswith(RESERVED_PREFIX) for part in rest.split("/"))


# Characters a backend or fsspec reads as something other than part of the name: s3fs cuts
# "?versionId=..." off a path, gcsfs reads "#..." and "?generation=..." as a generation,
# fsspec's find/glob expand "*", "?" and "[...]", a backslash is a separator on Windows, and
# control characters (C0, DEL, C1) and lone surrogates break paths, logs and terminals.
_INTERPRETED = re.compile(r"[?#*\[\]\\\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_WHAT_IT_MEANS = {
    "?": "s3fs and gcsfs read '?' as the start of a version query ('?versionId=', '?generation=') "
         "and fsspec as a glob",
    "#": "gcsfs reads '#' as the start of an object generation",
    "*": "fsspec reads '*' as a glob",
    "[": "fsspec reads '[' as a glob character class",
    "]": "fsspec reads ']' as a glob character class",
    "\\": "a backslash is a path separator on Windows",
}


def _interpreted_character(key: str, char: str) -> StorageError:
    meaning = _WHAT_IT_MEANS.get(char, "control characters and lone surrogates are not usable in paths")
    return StorageError(
        f"storage key {key!r} contains {char!r} at position {key.index(char)}: {meaning}, so the "
        "key could name another object; use letters, digits and '-', '_', '.', '=', '/' "
        "(hash or quote untrusted parts, e.g. with hashlib)"
    )


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe relative storage key, else raise ``StorageError``.

    Refused: non-strings, empty keys, absolute paths, empty, ``.`` and ``..`` segments
    (so a trailing ``/``), the reserved ``.rk-`` prefix, and every character a backend or
    fsspec interprets (``?``, ``#``, ``*``, ``[``, ``]``, backslash, control characters).

    >>> validate_key("task/abc123")
    'task/abc123'
    """
    if type(key) is str and key in _valid_keys:  # a hot key: every read of it validates it
        return key
    if not isinstance(key, str):
        raise StorageError(
            f"storage key must be a str, got {type(key).__name__} {key!r}; pass a relative path such as 'results/abc'"
        )
    if not key:
        raise StorageError("storage key is empty; pass a relative path such as 'results/abc'")
    if key.startswith("/") or key.startswith("\\") or (len(key) > 1 and key[1] == ":"):
        raise StorageError(f"storage key {key!r} is absolute; keys are relative to the storage, e.g. 'results/abc'")
    interpreted = _INTERPRETED.search(key)
    if interpreted is not None:
        raise _interpreted_character(key, interpreted.group())
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise StorageError(
                f"storage key {key!r} has an empty, '.' or '..' segment; keys must stay inside the storage"
            )
        if segment.startswith(RESERVED_PREFIX):
            raise StorageError(
                f"storage key {key!r} uses the reserved prefix {RESERVED_PREFIX!r} (temporary files and "
                "locks); choose another name"
            )
    if type(key) is str:  # not a subclass, whose value could change under the cache
        if len(_valid_keys) >= _VALID_KEYS_SIZE:
            _valid_keys.clear()
        _valid_keys.add(key)
    return key


# Keys that passed validate_key recently (bounded): checking one again is a set lookup.
_VALID_KEYS_SIZE = 4096
_valid_keys: set[str] = set()


def _checked_view(chunk: object, key: str) -> memoryview:
    """``chunk`` as a byte ``memoryview`` (no copy), else ``StorageError`` as :func:`as_buffer`."""
    buffer = as_buffer(chunk, key)
    return buffer if isinstance(buffer, memoryview) else memoryview(buffer)


def as_buffer(chunk: object, key: str = "") -> Buffer:
    """``chunk`` if it is bytes-like (anything ``memoryview`` accepts), else ``StorageError``."""
    if isinstance(chunk, (bytes, bytearray)):
        return chunk
    try:
        view = chunk if isinstance(chunk, memoryview) else memoryview(chunk)  # type: ignore[arg-type]
        if not view.c_contiguous:
            raise TypeError("the buffer is strided (not C-contiguous)")
        # Typed or multi-dimensional buffers (numpy) become flat byte views, without a copy.
        return as_byte_view(view)
    except TypeError as exc:
        raise StorageError(
            f"write({key!r}, ...) got a chunk of type {type(chunk).__name__} that is not usable "
            f"bytes ({exc}); chunks must be C-contiguous bytes-like objects (bytes, bytearray, "
            "memoryview, numpy arrays): encode, serialize or copy it first"
        ) from None


@dataclass(frozen=True)
class IncompleteUpload:
    """A multipart upload that was started and never completed or aborted (its writer died)."""

    #: The object it would have created, relative to the storage (not necessarily a valid key).
    path: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True)
class TempFile:
    """A temporary file a writer left behind: ``path`` relative to the storage root."""

    path: str
    size: int
    age_seconds: float
    #: Where it is (a local path, or a URL), for messages and for removing it.
    location: str


@dataclass(frozen=True, eq=True)
class LockManagerSpec:
    """The lock manager a storage names for its records: a name and options, not an instance.

    The storage layer sits below the locking layer, so a storage cannot build a lock
    manager; it names one, and ``resultkit.locking.default_lock_manager`` builds it
    (one per spec). ``manager`` is one the locking layer knows (``"file"`` with
    ``directory=``, ``"memory"``, ``"object-store"`` with ``storage=``, ``"redis"`` with
    ``url=``) or a ``"module:callable"`` path called with ``options``.
    """

    manager: str
    options: Mapping[str, Any] = field(default_factory=dict)


def stale_local_temp_files(root: str, min_age: float) -> list[TempFile]:
    """Temporary files (``.rk-tmp-*``) below the local folder ``root`` untouched for ``min_age`` seconds."""
    now = time.time()
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)  # os.walk never enters linked folders; a linked file is no temp file
            except FileNotFoundError:  # its writer finished or cleaned up meanwhile
                continue
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > min_age:
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                found.append(TempFile(rel, st.st_size, now - st.st_mtime, path))
    return sorted(found, key=lambda t: t.path)


def remove_local_temp_file(temp: TempFile) -> bool:
    """Unlink a temporary file found by :func:`stale_local_temp_files`; False if already gone."""
    try:
        os.unlink(temp.location)
    except FileNotFoundError:
        return False
    return True


class Storage(abc.ABC):
    """Where records live. Subclasses implement the underscore primitives.

    Keys are relative ``/``-separated paths, validated by :func:`validate_key`.
    """

    #: Short name of the backend type, used in block slugs (``"s3/prod"``) and messages.
    block_type: ClassVar[str] = ""
    #: Bytes a cache hit asks for in its first read: records up to this size come back
    #: whole in one request. Small where a read is cheap (local disk), larger where each
    #: request costs a round trip (object stores).
    first_read_size: int = 64 * 1024
    #: Whether each read is a network round trip, so bulk scans overlap reads in threads.
    remote_reads: ClassVar[bool] = True

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Storage:
        """Build from a URL of a scheme registered for this class (``register_storage``)."""
        raise ConfigurationError(
            f"{cls.__name__} cannot be built from the URL {url!r}; give it a from_url classmethod, "
            f"or construct {cls.__name__}(...) directly"
        )

    # -- public API (validates, then calls the primitives) -------------------------

    def read(self, key: str) -> bytes:
        """The whole object at ``key``; ``FileNotFoundError`` when absent."""
        return self._read(validate_key(key))

    def read_head(self, key: str, size: int) -> bytes:
        """At most the first ``size`` bytes at ``key`` (one ranged read remotely)."""
        return self._read_head(validate_key(key), size)

    def open_read(self, key: str) -> IO[bytes]:
        """A binary stream over the object at ``key``, for large payloads."""
        return self._open_read(validate_key(key))

    def read_rest_into(self, key: str, head: bytes, view: memoryview) -> bool:
        """Fill ``view`` with the bytes of ``key`` that follow ``head`` (what ``read_head`` returned).

        Object stores fetch them with parallel ranged reads pinned to the version ``head``
        came from (a replaced object raises ``ObjectChanged``, never mixes versions).
        False when this backend or ``head`` offers no such read: stream with ``open_read``.
        """
        return self._read_rest_into(validate_key(key), head, view)

    def map_read(self, key: str, size: int) -> memoryview | None:
        """A writable copy-on-write view of the whole object at ``key``, or None where it cannot be mapped.

        None also when the object is not exactly ``size`` bytes (the caller's streamed
        read then reports the mismatch) or mapping is turned off. Mutating the view never
        changes the stored object, and the view stays valid when the object is replaced
        or deleted meanwhile. ``FileNotFoundError`` when absent. Only local files map.
        """
        return self._map_read(validate_key(key), size)

    def write(self, key: str, data: Buffer | Iterable[Buffer]) -> None:
        """Atomically store ``data`` (bytes-like, or an iterable of bytes-like chunks) at ``key``."""
        key = validate_key(key)
        chunks: Iterable[Buffer]
        if isinstance(data, (bytes, bytearray)):
            chunks = (data,)
        elif isinstance(data, memoryview):  # may be typed, multi-dimensional or strided
            chunks = (as_buffer(data, key),)
        elif isinstance(data, (list, tuple)):  # chunks already in memory: kept as a list
            chunks = [as_buffer(chunk, key) for chunk in data]
        elif isinstance(data, str):
            raise StorageError(
                f"write({key!r}, ...) got a str; storage holds bytes: pass data.encode() instead"
            )
        else:
            try:
                memoryview(data)  # type: ignore[arg-type]  # numpy arrays, array.array, mmap
            except TypeError:
                try:
                    iterator = iter(data)
                except TypeError:
                    raise StorageError(
                        f"write({key!r}, ...) got {type(data).__name__}; pass bytes-like data or an "
                        "iterable of bytes-like chunks"
                    ) from None
                chunks = (as_buffer(chunk, key) for chunk in iterator)
            else:
                chunks = (as_buffer(data, key),)
        self._write_chunks(key, chunks)

    def write_with_head(self, key: str, body: Sequence[Buffer], head_size: int,
                        make_head: Callable[[], Buffer]) -> None:
        """Atomically store ``make_head() + body`` at ``key``, the head computed while the body is written.

        ``make_head()`` must return exactly ``head_size`` bytes; it may depend on a pass over
        ``body`` (a checksum), which local storage overlaps with writing the body to the
        file. Elsewhere the head is made first and the whole written as by :meth:`write`.
        """
        key = validate_key(key)
        views = [_checked_view(chunk, key) for chunk in body]
        self._write_with_head(key, views, head_size, make_head)

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""
        return self._exists(validate_key(key))

    def delete(self, key: str) -> bool:
        """Delete ``key``; True if something was deleted, False if it was absent."""
        return self._delete(validate_key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys below ``prefix`` (a folder-like prefix, ``""`` for all), in no set order."""
        if prefix:
            validate_key(prefix.rstrip("/"))
        return self._list(prefix)

    def version(self, key: str) -> str | None:
        """A token that changes whenever the object at ``key`` is replaced, or None if absent.

        ETag or generation remotely, size+mtime_ns+inode locally. Used by
        ``CachedStorage`` to confirm a local copy is still current with one small request.
        """
        return self._version(validate_key(key))

    def incomplete_uploads(self) -> Sequence[IncompleteUpload]:
        """Multipart uploads in progress below this storage (S3); none where uploads cannot be listed."""
        return []

    def abort_upload(self, upload: IncompleteUpload) -> bool:
        """Abort ``upload``, freeing its parts; True if it was still in progress."""
        return False

    def stale_temp_files(self, min_age: float) -> Sequence[TempFile]:
        """Temporary files a dead writer left, untouched for ``min_age`` seconds (``resultkit gc``).

        The base has none to find: backends whose writes go through temporary files
        (local folders, ``file://``) list theirs.
        """
        return []

    def remove_temp_file(self, temp: TempFile) -> bool:
        """Remove a temporary file :meth:`stale_temp_files` found; True if it was still there."""
        return False

    def default_lock_manager(self) -> LockManagerSpec | None:
        """The lock manager this storage's records get when none is configured, by name; None if none.

        ``resultkit.locking.default_lock_manager(storage)`` builds it. With None,
        SERIALIZABLE isolation needs an explicit ``lock_manager=``.
        """
        return None

    def local_file_root(self) -> str | None:
        """A folder path ending in a separator under which key ``K`` is the plain file ``root + K``.

        Hot paths (the in-memory tier's stat, bulk header scans) then read or stat files
        directly, skipping key validation and the primitives. None (the default) when
        objects are not plain files on this machine.
        """
        return None

    def describe(self) -> str:
        """A short human-readable location, e.g. ``s3://bucket/prefix`` or a local path."""
        return repr(self)

    def to_block(self) -> dict[str, Any]:
        """A TOML-safe configuration that rebuilds this storage; never holds secrets."""
        raise StorageError(f"{type(self).__name__} cannot be saved as a block")

    def save(self, name: str, overwrite: bool = False) -> str:
        """Save this storage's configuration as a block; returns its slug, e.g. ``"s3/prod"``.

        >>> LocalStorage("/data/results").save("team")   # doctest: +SKIP
        'local/team'
        """
        from ._blockfile import save_storage

        return save_storage(self, name, overwrite=overwrite)

    # -- primitives -----------------------------------------------------------------

    @abc.abstractmethod
    def _read(self, key: str) -> bytes: ...

    def _read_head(self, key: str, size: int) -> bytes:
        with self._open_read(key) as f:
            return f.read(size)

    @abc.abstractmethod
    def _open_read(self, key: str) -> IO[bytes]: ...

    def _read_rest_into(self, key: str, head: bytes, view: memoryview) -> bool:
        return False

    def _map_read(self, key: str, size: int) -> memoryview | None:
        return None  # remote and in-memory backends stream instead

    @abc.abstractmethod
    def _write_chunks(self, key: str, chunks: Iterable[Buffer]) -> None: ...

    def _write_with_head(self, key: str, body: Sequence[memoryview], head_size: int,
                         make_head: Callable[[], Buffer]) -> None:
        self._write_chunks(key, [make_head(), *body])

    @abc.abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _list(self, prefix: str) -> Iterator[str]: ...

    @abc.abstractmethod
    def _version(self, key: str) -> str | None: ...
