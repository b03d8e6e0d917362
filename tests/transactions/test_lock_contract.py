"""The lock-manager contract, run against MemoryLockManager, FileLockManager and RedisLockManager."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

from resultkit.errors import ConfigurationError, LockNotHeldError, TransactionError
from resultkit.locking import LeasedLockManager
from resultkit.transactions import FileLockManager, LockManager


def test_is_a_lock_manager(lock_manager: Any) -> None:
    assert isinstance(lock_manager, LockManager)
    assert isinstance(lock_manager, LeasedLockManager)  # extend_lock and lock_holder too


def test_a_manager_without_the_async_methods_is_not_a_lock_manager() -> None:
    class SyncOnly:
        def acquire_lock(self, key: str, holder: str, acquire_timeout: Any = None,
                         hold_timeout: Any = None) -> bool:
            return True

        def release_lock(self, key: str, holder: str) -> None: ...
        def is_locked(self, key: str) -> bool: return False
        def is_lock_holder(self, key: str, holder: str) -> bool: return False
        def wait_for_lock(self, key: str, timeout: Any = None) -> bool: return True

    assert not isinstance(SyncOnly(), LockManager)


def test_acquire_free_lock_makes_caller_the_holder(lock_manager: Any, lock_key: str) -> None:
    assert not lock_manager.is_locked(lock_key)
    assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
    assert lock_manager.is_locked(lock_key)
    assert lock_manager.is_lock_holder(lock_key, "alice")
    assert not lock_manager.is_lock_holder(lock_key, "bob")
    assert lock_manager.lock_holder(lock_key) == "alice"


def test_held_lock_is_refused_to_others_within_timeout(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=60)
    assert not lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0)
    assert not lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0.2)
    assert lock_manager.is_lock_holder(lock_key, "alice")


def test_holder_may_acquire_again(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
    assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
    assert lock_manager.is_lock_holder(lock_key, "alice")


def test_release_frees_the_lock_for_others(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice")
    lock_manager.release_lock(lock_key, "alice")
    assert not lock_manager.is_locked(lock_key)
    assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0)


def test_releasing_a_lock_held_by_someone_else_raises(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice")
    with pytest.raises(LockNotHeldError) as err:
        lock_manager.release_lock(lock_key, "mallory")
    assert isinstance(err.value, ValueError) and isinstance(err.value, TransactionError)
    assert lock_key in str(err.value) and "'alice'" in str(err.value)
    assert "'mallory'" in str(err.value)
    assert lock_manager.is_lock_holder(lock_key, "alice")


def test_releasing_a_lock_that_no_longer_exists_is_a_no_op(lock_manager: Any, lock_key: str) -> None:
    lock_manager.release_lock(lock_key, "alice")  # never locked
    assert lock_manager.acquire_lock(lock_key, "alice")
    lock_manager.release_lock(lock_key, "alice")
    lock_manager.release_lock(lock_key, "alice")  # released twice (a retry after a rollback)
    lock_manager.release_lock(lock_key, "bob")  # nobody holds it, whoever asks
    assert not lock_manager.is_locked(lock_key)


def test_releasing_an_expired_lock_is_a_no_op(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=0.05)
    assert lock_manager.wait_for_lock(lock_key, timeout=30)  # the lease runs out
    lock_manager.release_lock(lock_key, "alice")
    assert not lock_manager.is_locked(lock_key)


def test_expired_lease_is_reclaimed(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=0.2)
    # bob waits (bounded) until alice's lease runs out; alice never releases.
    assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=30, hold_timeout=60)
    assert lock_manager.is_lock_holder(lock_key, "bob")
    with pytest.raises(LockNotHeldError, match="'bob'"):
        lock_manager.release_lock(lock_key, "alice")


def test_extend_lock_only_by_its_holder(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=60)
    assert lock_manager.extend_lock(lock_key, "alice", 60)
    assert not lock_manager.extend_lock(lock_key, "bob", 60)
    assert not lock_manager.extend_lock(lock_key + "-other", "alice", 60)
    assert lock_manager.is_lock_holder(lock_key, "alice")


def test_wait_for_lock(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.wait_for_lock(lock_key, timeout=0)
    assert lock_manager.acquire_lock(lock_key, "alice")
    assert not lock_manager.wait_for_lock(lock_key, timeout=0.1)
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(lock_manager.wait_for_lock(lock_key, 30)))
    waiter.start()
    lock_manager.release_lock(lock_key, "alice")
    waiter.join(60)
    assert outcome == [True]


def test_threads_with_distinct_holders_exclude_each_other(lock_manager: Any, lock_key: str) -> None:
    counter = {"n": 0}

    def bump(holder: str) -> None:
        for _ in range(25):
            assert lock_manager.acquire_lock(lock_key, holder, acquire_timeout=30)
            seen = counter["n"]
            threading.Event().wait(0.0005)  # widen the read-modify-write window
            counter["n"] = seen + 1
            lock_manager.release_lock(lock_key, holder)

    threads = [threading.Thread(target=bump, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert counter["n"] == 100


def test_distinct_keys_never_share_a_lock(lock_manager: Any, lock_key: str) -> None:
    keys = [lock_key, lock_key + "/x", lock_key.upper(), lock_key + "_" * 300]
    for index, key in enumerate(keys):
        assert lock_manager.acquire_lock(key, f"h{index}", acquire_timeout=0)
    for index, key in enumerate(keys):
        assert lock_manager.is_lock_holder(key, f"h{index}")


@pytest.mark.parametrize("bad", [{"key": ""}, {"key": 3}, {"holder": ""}, {"acquire_timeout": -1},
                                 {"hold_timeout": -5}])
def test_bad_arguments_raise_configuration_error(lock_manager: Any, bad: dict[str, Any]) -> None:
    args: dict[str, Any] = {"key": "k", "holder": "h", **bad}
    with pytest.raises(ConfigurationError):
        lock_manager.acquire_lock(**args)


def test_pickled_manager_still_works(lock_manager: Any, lock_key: str) -> None:
    copy = pickle.loads(pickle.dumps(lock_manager))
    assert copy.acquire_lock(lock_key, "alice", acquire_timeout=0)
    # Files and Redis are shared state, and in one process a MemoryLockManager unpickles as
    # the process's own: the original sees the copy's lock.
    assert lock_manager.is_locked(lock_key)
    lock_manager.release_lock(lock_key, "alice")


def test_file_locks_one_file_per_key_named_by_hash(tmp_path: Any) -> None:
    manager = FileLockManager(tmp_path / "locks")
    assert manager.acquire_lock("a/b", "h1", acquire_timeout=0)
    assert manager.acquire_lock("a_b", "h2", acquire_timeout=0)
    lock_files = sorted(p.name for p in (tmp_path / "locks").glob("*.lock"))
    assert len(lock_files) == 2
    assert all(len(name) == 64 + len(".lock") for name in lock_files)


def test_unreachable_redis_raises_configuration_error_naming_the_url() -> None:
    import socket

    from resultkit.transactions import RedisLockManager

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    manager = RedisLockManager(url, socket_connect_timeout=2)
    with pytest.raises(ConfigurationError, match=url):
        manager.acquire_lock("k", "h", acquire_timeout=0)


def test_unusable_lock_directory_raises_configuration_error(tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    manager = FileLockManager(blocker / "locks")
    with pytest.raises(ConfigurationError, match="a-file"):
        manager.acquire_lock("k", "h", acquire_timeout=0)


def test_bad_redis_url_is_refused() -> None:
    from resultkit.transactions import RedisLockManager

    with pytest.raises(ConfigurationError, match="redis://"):
        RedisLockManager("localhost:6379")
