"""Answers prefect-redis's tests/test_locking.py (src/integrations/prefect-redis) on a real redis-server.

Each test is ours, named after the Prefect test whose behaviour it checks. Prefect's
``time.sleep`` waits for a lease to run out are ``wait_for_lock`` calls here.
"""

from __future__ import annotations

import asyncio
import pickle
import queue
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import RedisLockManager

from ._lock_waits import lock_wait_started
from .test_locking import _check_locking_works_across_threads


def _key() -> str:
    return f"compat/{uuid.uuid4().hex}"


class TestRedisLockManager:
    """prefect-redis's tests/test_locking.py::TestRedisLockManager."""

    @pytest.fixture
    def lock_manager(self, redis_url: str) -> RedisLockManager:
        return RedisLockManager(redis_url)

    @pytest.fixture
    def store(self, lock_manager: RedisLockManager, tmp_path: Any) -> ResultStore:
        return ResultStore(LocalStorage(tmp_path), lock_manager=lock_manager)

    def test_init(self) -> None:
        locks = RedisLockManager(host="host", port=1234, db=1, username="username",
                                 password="password", ssl=True)
        assert (locks.host, locks.port, locks.db) == ("host", 1234, 1)
        assert (locks.username, locks.password, locks.ssl) == ("username", "password", True)
        assert "password" not in repr(locks)

    def test_read_locked_key(self, store: ResultStore) -> None:
        key = _key()
        read: queue.Queue[Any] = queue.Queue()
        assert store.acquire_lock(key, holder="holder1")
        with lock_wait_started() as waiting:
            reader = threading.Thread(target=lambda: read.put(store.read(key).result))
            reader.start()
            assert waiting.wait(60), "the read did not wait for the lock"
        store.write(key, {"test": "value"}, holder="holder1")
        store.release_lock(key, holder="holder1")
        assert read.get(timeout=60) == {"test": "value"}
        reader.join(60)

    def test_write_to_key_with_same_lock_holder(self, store: ResultStore) -> None:
        key = _key()
        assert store.acquire_lock(key)
        store.write(key, {"test": "value"})
        assert store.read(key).result == {"test": "value"}
        store.release_lock(key)

    def test_write_to_key_with_different_lock_holder(self, store: ResultStore) -> None:
        key = _key()
        assert store.acquire_lock(key, holder="holder1")
        with pytest.raises(RuntimeError, match=f"cannot write the record '{key}'.*'holder1'"):
            store.write(key, {"test": "value"}, holder="holder2")
        store.release_lock(key, holder="holder1")

    def test_acquire_lock(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1")
        assert lock_manager.is_locked(key)
        lock_manager.release_lock(key, holder="holder1")
        assert not lock_manager.is_locked(key)

    def test_acquire_lock_idempotent(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1")
        assert lock_manager.acquire_lock(key, holder="holder1")
        lock_manager.release_lock(key, holder="holder1")
        assert not lock_manager.is_locked(key)

    def test_acquire_lock_with_hold_timeout(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert lock_manager.is_locked(key)
        assert lock_manager.wait_for_lock(key, timeout=30)  # Redis expires the key by itself
        assert not lock_manager.is_locked(key)

    def test_acquire_lock_with_acquire_timeout(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1")
        assert not lock_manager.acquire_lock(key, holder="holder2", acquire_timeout=0.1)
        lock_manager.release_lock(key, holder="holder1")
        assert not lock_manager.is_locked(key)

    def test_acquire_lock_when_previously_holder_timed_out(
        self, lock_manager: RedisLockManager
    ) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1", hold_timeout=0.1)
        assert lock_manager.acquire_lock(key, holder="holder2")
        assert lock_manager.is_lock_holder(key, "holder2")
        lock_manager.release_lock(key, holder="holder2")
        assert not lock_manager.is_locked(key)

    def test_raises_if_releasing_with_wrong_holder(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1")
        with pytest.raises(ValueError, match=f"no lock held by 'holder2' on '{key}'"):
            lock_manager.release_lock(key, holder="holder2")
        lock_manager.release_lock(key, holder="holder1")

    def test_is_lock_holder(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert not lock_manager.is_lock_holder(key, "holder1")
        assert lock_manager.acquire_lock(key, holder="holder1")
        assert lock_manager.is_lock_holder(key, "holder1")
        assert not lock_manager.is_lock_holder(key, "holder2")
        lock_manager.release_lock(key, holder="holder1")

    def test_wait_for_lock(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1", hold_timeout=1)
        assert lock_manager.wait_for_lock(key)
        assert not lock_manager.is_locked(key)

    def test_wait_for_lock_with_timeout(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1")
        assert not lock_manager.wait_for_lock(key, timeout=0.1)
        assert lock_manager.is_locked(key)
        lock_manager.release_lock(key, holder="holder1")
        assert not lock_manager.is_locked(key)

    def test_wait_for_lock_never_been_locked(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert not lock_manager.is_locked(key)
        assert lock_manager.wait_for_lock(key)

    def test_locking_works_across_threads(self, lock_manager: RedisLockManager) -> None:
        _check_locking_works_across_threads(lock_manager)

    def test_configure_from_block(self, redis_url: str) -> None:
        # Prefect's RedisDatabase block is a saved server document; its as_connection_params()
        # is a dict of these arguments, which configure the manager the same way.
        parts = urlsplit(redis_url)
        params = {"host": parts.hostname, "port": parts.port, "db": 0, "username": None,
                  "password": None, "ssl": False}
        locks = RedisLockManager(**params)
        assert (locks.host, locks.port, locks.db, locks.ssl) == (parts.hostname, parts.port, 0, False)
        key = _key()
        assert locks.acquire_lock(key, holder="holder1", acquire_timeout=0)
        assert RedisLockManager(redis_url).is_lock_holder(key, "holder1")  # the same server
        locks.release_lock(key, holder="holder1")

    def test_release_lock_with_nonexistent_lock(self, lock_manager: RedisLockManager) -> None:
        key = _key()
        assert lock_manager.acquire_lock(key, holder="holder1")
        lock_manager.release_lock(key, holder="holder1")
        lock_manager.release_lock(key, holder="holder1")  # gone already: no error
        assert lock_manager.acquire_lock(key, holder="holder2")
        with pytest.raises(ValueError, match=f"no lock held by 'holder1' on '{key}'"):
            lock_manager.release_lock(key, holder="holder1")  # a real conflict
        lock_manager.release_lock(key, holder="holder2")
        lock_manager.release_lock(key, holder="holder1")  # nobody holds it: no error
        assert not lock_manager.is_locked(key)

    def test_transaction_retry_lock_behavior(
        self, lock_manager: RedisLockManager, tmp_path: Any
    ) -> None:
        key = _key()
        store = ResultStore(LocalStorage(tmp_path), lock_manager=lock_manager)
        assert store.acquire_lock(key, holder="transaction1")  # the first attempt locks
        store.release_lock(key, holder="transaction1")  # and rolls back
        assert store.acquire_lock(key, holder="transaction2")  # the retry locks anew
        with pytest.raises(ValueError):
            store.release_lock(key, holder="transaction1")  # a stale holder, while held
        store.release_lock(key, holder="transaction2")
        store.release_lock(key, holder="transaction1")  # a stale holder, once free: no error

    def test_pickle_unpickle_and_use_lock_manager(self, lock_manager: RedisLockManager) -> None:
        async def original_async_client() -> Any:
            return lock_manager.async_client

        original_sync, original_async = lock_manager.client, asyncio.run(original_async_client())
        copy: RedisLockManager = pickle.loads(pickle.dumps(lock_manager))
        assert copy.client is not original_sync  # the copy makes clients of its own

        key = _key()
        assert copy.acquire_lock(key, holder="sync", acquire_timeout=1, hold_timeout=5)
        assert copy.is_lock_holder(key, "sync")
        copy.release_lock(key, "sync")
        assert not copy.is_locked(key)

        async def use_async() -> tuple[Any, bool, bool, bool]:
            other = _key()
            first = await copy.aacquire_lock(other, holder="async", acquire_timeout=1,
                                             hold_timeout=0.2)
            again = await copy.aacquire_lock(other, holder="async", acquire_timeout=1,
                                             hold_timeout=0.2)
            assert await copy.await_for_lock(other, timeout=30)  # the lease runs out
            taken = await copy.aacquire_lock(other, holder="new", acquire_timeout=1,
                                             hold_timeout=0.2)
            return copy.async_client, first, again, taken

        new_async, first, again, taken = asyncio.run(use_async())
        assert new_async is not original_async
        assert (first, again, taken) == (True, True, True)
