"""Commit journals: what makes a commit of several records all or nothing to readers.

A transaction that writes more than one record first writes a journal to each storage
it writes to, at the reserved key ``.rk-txn/<commit id>``, naming the committing
process and every key it will write. Each record of the commit names the commit id
in its header. Deleting the journal is the commit point:

- a record whose header names a commit id is visible only once that commit's journal
  is gone (``commit_finished``); while the journal exists it reads as a miss;
- if the committer dies (SIGKILL, a crash) or gives up (a storage outage that outlasts
  its undo), the journal stays, so its records stay invisible; the next reader that
  meets one of them, or ``resultkit gc``, *recovers* the commit once its holder is gone
  or its lease ran out: it deletes the records that still name the commit, then the
  journal. Nobody ever has to delete a record by hand.

A single-record commit, the hot path of every task call, writes no journal and its
header names no commit: it pays nothing for this. The format is documented in
``docs/record-format.md``; the protocol in ``docs/transactions.md``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .._env import env_float
from ..errors import RecordCorruptError
from ..storage.base import RESERVED_PREFIX, Storage

__all__ = [
    "JOURNAL_FOLDER",
    "CommitJournal",
    "Holder",
    "commit_finished",
    "new_commit_id",
    "recover_commit",
    "sweep_journals",
]

logger = logging.getLogger("resultkit.transactions")

#: The reserved folder of every storage that holds the journals of unfinished commits.
JOURNAL_FOLDER = RESERVED_PREFIX + "txn"
_FORMAT = "resultkit-commit"
_BEAT_SUFFIX = ".beat"
#: Ids of commits seen finished (a journal, once deleted, never comes back): bounded.
_finished: dict[str, None] = {}
_FINISHED_SIZE = 4096
#: Ids of the commits this process is writing right now.
_active: set[str] = set()
_active_guard = threading.Lock()


def new_commit_id() -> str:
    """A fresh commit id (128 random bits, hex)."""
    return uuid.uuid4().hex


def _lease_seconds() -> float:
    return env_float("commit_lease", 30.0)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None where unknown."""
    stat = _read_text(f"/proc/{pid}/stat")
    if not stat:
        return None
    try:  # the command name (field 2) may hold spaces: count fields after its ')'
        return int(stat.rpartition(")")[2].split()[19])
    except (IndexError, ValueError):
        return None


def _host_id() -> str:
    """This machine and process namespace: pids are comparable only within one."""
    boot = _read_text("/proc/sys/kernel/random/boot_id") or ""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{boot[:8]}/{namespace}"


@dataclass(frozen=True)
class Holder:
    """The process that wrote a journal: its host (and pid namespace), pid and start time."""

    host: str
    pid: int
    start: int | None

    @classmethod
    def current(cls) -> Holder:
        """This process."""
        return _this_holder

    def is_gone(self) -> bool:
        """True when this holder is known to be dead (only decidable on its own host)."""
        if self.host != _this_holder.host:
            return False
        if self.pid == _this_holder.pid and self.start == _this_holder.start:
            return False  # ourselves: the commit id says whether the commit is still running
        try:
            with contextlib.suppress(PermissionError):  # alive, and another user's
                os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        return self.start is not None and _process_start(self.pid) != self.start

    def to_dict(self) -> dict[str, Any]:
        """The holder as JSON-safe fields."""
        return {"host": self.host, "pid": self.pid, "start": self.start}


def _current_holder() -> Holder:
    return Holder(_host_id(), os.getpid(), _process_start(os.getpid()))


_this_holder = _current_holder()


def _reset_holder_after_fork() -> None:
    global _this_holder, _heartbeat
    _this_holder = _current_holder()
    _active.clear()
    _heartbeat = _Heartbeat()  # the parent's thread (and maybe its held lock) did not come along


os.register_at_fork(after_in_child=_reset_holder_after_fork)


def backing(storage: Storage) -> Storage:
    """Where journals live for ``storage``: a ``CachedStorage``'s remote, else itself."""
    cached = sys.modules.get("resultkit.storage.cached")  # not loaded: no CachedStorage exists
    if cached is not None and isinstance(storage, cached.CachedStorage):
        return storage.remote  # type: ignore[no-any-return]
    return storage


def _journal_key(commit_id: str) -> str:
    return f"{JOURNAL_FOLDER}/{commit_id}"


class _Heartbeat:
    """One daemon thread renewing the lease of every open journal of this process.

    A journal opened less than a third of a lease ago is not renewed yet, so a short
    commit (most of them) costs no write and no thread start for its lease.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._journals: dict[str, CommitJournal] = {}
        self._thread: threading.Thread | None = None

    def add(self, journal: CommitJournal) -> None:
        with self._guard:
            self._journals[journal.commit_id] = journal
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="resultkit-commit-lease",
                                                daemon=True)
                self._thread.start()

    def remove(self, journal: CommitJournal) -> None:
        with self._guard:
            self._journals.pop(journal.commit_id, None)

    def _run(self) -> None:
        while True:
            interval = max(_lease_seconds() / 3, 0.05)
            time.sleep(interval)
            with self._guard:
                due = [j for j in self._journals.values() if time.monotonic() - j.renewed >= interval]
            for journal in due:
                journal.renew()


_heartbeat = _Heartbeat()


class CommitJournal:
    """The journal of one commit in one storage: opened before its records, closed as its commit point.

    While open, the process's heartbeat renews its lease every third of the lease, so a
    slow commit on another machine is never taken for a dead one.
    """

    def __init__(self, storage: Storage, commit_id: str, keys: Sequence[str]) -> None:
        self.storage = backing(storage)
        self.commit_id = commit_id
        self.keys = list(keys)
        #: ``time.monotonic()`` of the journal's write or its last renewal.
        self.renewed = 0.0
        self._renewal = threading.Lock()  # a renewal and the close never interleave
        self._open = False
        self._beaten = False

    @property
    def key(self) -> str:
        """Where the journal lives in its storage."""
        return _journal_key(self.commit_id)

    def open(self) -> None:
        """Write the journal (before any record of the commit) and hand it to the heartbeat."""
        body = {
            "format": _FORMAT, "version": 1, "commit": self.commit_id,
            "holder": _this_holder.to_dict(), "started": time.time(),
            "lease_seconds": _lease_seconds(), "keys": self.keys,
        }
        with _active_guard:
            _active.add(self.commit_id)
        try:
            self.storage._write_chunks(self.key, [orjson.dumps(body)])
        except BaseException:
            self._deactivate()
            raise
        self.renewed = time.monotonic()
        self._open = True
        _heartbeat.add(self)

    def renew(self) -> None:
        """Write the heartbeat object: this commit is alive (a no-op once closed)."""
        with self._renewal:
            if not self._open:
                return
            try:
                self.storage._write_chunks(self.key + _BEAT_SUFFIX, [orjson.dumps(time.time())])
                self._beaten = True
                self.renewed = time.monotonic()
            except Exception:
                logger.warning("could not renew the lease of commit %s in %s", self.commit_id,
                               self.storage.describe(), exc_info=True)

    def _stop_heartbeat(self) -> None:
        _heartbeat.remove(self)
        with self._renewal:
            self._open = False

    def _deactivate(self) -> None:
        with _active_guard:
            _active.discard(self.commit_id)

    def close(self) -> bool:
        """Delete the journal: the commit point (or the end of a complete undo).

        False if the journal was already gone: the commit ran past its lease and a
        recovery undid it, so the caller must treat the commit as failed. The commit
        stays active in this process until its journal is gone, so a reader here never
        takes a commit that is finishing for an abandoned one.
        """
        self._stop_heartbeat()
        try:
            deleted = self.storage._delete(self.key)
        finally:
            self._deactivate()
        if self._beaten:
            _delete_quietly(self.storage, self.key + _BEAT_SUFFIX)
        if deleted:
            _remember_finished(self.commit_id)
        return deleted

    def abandon(self) -> None:
        """Stop renewing its lease and leave the journal, for the next reader or ``gc`` to recover."""
        self._stop_heartbeat()
        self._deactivate()


def _delete_quietly(storage: Storage, key: str) -> None:
    try:
        storage._delete(key)
    except Exception:
        logger.debug("could not delete %s in %s", key, storage.describe(), exc_info=True)


def _remember_finished(commit_id: str) -> None:
    if len(_finished) >= _FINISHED_SIZE:
        _finished.clear()
    _finished[commit_id] = None


@dataclass(frozen=True)
class _Journal:
    commit_id: str
    holder: Holder
    started: float
    lease_seconds: float
    keys: tuple[str, ...]


def _parse_journal(commit_id: str, data: bytes) -> _Journal:
    try:
        body = orjson.loads(data)
        holder = body["holder"]
        journal = _Journal(
            commit_id=str(body["commit"]),
            holder=Holder(str(holder["host"]), int(holder["pid"]),
                          None if holder.get("start") is None else int(holder["start"])),
            started=float(body["started"]), lease_seconds=float(body["lease_seconds"]),
            keys=tuple(str(key) for key in body["keys"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RecordCorruptError(f"commit journal {commit_id} is unreadable ({exc})") from None
    if body.get("format") != _FORMAT or journal.commit_id != commit_id:
        raise RecordCorruptError(f"commit journal {commit_id} is not a resultkit commit journal")
    return journal


def _last_sign_of_life(storage: Storage, journal: _Journal) -> float:
    try:
        return max(journal.started, float(orjson.loads(storage._read(_journal_key(journal.commit_id)
                                                                      + _BEAT_SUFFIX))))
    except FileNotFoundError:
        return journal.started
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return journal.started


def _is_abandoned(storage: Storage, journal: _Journal) -> bool:
    holder = journal.holder
    if holder == _this_holder:
        with _active_guard:
            return journal.commit_id not in _active
    if holder.is_gone():
        return True
    if time.time() < journal.started + journal.lease_seconds:
        return False  # cheap: the heartbeat is only read once the first lease ran out
    return time.time() > _last_sign_of_life(storage, journal) + journal.lease_seconds


def commit_finished(storage: Storage, commit_id: str, key: str) -> bool:
    """Whether the commit ``commit_id`` finished, so its record at ``key`` may be read.

    An absent journal means the commit finished, or that a recovery undid it (records
    first, journal last): the record at ``key`` still naming the commit tells which.
    An unfinished commit whose holder is gone (or whose lease ran out) is recovered on
    the way: its records are deleted, then its journal.
    """
    if commit_id in _finished:
        return True
    storage = backing(storage)
    try:
        data = storage._read(_journal_key(commit_id))
    except FileNotFoundError:
        if not _names_commit(storage, key, commit_id):
            return False  # undone while we read it
        _remember_finished(commit_id)
        return True
    try:
        journal = _parse_journal(commit_id, data)
    except RecordCorruptError:
        logger.warning("commit journal %s in %s is unreadable; its records stay invisible",
                       commit_id, storage.describe())
        return False
    if not _is_abandoned(storage, journal):
        return False
    # The holder was seen gone (or done), so the journal can no longer change hands:
    # still there now, the commit never reached its commit point; gone, it did.
    if _recover_if_still_pending(storage, journal):
        return False
    if _names_commit(storage, key, commit_id):
        _remember_finished(commit_id)
        return True
    return False


def _recover_if_still_pending(storage: Storage, journal: _Journal) -> bool:
    """Recover ``journal``'s commit if its journal is still there; whether it was."""
    if not storage._exists(_journal_key(journal.commit_id)):
        return False
    recover_commit(storage, journal)
    return True


def _names_commit(storage: Storage, key: str, commit_id: str) -> bool:
    from .record import MAX_HEADER_SIZE, decode_header, split_frame  # imports nothing from here

    try:
        head = storage._read_head(key, MAX_HEADER_SIZE)
    except FileNotFoundError:
        return False
    try:
        _, metadata = decode_header(split_frame(head, key)[0])
    except RecordCorruptError:
        return False
    return metadata.commit == commit_id


def recover_commit(storage: Storage, journal: _Journal) -> None:
    """Undo an abandoned commit: delete its records that still name it, then its journal."""
    removed = [key for key in journal.keys
               if _names_commit(storage, key, journal.commit_id) and storage._delete(key)]
    storage._delete(_journal_key(journal.commit_id))
    _delete_quietly(storage, _journal_key(journal.commit_id) + _BEAT_SUFFIX)
    logger.warning(
        "undid the unfinished commit %s in %s (its writer %s:%d is gone or its lease ran out): "
        "removed %d of its %d record(s)", journal.commit_id, storage.describe(),
        journal.holder.host, journal.holder.pid, len(removed), len(journal.keys))


def _journal_ids(storage: Storage) -> Iterator[str]:
    prefix = JOURNAL_FOLDER + "/"
    for key in storage._list(prefix):
        name = key[len(prefix):]
        if "/" not in name and not name.endswith(_BEAT_SUFFIX):
            yield name


def sweep_journals(storage: Storage, dry_run: bool = False) -> list[str]:
    """Recover every abandoned commit in ``storage`` (``resultkit gc``); returns their ids.

    ``dry_run=True`` only finds them.
    """
    recovered = []
    storage = backing(storage)
    for commit_id in list(_journal_ids(storage)):
        try:
            journal = _parse_journal(commit_id, storage._read(_journal_key(commit_id)))
        except FileNotFoundError:
            continue  # finished meanwhile
        except RecordCorruptError:
            logger.warning("commit journal %s in %s is unreadable; left in place", commit_id,
                           storage.describe())
            continue
        if _is_abandoned(storage, journal) and (dry_run or _recover_if_still_pending(storage, journal)):
            recovered.append(commit_id)
    return recovered
