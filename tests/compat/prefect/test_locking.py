"""Answers Prefect's tests/test_locking.py: the memory and file-system lock managers and the store's locks.

Each test is ours, named after the Prefect test whose behaviour it checks. Prefect's
``FileSystemLockManager(lock_files_directory=...)`` is our ``FileLockManager(directory)``;
its clock-patched hold-timeout tests use real short leases here, waited out with
``wait_for_lock`` (no sleeps).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from resultkit.errors import LockNotHeldError
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import FileLockManager, MemoryLockManager

from ._lock_waits import lock_wait_started


def _key() -> str:
    return f"compat/{uuid.uuid4().hex}"


def _check_read_locked_key(store: ResultStore) -> None:
    """A read of a key another holder has locked waits, then returns what that holder wrote."""
    key = _key()
    read: queue.Queue[Any] = queue.Queue()
    assert store.acquire_lock(key, holder="holder1")
    with lock_wait_started() as waiting:
        reader = threading.Thread(target=lambda: read.put(store.read(key).result))
        reader.start()
        assert waiting.wait(60), "the read did not wait for the lock"
    store.write(key, {"test": "value"}, holder="holder1")
    store.release_lock(key, holder="holder1")
    reader.join(60)
    assert read.get_nowait() == {"test": "value"}


def _check_write_with_same_holder(store: ResultStore) -> None:
    key = _key()
    assert store.acquire_lock(key)  # the default holder: this host, process and thread
    store.write(key, {"test": "value"})
    assert store.read(key).result == {"test": "value"}
    store.release_lock(key)


def _check_write_with_different_holder(store: ResultStore) -> None:
    key = _key()
    assert store.acquire_lock(key, holder="holder1")
    with pytest.raises(RuntimeError, match=f"cannot write the record '{key}'.*'holder1'"):
        store.write(key, {"test": "value"}, holder="holder2")
    store.release_lock(key, holder="holder1")


def _check_locking_works_across_threads(locks: Any) -> None:
    key = _key()
    assert locks.acquire_lock(key, holder="holder1")
    taken: list[bool] = []
    thread = threading.Thread(target=lambda: taken.append(locks.acquire_lock(key, holder="holder2")))
    thread.start()
    locks.release_lock(key, holder="holder1")
    thread.join(60)
    assert taken == [True]
    assert locks.is_lock_holder(key, "holder2")
    locks.release_lock(key, holder="holder2")


class TestMemoryLockManager:
    """Prefect's tests/test_locking.py::TestMemoryLockManager."""

    def test_singleton(self) -> None:
        assert MemoryLockManager() is MemoryLockManager()

    def test_read_locked_key(self, tmp_path: Path) -> None:
        _check_read_locked_key(ResultStore(LocalStorage(tmp_path), lock_manager=MemoryLockManager()))

    def test_write_to_key_with_same_lock_holder(self, tmp_path: Path) -> None:
        _check_write_with_same_holder(ResultStore(LocalStorage(tmp_path),
                                                  lock_manager=MemoryLockManager()))

    def test_write_to_key_with_different_lock_holder(self, tmp_path: Path) -> None:
        _check_write_with_different_holder(ResultStore(LocalStorage(tmp_path),
                                                       lock_manager=MemoryLockManager()))

    def test_acquire_lock(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        assert locks.is_locked(key)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_acquire_lock_idempotent(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        assert locks.acquire_lock(key, holder="holder1")
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_acquire_lock_with_hold_timeout(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert locks.is_locked(key)
        assert locks.wait_for_lock(key, timeout=30)  # the lease runs out by itself
        assert not locks.is_locked(key)

    def test_acquire_lock_with_acquire_timeout(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        assert not locks.acquire_lock(key, holder="holder2", acquire_timeout=0.1)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_acquire_lock_when_previously_holder_timed_out(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert locks.acquire_lock(key, holder="holder2")  # waits out holder1's lease
        assert locks.is_lock_holder(key, "holder2")
        locks.release_lock(key, holder="holder2")
        assert not locks.is_locked(key)

    def test_raises_if_releasing_with_wrong_holder(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        with pytest.raises(ValueError, match=f"no lock held by 'holder2' on '{key}'"):
            locks.release_lock(key, holder="holder2")
        locks.release_lock(key, holder="holder1")

    def test_is_lock_holder(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert not locks.is_lock_holder(key, "holder1")
        assert locks.acquire_lock(key, holder="holder1")
        assert locks.is_lock_holder(key, "holder1")
        assert not locks.is_lock_holder(key, "holder2")
        locks.release_lock(key, holder="holder1")

    def test_wait_for_lock(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert locks.wait_for_lock(key)
        assert not locks.is_locked(key)

    def test_wait_for_lock_with_timeout(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        assert not locks.wait_for_lock(key, timeout=0.1)
        assert locks.is_locked(key)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_wait_for_lock_never_been_locked(self) -> None:
        key = _key()
        assert not MemoryLockManager().is_locked(key)
        assert MemoryLockManager().wait_for_lock(key)

    def test_locking_works_across_threads(self) -> None:
        _check_locking_works_across_threads(MemoryLockManager())

    def test_serialize_with_no_locks(self) -> None:
        copy = cloudpickle.loads(cloudpickle.dumps(MemoryLockManager()))
        assert isinstance(copy, MemoryLockManager)

    def test_serialize_with_active_locks_logs_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        with caplog.at_level(logging.WARNING, logger="resultkit.locking"):
            cloudpickle.dumps(locks)
        locks.release_lock(key, holder="holder1")
        assert any("lock information will not be available" in record.getMessage()
                   for record in caplog.records)

    def test_deserialized_manager_get_singleton_lock_information(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        copy = cloudpickle.loads(cloudpickle.dumps(locks))
        assert copy.is_locked(key) and copy.is_lock_holder(key, "holder1")
        locks.release_lock(key, holder="holder1")

    def test_manager_has_no_lock_information_when_deserialized_in_new_process(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        pickled = cloudpickle.dumps(locks)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            seen = pool.submit(_lock_seen_after_unpickling, pickled, key, "holder1").result(120)
        locks.release_lock(key, holder="holder1")
        assert seen == (False, False)

    def test_manager_has_lock_information_when_deserialized_in_new_process_with_fork(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        pickled = cloudpickle.dumps(locks)
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=1, mp_context=fork) as pool:
            seen = pool.submit(_lock_seen_after_unpickling, pickled, key, "holder1").result(120)
        locks.release_lock(key, holder="holder1")
        assert seen == (True, True)  # a forked child starts with a copy of the table

    def test_singleton_behavior_after_deserialization(self) -> None:
        key, locks = _key(), MemoryLockManager()
        assert locks.acquire_lock(key, holder="holder1")
        copy = cloudpickle.loads(cloudpickle.dumps(locks))
        assert locks.is_locked(key)
        assert copy is MemoryLockManager()
        other = _key()
        assert copy.acquire_lock(other, holder="holder2") and locks.is_locked(other)
        locks.release_lock(key, holder="holder1")
        locks.release_lock(other, holder="holder2")


def _lock_seen_after_unpickling(pickled: bytes, key: str, holder: str) -> tuple[bool, bool]:
    """(is_locked, is_lock_holder) as seen by a manager unpickled in a child process."""
    copy = cloudpickle.loads(pickled)
    return copy.is_locked(key), copy.is_lock_holder(key, holder)


class TestFileSystemLockManager:
    """Prefect's tests/test_locking.py::TestFileSystemLockManager, against our FileLockManager."""

    @pytest.fixture
    def locks(self, tmp_path: Path) -> FileLockManager:
        return FileLockManager(tmp_path / "locks")

    @pytest.fixture
    def store(self, tmp_path: Path, locks: FileLockManager) -> ResultStore:
        return ResultStore(LocalStorage(tmp_path / "storage"), lock_manager=locks)

    def test_read_locked_key(self, store: ResultStore) -> None:
        _check_read_locked_key(store)

    def test_write_to_key_with_same_lock_holder(self, store: ResultStore) -> None:
        _check_write_with_same_holder(store)

    def test_write_to_key_with_different_lock_holder(self, store: ResultStore) -> None:
        _check_write_with_different_holder(store)

    def test_acquire_lock(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1")
        assert locks.is_locked(key)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_acquire_lock_async(self, locks: FileLockManager) -> None:
        key = _key()
        assert asyncio.run(locks.aacquire_lock(key, holder="holder1"))
        assert locks.is_locked(key)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_acquire_lock_idempotent(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1")
        assert locks.acquire_lock(key, holder="holder1")
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_acquire_lock_with_hold_timeout(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert locks.is_locked(key)
        assert locks.wait_for_lock(key, timeout=30)
        assert not locks.is_locked(key)

    def test_acquire_lock_with_acquire_timeout(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1")
        assert not locks.acquire_lock(key, holder="holder2", acquire_timeout=0.1)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_acquire_lock_when_previously_holder_timed_out(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert locks.acquire_lock(key, holder="holder2")
        assert locks.is_lock_holder(key, "holder2")
        locks.release_lock(key, holder="holder2")
        assert not locks.is_locked(key)

    def test_raises_if_releasing_with_wrong_holder(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1")
        with pytest.raises(ValueError, match=f"no lock held by 'holder2' on '{key}'") as err:
            locks.release_lock(key, holder="holder2")
        assert isinstance(err.value, LockNotHeldError)

    def test_is_lock_holder(self, locks: FileLockManager) -> None:
        key = _key()
        assert not locks.is_lock_holder(key, "holder1")
        assert locks.acquire_lock(key, holder="holder1")
        assert locks.is_lock_holder(key, "holder1")
        assert not locks.is_lock_holder(key, "holder2")

    def test_wait_for_lock(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert locks.wait_for_lock(key)
        assert not locks.is_locked(key)

    def test_wait_for_lock_with_timeout(self, locks: FileLockManager) -> None:
        key = _key()
        assert locks.acquire_lock(key, holder="holder1")
        assert not locks.wait_for_lock(key, timeout=0.1)
        assert locks.is_locked(key)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_wait_for_lock_never_been_locked(self, locks: FileLockManager) -> None:
        key = _key()
        assert not locks.is_locked(key)
        assert locks.wait_for_lock(key)

    def test_wait_for_lock_async(self, locks: FileLockManager) -> None:
        key = _key()

        async def main() -> tuple[bool, bool]:
            assert await locks.aacquire_lock(key, holder="holder1", hold_timeout=0.2)
            refused = await locks.await_for_lock(key, timeout=0.01)
            freed = await locks.await_for_lock(key, timeout=30)  # the lease runs out
            return refused, freed

        assert asyncio.run(main()) == (False, True)
        assert not locks.is_locked(key)

    def test_wait_for_lock_async_with_timeout(self, locks: FileLockManager) -> None:
        key = _key()
        assert asyncio.run(locks.aacquire_lock(key, holder="holder1"))
        assert not asyncio.run(locks.await_for_lock(key, timeout=0.1))
        assert locks.is_locked(key)
        locks.release_lock(key, holder="holder1")
        assert not locks.is_locked(key)

    def test_wait_for_lock_async_never_been_locked(self, locks: FileLockManager) -> None:
        key = _key()
        assert not locks.is_locked(key)
        assert asyncio.run(locks.await_for_lock(key))

    def test_locking_works_across_threads(self, locks: FileLockManager) -> None:
        _check_locking_works_across_threads(locks)
