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

from ..errors import ConfigurationError
from .base import PollingLockManager, check_lock_args, not_held_error

__all__ = ["FileLockManager"]

_HOST = socket.gethostname()


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


@contextmanager
def _flocked(guard_path: Path) -> Iterator[None]:
    """Hold an exclusive OS lock on ``guard_path`` (fcntl.flock is ~100x cheaper than filelock)."""
    fd = os.open(guard_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
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
        self._directory_made = False

    def __repr__(self) -> str:
        return f"FileLockManager({str(self.directory)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileLockManager) and other.directory == self.directory

    def __hash__(self) -> int:
        return hash((FileLockManager, self.directory))

    # -- files ------------------------------------------------------------------------

    def _lock_path(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + ".lock")

    def _guard(self, lock_path: Path) -> AbstractContextManager[Any]:
        if not self._directory_made:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"FileLockManager cannot create its lock directory {str(self.directory)!r} "
                    f"({exc}); pass a writable directory shared by every process that locks"
                ) from exc
            self._directory_made = True
        guard_path = lock_path.with_suffix(".guard")
        if fcntl is None:  # pragma: no cover - Windows
            from filelock import FileLock

            return FileLock(str(guard_path))
        return _flocked(guard_path)

    @staticmethod
    def _read(lock_path: Path) -> dict[str, Any] | None:
        """The live lease in ``lock_path``, or None if absent, expired, dead or unreadable."""
        try:
            lease = json.loads(lock_path.read_bytes())
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
        tmp = lock_path.with_name(f".{lock_path.stem}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(lease))
        os.replace(tmp, lock_path)  # readers see the old or the new lease, never a torn one

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
        """Release ``holder``'s lock on ``key``; raises ``TransactionError`` if not held by it."""
        check_lock_args(key, holder)
        lock_path = self._lock_path(key)
        with self._guard(lock_path):
            lease = self._read(lock_path)
            if lease is None or lease["holder"] != holder:
                raise not_held_error(key, holder, lease["holder"] if lease else None)
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
        lease = self._read(self._lock_path(key))
        return None if lease is None else str(lease["holder"])
