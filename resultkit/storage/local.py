"""``LocalStorage``: key ``K`` is the file ``basepath/K``.

Writes go to a temporary file (``.rk-tmp-<pid>-<token>-<n>``) in the destination's directory and
are moved into place with ``os.replace``, so a reader sees the old object or the new
one, never a partial file, whatever dies mid-write.

Symbolic links below ``basepath`` are never followed: a key whose path goes through a
link (to a folder or file inside or outside ``basepath``) is a ``StorageError`` naming
the link, for reads, writes, deletes and listings alike. Every opened file or folder is
checked against the path its key names (``/proc/self/fd`` on Linux, ``F_GETPATH`` on
macOS), so the check costs one system call and cannot be raced by swapping a folder for a
link after the check.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar, NoReturn

from ..errors import ConfigurationError, StorageError
from ._fd_writes import BackgroundWrite, close_later, pwrite_all, write_all
from ._mapping import map_descriptor, mapping_enabled
from .base import (
    LOCKS_FOLDER,
    RESERVED_PREFIX,
    Buffer,
    LockManagerSpec,
    Storage,
    TempFile,
    remove_local_temp_file,
    stale_local_temp_files,
)

__all__ = ["LocalStorage"]

_TEMP_PREFIX = RESERVED_PREFIX + "tmp-"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0) | _NOFOLLOW
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_DIRECTORY", 0)
# Writes and deletes work relative to an open folder (no path lookup after the check).
_DIR_FD = {os.open, os.mkdir, os.replace, os.unlink, os.stat} <= os.supports_dir_fd
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
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


# Linux's suffix for a descriptor whose file was unlinked (or replaced by a rename) since opening.
_DELETED = " (deleted)"


def _linux_fd_path(fd: int) -> str | None:
    return os.readlink(f"/proc/self/fd/{fd}")


def _macos_fd_path(fd: int) -> str | None:
    import fcntl

    raw = fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024))  # type: ignore[attr-defined,unused-ignore]
    return os.fsdecode(raw.split(b"\0", 1)[0])


def _no_fd_path(fd: int) -> str | None:
    return None


#: The path the kernel resolved for an open file descriptor, or None where unknown.
fd_path = (_linux_fd_path if os.path.isdir("/proc/self/fd")
           else _macos_fd_path if sys.platform == "darwin" else _no_fd_path)


# Bodies from this size are written from a thread while the caller computes their head.
_OVERLAP_FROM = 1 << 20
# Writes from this size free the pages of the file they replace in a background thread:
# the last close of a 256 MiB file frees 65,536 page-cache pages (tens of ms).
_RELEASE_LATER_FROM = 1 << 20


def _open_replaced(name: str, dir_fd: int) -> int | None:
    """A descriptor keeping the file at ``name`` (about to be replaced) alive, or None."""
    try:
        return os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError:  # absent, a link, a folder: nothing to release
        return None


class LocalStorage(Storage):
    """Records as files under ``basepath``; ``fsync=True`` makes writes durable across power loss.

    Large records are loaded by mapping their file copy-on-write (zero-copy); ``mmap=False``
    reads them into private memory instead (``None``: ``RESULTKIT_MMAP``, default on). Turn
    it off on a network filesystem where another host may truncate files in place.

    >>> store = LocalStorage("/tmp/results")            # doctest: +SKIP
    >>> store.write("task/abc", b"hello")               # doctest: +SKIP
    """

    block_type = "local"
    mmap: bool | None = None  # instances pickled before the option existed
    remote_reads: ClassVar[bool] = False

    def __init__(self, basepath: str | os.PathLike[str], fsync: bool = False, mmap: bool | None = None) -> None:
        if not isinstance(basepath, (str, os.PathLike)) or not os.fspath(basepath):
            raise ConfigurationError(
                f"LocalStorage basepath must be a non-empty path, got {type(basepath).__name__} "
                f"{basepath!r}; pass e.g. LocalStorage('~/results')"
            )
        # Absolute at construction: a pickled instance must mean the same folder in a
        # worker process whose working directory differs.
        self.basepath = Path(os.path.abspath(os.path.expanduser(os.fspath(basepath))))
        self.fsync = bool(fsync)
        if mmap is not None and not isinstance(mmap, bool):
            raise ConfigurationError(
                f"LocalStorage mmap must be True, False or None (RESULTKIT_MMAP decides), got "
                f"{type(mmap).__name__} {mmap!r}"
            )
        #: Map large records copy-on-write when loading them; None: ``RESULTKIT_MMAP`` decides.
        self.mmap = mmap
        # The hot read path joins keys by concatenation: valid keys are plain relative paths.
        self._root = os.path.join(str(self.basepath), "")
        # What an opened key's path must be: basepath with its own links resolved, then the key.
        self._real_root = os.path.join(os.path.realpath(self.basepath), "")

    def __repr__(self) -> str:
        mapping = "" if self.mmap is None else f", mmap={self.mmap}"
        return f"LocalStorage({str(self.basepath)!r}{', fsync=True' if self.fsync else ''}{mapping})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, LocalStorage)
            and (other.basepath, other.fsync, other.mmap) == (self.basepath, self.fsync, self.mmap)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.basepath, self.fsync, self.mmap))

    def describe(self) -> str:
        return str(self.basepath)

    def to_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"basepath": str(self.basepath), "fsync": self.fsync}
        if self.mmap is not None:
            block["mmap"] = self.mmap
        return block

    def path_of(self, key: str) -> Path:
        """The file that holds ``key``."""
        return self.basepath / key

    @classmethod
    def from_url(cls, url: str, **options: Any) -> LocalStorage:
        """``file:///data/results`` (or ``local://``) -> ``LocalStorage("/data/results")``."""
        folder = url.partition("://")[2]
        if not folder:
            raise ConfigurationError(f"storage URL {url!r} names no folder; use e.g. 'file:///data/results'")
        return cls(folder, **options)

    # -- what this storage names for the layers above ----------------------------------

    def default_lock_manager(self) -> LockManagerSpec:
        """A ``FileLockManager`` in ``basepath/.rk-locks``."""
        return LockManagerSpec("file", {"directory": self.basepath / LOCKS_FOLDER})

    def stale_temp_files(self, min_age: float) -> Sequence[TempFile]:
        return stale_local_temp_files(str(self.basepath), min_age)

    def remove_temp_file(self, temp: TempFile) -> bool:
        return remove_local_temp_file(temp)

    def local_file_root(self) -> str | None:
        # A subclass may override the primitives (to count, transform or relocate reads),
        # which direct file access would bypass: only LocalStorage itself offers its files.
        return self._root if type(self) is LocalStorage else None

    def _fail(self, action: str, key: str, exc: OSError) -> NoReturn:
        raise StorageError(
            f"LocalStorage({str(self.basepath)!r}) could not {action} key {key!r}: "
            f"{type(exc).__name__}: {exc}; check the folder exists and is writable"
        ) from exc

    # -- never through a link -----------------------------------------------------------

    def _check_opened(self, fd: int, key: str, for_key: str | None = None) -> None:
        """``StorageError`` unless ``fd`` (opened for ``key``) is ``basepath/key`` itself, reached without links.

        ``for_key`` is the key the caller works on, when ``key`` is its folder.
        """
        actual = fd_path(fd)
        if actual is None:  # no way to ask the kernel: check the path (not race-free)
            named = os.path.join(self._real_root, *key.split("/")) if key else self._real_root[:-1]
            if os.path.normcase(os.path.realpath(named)) == os.path.normcase(named):
                return
            self._refuse_link(for_key or key, os.path.realpath(named))
        expected = self._real_root + key if key else self._real_root[:-1]
        if actual == expected:
            return
        if actual.endswith(_DELETED) and actual[: -len(_DELETED)] == expected:
            return  # replaced or deleted since it was opened: still the file the key named
        self._real_root = os.path.join(os.path.realpath(self.basepath), "")  # basepath itself moved?
        if actual != (self._real_root + key if key else self._real_root[:-1]):
            self._refuse_link(for_key or key, actual)

    def _refuse_link(self, key: str, resolved: str | None = None) -> NoReturn:
        link = self._find_link(key)
        if link is not None:
            try:
                target = os.readlink(link)
            except OSError:
                target = "?"
            where = f"goes through the symbolic link {link!r} -> {target!r}"
        else:
            where = f"resolves to {resolved!r}, not to a path inside it"
        raise StorageError(
            f"LocalStorage({str(self.basepath)!r}): key {key!r} {where}; resultkit never follows "
            "links inside its folder (they could lead outside it): replace the link with a real "
            "folder or file, or point LocalStorage at the link's target"
        )

    def _find_link(self, key: str) -> str | None:
        """The first symbolic link on the way from basepath to ``key``, if any."""
        path = str(self.basepath)
        for segment in key.split("/") if key else ():
            path = os.path.join(path, segment)
            if os.path.islink(path):
                return path
            if not os.path.isdir(path):
                break
        return None

    def _open_fd(self, key: str) -> int:
        """A checked read-only descriptor for ``key``; ``FileNotFoundError`` if absent or a folder."""
        try:
            fd = os.open(self._root + key, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(f"no object at key {key!r} in {self.basepath}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link as the key's last segment
                self._refuse_link(key)
            self._fail("open", key, exc)
        if "/" in key:  # a key in basepath itself has no folder to check: O_NOFOLLOW covered it
            try:
                self._check_opened(fd, key)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _open_dir(self, folder: str, create: bool, key: str) -> int | None:
        """A descriptor of ``basepath/folder`` (the folder of ``key``), reached without links (made if ``create``).

        None where folders cannot be opened (Windows): the path is checked instead.
        """
        if not _DIR_FD:
            named = os.path.join(self._real_root, *folder.split("/")) if folder else self._real_root[:-1]
            # realpath resolves every link among the parts that exist: checked before creating.
            if os.path.normcase(os.path.realpath(named)) != os.path.normcase(named):
                self._refuse_link(key, os.path.realpath(named))
            if not os.path.isdir(named):
                if not create:
                    raise FileNotFoundError(f"no folder {folder!r} in {self.basepath}")
                os.makedirs(named, exist_ok=True)
            return None
        try:
            fd = os.open(self._root + folder if folder else str(self.basepath), _DIR_FLAGS)
        except FileNotFoundError:
            if not create:
                raise
            return self._make_dirs(folder, key)
        if folder:  # basepath itself may be (or go through) a link: the user chose it
            try:
                self._check_opened(fd, folder, key)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _make_dirs(self, folder: str, key: str) -> int:
        """Create ``basepath/folder`` one segment at a time, never through a link."""
        os.makedirs(self.basepath, exist_ok=True)
        fd = os.open(str(self.basepath), _DIR_FLAGS)
        try:
            for segment in folder.split("/") if folder else ():
                with contextlib.suppress(FileExistsError):
                    os.mkdir(segment, 0o777, dir_fd=fd)
                try:
                    child = os.open(segment, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and self._find_link(folder):
                        self._refuse_link(key)
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open(self, key: str) -> IO[bytes]:
        fd = self._open_fd(key)
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise FileNotFoundError(f"no object at key {key!r} in {self.basepath}")
            # Unbuffered: FileIO.readinto goes straight into the caller's buffer.
            return open(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

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
        fd = self._open_fd(key)
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

    def _map_read(self, key: str, size: int) -> memoryview | None:
        if not mapping_enabled(self.mmap):
            return None
        fd = self._open_fd(key)  # checked: never through a link
        try:
            return map_descriptor(fd, size)
        except OSError as exc:
            self._fail("map", key, exc)
        finally:
            os.close(fd)

    def _write_chunks(self, key: str, chunks: Iterable[Buffer]) -> None:
        self._write_file(key, lambda fd: write_all(fd, chunks))

    def _write_with_head(self, key: str, body: Sequence[memoryview], head_size: int,
                         make_head: Callable[[], Buffer]) -> None:
        body_size = sum(view.nbytes for view in body)
        if body_size < _OVERLAP_FROM:
            self._write_file(key, lambda fd: write_all(fd, [make_head(), *body]))
            return

        def fill(fd: int) -> int:
            # The body goes to the kernel from a thread (os.pwrite releases the GIL) while
            # make_head runs here (the payload's checksum holds the GIL): the two overlap.
            writer = BackgroundWrite(fd, body, head_size)
            try:
                head = memoryview(make_head()).cast("B")
            finally:
                writer.finish()
            if head.nbytes != head_size:
                raise StorageError(
                    f"write_with_head({key!r}): make_head() gave {head.nbytes} bytes, not the "
                    f"{head_size} announced; this is a bug in the caller"
                )
            pwrite_all(fd, [head], 0)
            return head_size + body_size

        self._write_file(key, fill)

    def _write_file(self, key: str, write: Callable[[int], int]) -> None:
        """Make a temporary file, fill it with ``write(fd)`` (returning its size), and rename it over ``key``.

        After a large write the file replaced (if any) is probably large too: the pages it
        holds are freed by a background thread rather than by the rename in this one.
        """
        folder, _, name = key.rpartition("/")
        temp = f"{_TEMP_PREFIX}{_temp_token}{next(_temp_counter)}"
        # The temp file is made and renamed relative to the checked folder's descriptor, so
        # nothing can redirect the write once the folder passed the check.
        try:
            dir_fd = self._open_dir(folder, create=True, key=key)
        except StorageError:
            raise
        except OSError as exc:
            self._fail("create a file for", key, exc)
        if dir_fd is None:  # no *at() calls on this platform (Windows): paths, checked above
            self._write_by_path(key, self._root + folder if folder else str(self.basepath),
                                temp, name, write)
            return
        try:
            try:
                fd = os.open(temp, _OPEN_FLAGS, 0o666, dir_fd=dir_fd)
            except OSError as exc:
                self._fail("create a file for", key, exc)
            try:
                try:
                    size = self._fill(fd, write)
                finally:
                    os.close(fd)
                replaced = _open_replaced(name, dir_fd) if size >= _RELEASE_LATER_FROM else None
                try:
                    os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                finally:
                    if replaced is not None:
                        close_later(replaced)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=dir_fd)
                if isinstance(exc, OSError):
                    self._fail("write", key, exc)
                raise
            if self.fsync:
                with contextlib.suppress(OSError):  # makes the rename itself durable
                    os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _fill(self, fd: int, write: Callable[[int], int]) -> int:
        size = write(fd)
        # The kernel stamps mtime from a coarse clock (one tick is ms), so two
        # same-size overwrites could share a version token; a fine-grained stamp
        # keeps ``version`` distinct for every write.
        now = time.time_ns()
        os.utime(fd, ns=(now, now))
        if self.fsync:
            os.fsync(fd)
        return size

    def _write_by_path(self, key: str, directory: str, temp: str, name: str, write: Callable[[int], int]) -> None:
        temp_path, target = os.path.join(directory, temp), os.path.join(directory, name)
        try:
            fd = os.open(temp_path, _OPEN_FLAGS, 0o666)
        except OSError as exc:
            self._fail("create a file for", key, exc)
        try:
            try:
                self._fill(fd, write)
            finally:
                os.close(fd)
            os.replace(temp_path, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            if isinstance(exc, OSError):
                self._fail("write", key, exc)
            raise

    def _exists(self, key: str) -> bool:
        try:
            fd = self._open_fd(key)
        except FileNotFoundError:
            return False
        try:
            return stat.S_ISREG(os.fstat(fd).st_mode)
        finally:
            os.close(fd)

    def _delete(self, key: str) -> bool:
        folder, _, name = key.rpartition("/")
        try:
            dir_fd = self._open_dir(folder, create=False, key=key)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except StorageError:
            raise
        except OSError as exc:
            self._fail("delete", key, exc)
        if dir_fd is None:
            return self._delete_by_path(key)
        try:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return False
            if stat.S_ISLNK(st.st_mode):
                self._refuse_link(key)
            if stat.S_ISDIR(st.st_mode):
                return False
            try:
                os.unlink(name, dir_fd=dir_fd)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return False
            except OSError as exc:
                self._fail("delete", key, exc)
            return True
        finally:
            os.close(dir_fd)

    def _delete_by_path(self, key: str) -> bool:
        path = self._root + key
        if os.path.islink(path):
            self._refuse_link(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except PermissionError as exc:
            if os.path.isdir(path):  # Windows and macOS report EPERM/EACCES for unlink(dir)
                return False
            self._fail("delete", key, exc)
        except OSError as exc:
            self._fail("delete", key, exc)
        return True

    def _list(self, prefix: str) -> Iterator[str]:
        # Walk only the deepest folder the prefix names, then filter on the full string,
        # so "a/b" finds "a/b", "a/b/c" and "a/bc" as on an object store. Links are not
        # records and are never followed: they are skipped.
        folder = prefix.rpartition("/")[0]
        try:
            dir_fd = self._open_dir(folder, create=False, key=prefix)  # a linked prefix folder is refused
            if dir_fd is not None:
                os.close(dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            return
        except StorageError:
            raise
        except OSError as exc:
            self._fail("list", prefix, exc)
        pending = [(self._root + folder if folder else str(self.basepath), folder + "/" if folder else "")]
        while pending:
            directory, rel_dir = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed meanwhile
            except OSError as exc:
                self._fail("list", prefix, exc)
            for entry in entries:
                name = entry.name
                if name.startswith(RESERVED_PREFIX) or entry.is_symlink():
                    continue
                key = rel_dir + name
                if entry.is_dir(follow_symlinks=False):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        pending.append((entry.path, key + "/"))
                elif key.startswith(prefix):
                    yield key

    def _version(self, key: str) -> str | None:
        try:
            fd = self._open_fd(key)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
        except OSError as exc:
            self._fail("stat", key, exc)
        finally:
            os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
