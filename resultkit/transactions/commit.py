"""The write phase of COMMIT: a group of staged records written all or nothing.

One record is written as it is (the hot path: nothing extra). Several are a group
commit: a journal per storage first, then the records naming it, then the journals
deleted as the commit point (``results/journal.py``). A failure undoes what was
written; what cannot be undone stays invisible behind its journal for the next reader
or ``resultkit gc`` to remove.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import ResultkitError, SerializationError, StorageError
from ..results.journal import CommitJournal, new_commit_id

__all__ = ["GroupWriteFailed", "PendingWrite", "commit_error", "write_group"]

logger = logging.getLogger("resultkit.transactions")


@dataclass
class PendingWrite:
    """One staged record of a commit: where it goes and what it holds."""

    store: Any
    key: str
    value: Any
    expiration: datetime | timedelta | None
    extra: dict[str, Any] | None
    #: The lock holder writing it (the store refuses a write while another holds the key).
    holder: str | None = None


class GroupWriteFailed(Exception):
    """A group write failed and was undone; ``cause`` is the error, ``failing`` the write it hit."""

    def __init__(self, cause: BaseException, failing: PendingWrite | None, written: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.failing = failing
        self.written = written


def _storage_id(store: Any) -> tuple[type, str]:
    storage = store.storage
    return type(storage), storage.describe()


def _open_journals(writes: list[PendingWrite], commit_id: str) -> list[CommitJournal]:
    by_storage: dict[tuple[type, str], list[PendingWrite]] = {}
    for write in writes:
        by_storage.setdefault(_storage_id(write.store), []).append(write)
    journals: list[CommitJournal] = []
    try:
        for group in by_storage.values():
            journal = CommitJournal(group[0].store.storage, commit_id, [write.key for write in group])
            journal.open()
            journals.append(journal)
    except BaseException:
        for journal in journals:
            _end_journal(journal, undone=True)
        raise
    return journals


def write_group(writes: list[PendingWrite]) -> None:
    """Write ``writes`` so a reader sees all of them or none; ``GroupWriteFailed`` if undone."""
    commit_id = new_commit_id() if len(writes) > 1 else None
    journals: list[CommitJournal] = []
    written: list[PendingWrite] = []
    failing: PendingWrite | None = None
    try:
        if commit_id is not None:
            journals = _open_journals(writes, commit_id)
        tag = {} if commit_id is None else {"commit": commit_id}
        for write in writes:
            failing = write
            write.store.write(write.key, write.value, expiration=write.expiration, extra=write.extra,
                              holder=write.holder, **tag)
            written.append(write)
        failing = None
        for journal in journals:  # the commit point, storage by storage
            if not journal.close():
                raise StorageError(
                    f"the commit of {len(writes)} records ran past its lease and was undone by "
                    "another process; raise RESULTKIT_COMMIT_LEASE if commits are this slow"
                )
    except BaseException as exc:
        undone = _undo(written)
        for journal in journals:
            _end_journal(journal, undone)
        if not isinstance(exc, Exception):
            raise
        raise GroupWriteFailed(exc, failing, len(written)) from exc


def _undo(written: list[PendingWrite]) -> bool:
    """Delete the records a failed commit wrote; True if every one is gone."""
    undone = True
    for write in reversed(written):
        try:
            write.store.delete(write.key)
        except Exception:
            undone = False
            logger.error("could not remove the record %r written by a failed commit; it stays "
                         "invisible until the next reader or `resultkit gc` removes it",
                         write.key, exc_info=True)
    return undone


def _end_journal(journal: CommitJournal, undone: bool) -> None:
    if undone:
        try:
            journal.close()
            return
        except Exception:
            logger.debug("could not delete commit journal %s", journal.key, exc_info=True)
    journal.abandon()
    logger.warning(
        "a failed commit left its journal in %s; its records stay invisible and the next reader "
        "or `resultkit gc` removes them", journal.storage.describe())


def commit_error(failure: GroupWriteFailed) -> Exception:
    """What a failed commit raises: the cause's own resultkit type, carrying the value it lost."""
    exc, failing = failure.cause, failure.failing
    key, value = (failing.key, failing.value) if failing is not None else (None, None)
    undone = f"the transaction rolled back and removed the {failure.written} record(s) it had written"
    if isinstance(exc, SerializationError):
        return SerializationError(f"committing the record {key!r} failed: {exc}; {undone}; "
                                  "the value is on this error's .value", value=value)
    if isinstance(exc, ResultkitError) and not isinstance(exc, StorageError):
        return exc
    return StorageError(f"committing the record {key!r} failed ({type(exc).__name__}: {exc}), so "
                        f"{undone}; the computed value is on this error's .value", value=value)
