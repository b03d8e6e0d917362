"""``Files``: keys on the contents of the files or directory trees that arguments name.

Local files are hashed with xxh3_128 and remembered by their stat signature (path,
size, mtime_ns, ctime_ns, inode, device), so a file that has not changed is not read
again in the same process; a rewrite that restores the old mtime still changes the
ctime. For fsspec URLs (``s3://``, ``gs://``, ...) the object's ETag or generation
stands for its content, so nothing is downloaded.

>>> from resultkit.cache_policies import INPUTS, Files
>>> policy = INPUTS + Files("data_path")
"""

from __future__ import annotations

import inspect
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import xxhash

from ..errors import ConfigurationError, HashError
from .context import CacheKeyContext
from .policies import CachePolicy

__all__ = ["Files", "StatCacheInfo", "path_digest", "stat_cache_info"]

# Read in 64 KiB chunks: the buffer stays in the CPU caches while it is filled and hashed,
# and it comes from the heap (glibc maps buffers of 128 KiB and more afresh), which made
# reads 2-3x faster than with 1 MiB chunks on the project machine. Not mmap: that skips a
# copy, but a file truncated while it is hashed would kill the process (SIGBUS).
_CHUNK = 64 << 10
_CACHE_LIMIT = 65536
# A file changed less than this long ago may change again within the same timestamp
# tick without its stat changing, so its digest is not remembered yet (git's "racy"
# entries). File systems with sub-second timestamps tick at most every few ms (the
# kernel's coarse clock); the others every 1 or 2 seconds.
_SETTLE_FINE_NS = 50_000_000
_SETTLE_COARSE_NS = 2_000_000_000


class StatCacheInfo(NamedTuple):
    """Counters of the local-file digest cache (this process)."""

    #: Digests served from the cache without reading the file.
    hits: int
    #: Files read and hashed.
    reads: int
    #: Bytes read to hash them.
    bytes_read: int
    #: Digests remembered now.
    entries: int


_cache: dict[str, tuple[tuple[int, ...], str]] = {}
_lock = threading.Lock()
_counters = [0, 0, 0]  # hits, reads, bytes_read


def stat_cache_info() -> StatCacheInfo:
    """How often a local file's digest came from the stat cache, and how much was read."""
    with _lock:
        return StatCacheInfo(_counters[0], _counters[1], _counters[2], len(_cache))


@dataclass(frozen=True, init=False)
class Files(CachePolicy):
    """The contents of the files or directory trees named by the arguments ``arguments``.

    Each argument's value is a path (``str`` or ``os.PathLike``), a list or tuple of
    paths, or None (no file). ``storage_options`` go to fsspec for URLs (e.g.
    ``{"endpoint_url": ...}``). A path that does not exist raises ``HashError``.
    """

    arguments: tuple[str, ...] = ()
    #: fsspec options for URLs, as sorted (name, value) pairs (not in the repr: they may hold secrets).
    storage_options: tuple[tuple[str, Any], ...] = field(default=(), repr=False)

    part_name: ClassVar[str] = "files"

    def __init__(self, *argument_names: str, arguments: Iterable[str] = (),
                 storage_options: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
                 key_storage: Any = None, isolation_level: Any = None, lock_manager: Any = None) -> None:
        names = (*argument_names, *arguments)
        for name in names:
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigurationError(
                    f"Files() takes the names of the task's arguments that hold paths, got "
                    f"{type(name).__name__} {name!r}; write e.g. Files('data_path')"
                )
        if not names:
            raise ConfigurationError("Files() needs at least one argument name, e.g. Files('data_path')")
        try:
            options = dict(storage_options.items() if isinstance(storage_options, Mapping)
                           else storage_options or ())
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"Files(storage_options=...) takes a dict of fsspec options, got "
                f"{type(storage_options).__name__}; write e.g. storage_options={{'endpoint_url': url}}"
            ) from None
        object.__setattr__(self, "arguments", tuple(sorted(set(names))))
        object.__setattr__(self, "storage_options", tuple(sorted(options.items())))
        object.__setattr__(self, "key_storage", key_storage)
        object.__setattr__(self, "isolation_level", isolation_level)
        object.__setattr__(self, "lock_manager", lock_manager)

    def capture(self, fn: Callable[..., Any], captured: dict[str, Any]) -> None:
        """Decoration hook: every named argument must be a parameter of ``fn``."""
        try:
            parameters = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        for name in self.arguments:
            if name not in parameters:
                label = getattr(fn, "__qualname__", repr(fn))
                raise ConfigurationError(
                    f"Files({name!r}): task {label!r} has no argument {name!r}; its arguments are "
                    f"{', '.join(parameters) or '(none)'}. Name the argument that holds the path"
                )

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        digests = {}
        for name in self.arguments:
            if name not in inputs:
                raise ConfigurationError(
                    f"Files({name!r}): task {context.task_name!r} has no argument {name!r}; its "
                    f"arguments are {', '.join(sorted(inputs)) or '(none)'}"
                )
            digests[name] = _value_digest(name, inputs[name], dict(self.storage_options))
        return {self.part_name: digests}


def _value_digest(name: str, value: Any, options: dict[str, Any]) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        hasher = xxhash.xxh3_128()
        for item in value:
            hasher.update(_value_digest(name, item, options).encode() + b"\n")
        return f"list:{hasher.hexdigest()}"
    if not isinstance(value, (str, os.PathLike)):
        raise HashError(
            f"Files: argument {name!r} is a {type(value).__name__} ({value!r:.80}), not a path; pass a "
            f"str or os.PathLike (or a list of them), or drop {name!r} from Files(...)"
        )
    return path_digest(os.fsdecode(os.fspath(value)), name, options)


def path_digest(path: str, argument: str = "path", storage_options: Mapping[str, Any] | None = None) -> str:
    """Digest of the file or tree at ``path`` (local path or fsspec URL); ``HashError`` if absent."""
    if "://" in path and not path.startswith("file://"):
        return _remote_digest(path, argument, dict(storage_options or {}))
    local = path[len("file://"):] if path.startswith("file://") else path
    try:
        info = os.stat(local)
    except FileNotFoundError:
        raise HashError(
            f"Files: argument {argument!r} names {path!r}, which does not exist (working directory "
            f"{os.getcwd()}); pass an existing file or directory, or drop {argument!r} from Files(...)"
        ) from None
    except OSError as exc:
        raise HashError(f"Files: cannot read {path!r} (argument {argument!r}): {exc}") from exc
    try:
        if stat.S_ISDIR(info.st_mode):
            return f"tree:{_tree_digest(local)}"
        if stat.S_ISREG(info.st_mode):
            return _file_digest(local, info)
    except OSError as exc:
        raise HashError(f"Files: cannot read {path!r} (argument {argument!r}): {exc}") from exc
    raise HashError(f"Files: argument {argument!r} names {path!r}, which is neither a regular file nor a "
                    "directory (a pipe, socket or device has no stable content)")


def _signature(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)


def _file_digest(path: str, info: os.stat_result) -> str:
    key = os.path.abspath(path)
    signature = _signature(info)
    cached = _cache.get(key)
    if cached is not None and cached[0] == signature:
        with _lock:
            _counters[0] += 1
        return cached[1]
    now = time.time_ns()
    digest, size = _hash_file(path)
    after = os.stat(path)
    settle = _SETTLE_FINE_NS if info.st_ctime_ns % 1_000_000_000 else _SETTLE_COARSE_NS
    settled = now - max(info.st_ctime_ns, info.st_mtime_ns) >= settle
    with _lock:
        _counters[1] += 1
        _counters[2] += size
        if settled and _signature(after) == signature:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            _cache[key] = (signature, digest)
    return digest


def _hash_file(path: str) -> tuple[str, int]:
    hasher = xxhash.xxh3_128()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            count = f.readinto(view)
            if not count:
                break
            hasher.update(view[:count])
            total += count
    return hasher.hexdigest(), total


def _tree_digest(root: str) -> str:
    """Digest of a directory tree: every entry's relative path, kind and (for files) content."""
    hasher = xxhash.xxh3_128()
    for relative, kind, digest in _walk(root, ""):
        hasher.update(f"{kind}\x00{relative}\x00{digest}\n".encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def _walk(directory: str, prefix: str) -> Iterable[tuple[str, str, str]]:
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        relative = prefix + entry.name
        if entry.is_symlink():
            try:
                target = os.stat(entry.path)
            except OSError:
                yield relative, "link", os.readlink(entry.path)  # dangling
                continue
            if stat.S_ISREG(target.st_mode):
                yield relative, "file", _file_digest(entry.path, target)
            else:  # a link to a directory is not followed (no cycles): its target counts
                yield relative, "link", os.readlink(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            yield relative, "dir", ""
            yield from _walk(entry.path, relative + "/")
        elif entry.is_file(follow_symlinks=False):
            yield relative, "file", _file_digest(entry.path, entry.stat(follow_symlinks=False))
        else:
            yield relative, "other", ""


_VERSION_FIELDS = ("ETag", "etag", "generation", "md5Hash", "crc32c", "checksum")


def _remote_digest(url: str, argument: str, options: dict[str, Any]) -> str:
    try:
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(
            f"Files: cannot open {url!r} (argument {argument!r}): {exc}; install the fsspec backend "
            "for its protocol (e.g. s3fs, gcsfs) or check the URL"
        ) from exc
    try:
        fs.invalidate_cache(path)  # never answer from a listing cached before the object changed
        info = fs.info(path)
        if info.get("type") == "directory":
            listing = fs.find(path, detail=True, withdirs=False)
            hasher = xxhash.xxh3_128()
            base = path.rstrip("/") + "/"
            for name in sorted(listing):
                relative = name[len(base):] if name.startswith(base) else name
                hasher.update(f"{relative}\x00{_version_token(fs, name, listing[name])}\n".encode())
            return f"tree:{hasher.hexdigest()}"
        return _version_token(fs, path, info)
    except FileNotFoundError:
        raise HashError(
            f"Files: argument {argument!r} names {url!r}, which does not exist; pass an existing "
            f"object or prefix, or drop {argument!r} from Files(...)"
        ) from None
    except OSError as exc:
        raise HashError(f"Files: cannot read {url!r} (argument {argument!r}): {exc}") from exc


def _version_token(fs: Any, path: str, info: Mapping[str, Any]) -> str:
    """The object's ETag or generation; its content digest where the backend has neither."""
    for name in _VERSION_FIELDS:
        value = info.get(name)
        if value:
            return f"{name}:{str(value).strip(chr(34))}:{info.get('size')}"
    hasher = xxhash.xxh3_128()
    with fs.open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            hasher.update(chunk)
    return hasher.hexdigest()
