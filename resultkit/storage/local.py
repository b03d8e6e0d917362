"""``LocalStorage``: key ``K`` is the file ``basepath/K``.

Writes go to a temporary file (``.rk-tmp-<pid>-<token>-<n>``) in the destination's directory and
are moved into place with ``os.replace``, so a reader sees the old object or the new
one, never a partial file, whatever dies mid-write.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from ..errors import ConfigurationError, StorageError
from .base import RESERVED_PREFIX, Buffer, Storage

__all__ = ["LocalStorage"]

_TEMP_PREFIX = RESERVED_PREFIX + "tmp-"
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# Linux caps a single write() at about 2 GiB; slicing bigger views keeps each call bounded.
_MAX_WRITE = 1 << 30
# Up to this many chunks go to the kernel in one writev() (a record is header + a few chunks).
_WRITEV_MAX_CHUNKS = 16
_writev = getattr(os, "writev", None)

# Temp names: pid + a per-process random token + a counter. Unique across processes and
# hosts sharing a folder like uuid4, without a urandom syscall per write.
_temp_token = ""
_temp_counter = itertools.count()


def _new_temp_token() -> None:
    global _temp_token
    _temp_token = f"{os.getpid()}-{os.urandom(6).hex()}-"


_new_temp_token()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_temp_token)


def _as_bytes_view(chunk: Buffer) -> memoryview:
    view = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
    # numpy and pickle-5 buffers may be multi-dimensional or typed; os.write wants bytes.
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def write_all(fd: int, chunks: Iterable[Buffer]) -> None:
    """Write every chunk to ``fd`` without joining them, looping on partial writes."""
    # Only chunks already in memory (a list or tuple) are gathered: a generator may be
    # streaming more than fits, so it is written as it comes.
    if _writev is None or not isinstance(chunks, (list, tuple)) or not 0 < len(chunks) <= _WRITEV_MAX_CHUNKS:
        _write_each(fd, chunks)
        return
    views = [_as_bytes_view(chunk) for chunk in chunks]
    total = sum(view.nbytes for view in views)
    if total > _MAX_WRITE:
        _write_each(fd, views)
        return
    # One syscall for header + payload; a short write finishes chunk by chunk.
    written = _writev(fd, views)
    if written < total:
        _write_each(fd, _after(views, written))


def _after(views: list[memoryview], skip: int) -> list[memoryview]:
    """``views`` with their first ``skip`` bytes dropped."""
    rest: list[memoryview] = []
    for view in views:
        if skip >= view.nbytes:
            skip -= view.nbytes
            continue
        rest.append(view[skip:])
        skip = 0
    return rest


def _write_each(fd: int, chunks: Iterable[Buffer]) -> None:
    for chunk in chunks:
        view = _as_bytes_view(chunk)
        offset, total = 0, len(view)
        while offset < total:
            offset += os.write(fd, view[offset : offset + _MAX_WRITE])


class LocalStorage(Storage):
    """Records as files under ``basepath``; ``fsync=True`` makes writes durable across power loss.

    >>> store = LocalStorage("/tmp/results")            # doctest: +SKIP
    >>> store.write("task/abc", b"hello")               # doctest: +SKIP
    """

    block_type = "local"

    def __init__(self, basepath: str | os.PathLike[str], fsync: bool = False) -> None:
        if not isinstance(basepath, (str, os.PathLike)) or not os.fspath(basepath):
            raise ConfigurationError(
                f"LocalStorage basepath must be a non-empty path, got {type(basepath).__name__} "
                f"{basepath!r}; pass e.g. LocalStorage('~/results')"
            )
        # Absolute at construction: a pickled instance must mean the same folder in a
        # worker process whose working directory differs.
        self.basepath = Path(os.path.abspath(os.path.expanduser(os.fspath(basepath))))
        self.fsync = bool(fsync)
        # The hot read path joins keys by concatenation: valid keys are plain relative paths.
        self._root = os.path.join(str(self.basepath), "")

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.basepath)!r}{', fsync=True' if self.fsync else ''})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, LocalStorage)
            and (other.basepath, other.fsync) == (self.basepath, self.fsync)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.basepath, self.fsync))

    def describe(self) -> str:
        return str(self.basepath)

    def to_block(self) -> dict[str, Any]:
        return {"basepath": str(self.basepath), "fsync": self.fsync}

    def path_of(self, key: str) -> Path:
        """The file that holds ``key``."""
        return self.basepath / key

    def _fail(self, action: str, key: str, exc: OSError) -> NoReturn:
        raise StorageError(
            f"LocalStorage({str(self.basepath)!r}) could not {action} key {key!r}: "
            f"{type(exc).__name__}: {exc}; check the folder exists and is writable"
        ) from exc

    def _open(self, key: str) -> IO[bytes]:
        try:
            # Unbuffered: FileIO.readinto goes straight into the caller's buffer.
            return open(self.basepath / key, "rb", buffering=0)
        except (IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(f"no object at key {key!r} in {self.basepath}") from None
        except FileNotFoundError:
            raise
        except OSError as exc:
            self._fail("open", key, exc)

    # -- primitives ---------------------------------------------------------------------

    def _read(self, key: str) -> bytes:
        with self._open(key) as f:
            try:
                return f.read()  # FileIO.readall sizes its buffer from fstat: one allocation
            except OSError as exc:
                self._fail("read", key, exc)

    def _read_head(self, key: str, size: int) -> bytes:
        # The cache-hit read: plain os calls on a concatenated path. A file object and a
        # pathlib join cost more than the read itself for a small record.
        try:
            fd = os.open(self._root + key, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(f"no object at key {key!r} in {self.basepath}") from None
        except OSError as exc:
            self._fail("open", key, exc)
        try:
            head = os.read(fd, size)
            if 0 < len(head) < size:  # a short read is the end of the file unless more follows
                parts = [head]
                remaining = size - len(head)
                while remaining > 0:
                    part = os.read(fd, remaining)
                    if not part:
                        break
                    parts.append(part)
                    remaining -= len(part)
                head = parts[0] if len(parts) == 1 else b"".join(parts)
            return head
        except IsADirectoryError:
            raise FileNotFoundError(f"no object at key {key!r} in {self.basepath}") from None
        except OSError as exc:
            self._fail("read", key, exc)
        finally:
            os.close(fd)

    def _open_read(self, key: str) -> IO[bytes]:
        return self._open(key)

    def _write_chunks(self, key: str, chunks: Iterable[Buffer]) -> None:
        # String joins, not pathlib: on a small record the path objects cost more than the write.
        target = self._root + key
        directory = os.path.dirname(target)
        temp = f"{directory}{os.sep}{_TEMP_PREFIX}{_temp_token}{next(_temp_counter)}"
        try:
            try:
                fd = os.open(temp, _OPEN_FLAGS, 0o666)
            except FileNotFoundError:  # first write into this folder
                os.makedirs(directory, exist_ok=True)
                fd = os.open(temp, _OPEN_FLAGS, 0o666)
        except OSError as exc:
            self._fail("create a file for", key, exc)
        try:
            try:
                write_all(fd, chunks)
                # The kernel stamps mtime from a coarse clock (one tick is ms), so two
                # same-size overwrites could share a version token; a fine-grained stamp
                # keeps ``version`` distinct for every write.
                now = time.time_ns()
                os.utime(fd, ns=(now, now))
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                self._fail("write", key, exc)
            raise
        if self.fsync:
            self._fsync_directory(Path(directory))

    @staticmethod
    def _fsync_directory(directory: Path) -> None:
        # Makes the rename itself durable; not supported on every platform.
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _exists(self, key: str) -> bool:
        return os.path.isfile(self.basepath / key)

    def _delete(self, key: str) -> bool:
        try:
            os.unlink(self.basepath / key)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except IsADirectoryError:
            return False
        except PermissionError as exc:
            if (self.basepath / key).is_dir():  # macOS reports EPERM for unlink(dir)
                return False
            self._fail("delete", key, exc)
        except OSError as exc:
            self._fail("delete", key, exc)
        return True

    def _list(self, prefix: str) -> Iterator[str]:
        # Walk only the deepest folder the prefix names, then filter on the full string,
        # so "a/b" finds "a/b", "a/b/c" and "a/bc" as on an object store.
        folder = prefix.rpartition("/")[0]
        root = self.basepath / folder if folder else self.basepath
        base = str(self.basepath)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(RESERVED_PREFIX)]
            rel_dir = os.path.relpath(dirpath, base)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            for name in filenames:
                if name.startswith(RESERVED_PREFIX):
                    continue
                key = rel_dir + name
                if key.startswith(prefix):
                    yield key

    def _version(self, key: str) -> str | None:
        try:
            st = os.stat(self._root + key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._fail("stat", key, exc)
        if not stat.S_ISREG(st.st_mode):
            return None
        return f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
