"""``FileLockManager``: leased locks for processes sharing a file system.

Each key has a lock file named by the SHA-256 of the full key (so distinct keys
never share one) holding JSON: key, holder, host, pid, process start time and
the lease's expiry. A lock whose lease ran out, or whose process is gone on this
host, is reclaimed. Every change to a lock file (take, reclaim, extend, release)
happens inside a short critical section under an OS lock on a sibling guard file
(``flock``; ``filelock`` where there is no ``fcntl``), so two reclaimers can never
both win; the kernel drops that lock when its process dies, so it cannot go stale.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, ResultkitError, StorageError
from .base import PollingLockManager, check_lock_args, not_held_error

__all__ = ["FileLockManager"]

_HOST = socket.gethostname()
_TMP_SUFFIX = ".tmp"
_FULL = (errno.ENOSPC, errno.EDQUOT)  # a full disk or quota: storage, not configuration
#: A lease's temporary file untouched this long has no writer left (``sweep`` removes it).
STALE_TMP_SECONDS = 3600.0


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is the state (field 3 of stat); a zombie has exited but is not yet reaped.
    return None if fields[0] == b"Z" else fields[19].decode()


def _process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    if not Path("/proc/self/stat").exists():  # no procfs: trust kill(0)
        return True
    now_started = _process_start(pid)
    return now_started is not None and (started is None or now_started == started)


_own_start: tuple[int, str | None] = (-1, None)


def _own_process_start() -> str | None:
    """This process's start time, recomputed after a fork (a child must not claim its parent's)."""
    global _own_start
    pid = os.getpid()
    if _own_start[0] != pid:
        _own_start = (pid, _process_start(pid))
    return _own_start[1]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _lock_guard(guard_path: Path, blocking: bool = True) -> int | None:
    """A descriptor holding an exclusive OS lock on ``guard_path``; None if busy and not ``blocking``.

    ``resultkit gc`` may unlink an idle guard file (under its lock), so after locking,
    the descriptor must still be the file at ``guard_path``; else lock the new one.
    """
    while True:
        fd = os.open(guard_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            held, current = os.fstat(fd), os.stat(guard_path)
        except FileNotFoundError:  # unlinked between open and stat: lock the new file
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
            return fd
        os.close(fd)


@contextmanager
def _flocked(guard_path: Path) -> Iterator[None]:
    """Hold an exclusive OS lock on ``guard_path`` (fcntl.flock is ~100x cheaper than filelock)."""
    fd = _lock_guard(guard_path)
    assert fd is not None
    try:
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


class FileLockManager(PollingLockManager):
    """Locks shared by processes on one machine or a shared file system.

    >>> locks = FileLockManager("/tmp/my-locks")           # doctest: +SKIP
    >>> locks.acquire_lock("results/abc", holder="worker-1", acquire_timeout=5)  # doctest: +SKIP
    True
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._directory_name = str(self.directory)
        self._directory_made = False

    def __repr__(self) -> str:
        return f"FileLockManager({str(self.directory)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileLockManager) and other.directory == self.directory

    def __hash__(self) -> int:
        return hash((FileLockManager, self.directory))

    # -- files ------------------------------------------------------------------------

    def _lock_path(self, key: str) -> Path:
        return Path(self._lock_file(key))

    def _lock_file(self, key: str) -> str:
        # A plain string join: this runs on every guarded write (see results/_locks.py).
        return os.path.join(self._directory_name, hashlib.sha256(key.encode()).hexdigest() + ".lock")

    def _guard(self, lock_path: Path) -> AbstractContextManager[Any]:
        if not self._directory_made:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                if exc.errno in _FULL:
                    raise self._storage_error(exc) from exc
                raise ConfigurationError(
                    f"FileLockManager cannot create its lock directory {str(self.directory)!r} "
                    f"({exc}); pass a writable directory shared by every process that locks"
                ) from exc
            self._directory_made = True
        guard_path = lock_path.with_suffix(".guard")
        if fcntl is None:  # pragma: no cover - Windows
            from filelock import FileLock

            return FileLock(str(guard_path))
        return self._storage_errors(_flocked(guard_path))

    @contextmanager
    def _storage_errors(self, guard: AbstractContextManager[Any]) -> Iterator[None]:
        """Turn a failing lock file (full disk, read-only, quota) into a StorageError naming it."""
        try:
            with guard:
                yield
        except OSError as exc:
            if isinstance(exc, ResultkitError):
                raise
            raise self._storage_error(exc) from exc

    def _storage_error(self, exc: OSError) -> StorageError:
        return StorageError(
            f"FileLockManager cannot write in its lock directory {str(self.directory)!r} "
            f"({type(exc).__name__}: {exc}); free space there (a full disk?) or pass a "
            "writable directory shared by every process that locks"
        )

    @staticmethod
    def _read(lock_path: str | Path) -> dict[str, Any] | None:
        """The live lease in ``lock_path``, or None if absent, expired, dead or unreadable."""
        try:
            with open(lock_path, "rb") as file:
                lease = json.loads(file.read())
            expired = lease["expires"] <= time.time()
            dead = lease["host"] == _HOST and not _process_alive(lease["pid"], lease.get("started"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable (e.g. torn by a power cut): nobody can be holding it
        return None if expired or dead else lease  # type: ignore[no-any-return]

    def _write(self, key: str, lock_path: Path, holder: str, hold_timeout: float) -> None:
        lease = {
            "key": key, "holder": holder, "host": _HOST, "pid": os.getpid(),
            "started": _own_process_start(), "expires": time.time() + hold_timeout,
        }
        tmp = lock_path.with_name(f".{lock_path.stem}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
        try:
            tmp.write_text(json.dumps(lease))
            os.replace(tmp, lock_path)  # readers see the old or the new lease, never a torn one
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk must not leave a half-written lease behind
            raise

    # -- protocol -----------------------------------------------------------------------

    def _try_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        lock_path = self._lock_path(key)
        lease = self._read(lock_path)
        if lease is not None and lease["holder"] != holder:
            return False  # cheap check without the guard; re-checked inside it
        with self._guard(lock_path):
            lease = self._read(lock_path)
            if lease is not None and lease["holder"] != holder:
                return False
            self._write(key, lock_path, holder, hold_timeout)
            return True

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``; ``LockNotHeldError`` if another holder holds it.

        Releasing a lock that no longer exists (released, or its lease ran out) does nothing.
        """
        check_lock_args(key, holder)
        lock_path = self._lock_path(key)
        if not lock_path.exists():
            return  # never locked, or released: nothing to do (and no guard file to create)
        with self._guard(lock_path):
            lease = self._read(lock_path)
            if lease is None:
                return  # released or expired meanwhile: a no-op, as in Prefect
            if lease["holder"] != holder:
                raise not_held_error(key, holder, str(lease["holder"]))
            lock_path.unlink()

    def extend_lock(self, key: str, holder: str, hold_timeout: float) -> bool:
        """Renew ``holder``'s lease on ``key`` for ``hold_timeout`` seconds; False if not held."""
        check_lock_args(key, holder, hold_timeout)
        lock_path = self._lock_path(key)
        with self._guard(lock_path):
            lease = self._read(lock_path)
            if lease is None or lease["holder"] != holder:
                return False
            self._write(key, lock_path, holder, hold_timeout)
            return True

    def lock_holder(self, key: str) -> str | None:
        """The holder of the live lock on ``key``, or None."""
        lease = self._read(self._lock_file(key))
        return None if lease is None else str(lease["holder"])

    # -- clean-up ---------------------------------------------------------------------------

    def sweep(self, dry_run: bool = False, min_tmp_age: float = STALE_TMP_SECONDS) -> list[Path]:
        """Remove the lock and guard files of keys no longer locked; return the paths removed.

        A key is no longer locked when its lease was released, ran out or belongs to a
        dead process; a guard in use right now is skipped. Lease temporary files older
        than ``min_tmp_age`` seconds (left by a process killed mid-write) go too.
        ``dry_run=True`` removes nothing and returns what would go. ``resultkit gc`` calls this.
        """
        if fcntl is None or not self.directory.is_dir():  # pragma: no cover - Windows
            return []
        found: list[Path] = []
        stems: set[str] = set()
        now = time.time()
        for entry in os.scandir(self.directory):
            stem, dot, suffix = entry.name.rpartition(".")
            if "." + suffix == _TMP_SUFFIX:
                try:
                    stale = now - entry.stat().st_mtime > min_tmp_age
                except FileNotFoundError:
                    continue
                if stale:
                    found.append(Path(entry.path))
            elif dot and suffix in ("lock", "guard"):
                stems.add(stem)
        for stem in sorted(stems):
            lock_path = self.directory / f"{stem}.lock"
            guard_path = lock_path.with_suffix(".guard")
            fd = _lock_guard(guard_path, blocking=False)
            if fd is None:
                continue  # someone is taking or releasing this lock right now
            try:
                if self._read(lock_path) is not None:
                    continue  # still locked
                gone = [lock_path] if lock_path.exists() else []
                if not dry_run:
                    lock_path.unlink(missing_ok=True)
                    guard_path.unlink()  # under its own lock: see _lock_guard
                found.extend([*gone, guard_path])
            finally:
                os.close(fd)
        if not dry_run:
            for path in found:
                if path.suffix == _TMP_SUFFIX:
                    path.unlink(missing_ok=True)
        return sorted(found)
