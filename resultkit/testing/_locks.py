"""The lock-manager contract: Prefect's ``LockManager`` protocol plus resultkit's leases, as pytest classes."""

from __future__ import annotations

import asyncio
import pickle
import threading
import uuid
from typing import Any

import pytest

from ..errors import ConfigurationError, LockNotHeldError, TransactionError
from ..locking.base import LeasedLockManager, LockManager

__all__ = ["LeasedLockManagerContract", "LockManagerContract"]


class LockManagerContract:
    """Subclass with a ``lock_manager`` fixture; every test uses keys no other test uses.

    >>> class TestMyLocks(LockManagerContract):     # doctest: +SKIP
    ...     @pytest.fixture
    ...     def lock_manager(self):
    ...         return MyLockManager()

    Managers shared between processes (files, Redis, buckets) may see other tests' keys:
    :meth:`lock_key` gives each test a fresh one.
    """

    @pytest.fixture
    def lock_manager(self) -> Any:
        """The manager under test. Subclasses must define it."""
        pytest.fail(f"{type(self).__name__} must define a `lock_manager` fixture")

    @pytest.fixture
    def lock_key(self) -> str:
        """A key no other test uses."""
        return f"results/{uuid.uuid4().hex}"

    def test_is_a_lock_manager(self, lock_manager: Any) -> None:
        assert isinstance(lock_manager, LockManager)

    def test_acquire_free_lock_makes_caller_the_holder(self, lock_manager: Any, lock_key: str) -> None:
        assert not lock_manager.is_locked(lock_key)
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        assert lock_manager.is_locked(lock_key)
        assert lock_manager.is_lock_holder(lock_key, "alice")
        assert not lock_manager.is_lock_holder(lock_key, "bob")

    def test_held_lock_is_refused_to_others_within_timeout(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=60)
        assert not lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0)
        assert not lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0.2)
        assert lock_manager.is_lock_holder(lock_key, "alice")

    def test_holder_may_acquire_again(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        assert lock_manager.is_lock_holder(lock_key, "alice")

    def test_release_frees_the_lock_for_others(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice")
        lock_manager.release_lock(lock_key, "alice")
        assert not lock_manager.is_locked(lock_key)
        assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0)

    def test_releasing_a_lock_held_by_someone_else_raises(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice")
        with pytest.raises(LockNotHeldError) as err:
            lock_manager.release_lock(lock_key, "mallory")
        assert isinstance(err.value, ValueError) and isinstance(err.value, TransactionError)
        assert lock_key in str(err.value) and "'alice'" in str(err.value)
        assert "'mallory'" in str(err.value)
        assert lock_manager.is_lock_holder(lock_key, "alice")

    def test_releasing_a_lock_that_no_longer_exists_is_a_no_op(self, lock_manager: Any, lock_key: str) -> None:
        lock_manager.release_lock(lock_key, "alice")  # never locked
        assert lock_manager.acquire_lock(lock_key, "alice")
        lock_manager.release_lock(lock_key, "alice")
        lock_manager.release_lock(lock_key, "alice")  # released twice (a retry after a rollback)
        lock_manager.release_lock(lock_key, "bob")  # nobody holds it, whoever asks
        assert not lock_manager.is_locked(lock_key)

    def test_releasing_an_expired_lock_is_a_no_op(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=0.05)
        assert lock_manager.wait_for_lock(lock_key, timeout=30)  # the lease runs out
        lock_manager.release_lock(lock_key, "alice")
        assert not lock_manager.is_locked(lock_key)

    def test_expired_lease_is_reclaimed(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=0.2)
        # bob waits (bounded) until alice's lease runs out; alice never releases.
        assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=30, hold_timeout=60)
        assert lock_manager.is_lock_holder(lock_key, "bob")
        with pytest.raises(LockNotHeldError, match="'bob'"):
            lock_manager.release_lock(lock_key, "alice")

    def test_wait_for_lock(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.wait_for_lock(lock_key, timeout=0)
        assert lock_manager.acquire_lock(lock_key, "alice")
        assert not lock_manager.wait_for_lock(lock_key, timeout=0.1)
        outcome: list[bool] = []
        waiter = threading.Thread(target=lambda: outcome.append(lock_manager.wait_for_lock(lock_key, 30)))
        waiter.start()
        lock_manager.release_lock(lock_key, "alice")
        waiter.join(60)
        assert outcome == [True]

    def test_async_faces_acquire_and_wait(self, lock_manager: Any, lock_key: str) -> None:
        async def main() -> list[bool]:
            seen = [await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0),
                    await lock_manager.aacquire_lock(lock_key, "bob", acquire_timeout=0),
                    await lock_manager.await_for_lock(lock_key, timeout=0.05)]
            lock_manager.release_lock(lock_key, "alice")
            seen.append(await lock_manager.await_for_lock(lock_key, timeout=30))
            return seen

        assert asyncio.run(main()) == [True, False, False, True]

    def test_threads_with_distinct_holders_exclude_each_other(self, lock_manager: Any, lock_key: str) -> None:
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

    def test_distinct_keys_never_share_a_lock(self, lock_manager: Any, lock_key: str) -> None:
        keys = [lock_key, lock_key + "/x", lock_key.upper(), lock_key + "_" * 300]
        for index, key in enumerate(keys):
            assert lock_manager.acquire_lock(key, f"h{index}", acquire_timeout=0)
        for index, key in enumerate(keys):
            assert lock_manager.is_lock_holder(key, f"h{index}")

    @pytest.mark.parametrize("bad", [{"key": ""}, {"key": 3}, {"holder": ""}, {"acquire_timeout": -1},
                                     {"hold_timeout": -5}])
    def test_bad_arguments_raise_configuration_error(self, lock_manager: Any, bad: dict[str, Any]) -> None:
        args: dict[str, Any] = {"key": "k", "holder": "h", **bad}
        with pytest.raises(ConfigurationError):
            lock_manager.acquire_lock(**args)

    def test_pickled_manager_still_works(self, lock_manager: Any, lock_key: str) -> None:
        copy = pickle.loads(pickle.dumps(lock_manager))
        assert copy.acquire_lock(lock_key, "alice", acquire_timeout=0)
        # Shared state (files, Redis, a bucket, or the process's one in-memory table): the
        # original sees the copy's lock.
        assert lock_manager.is_locked(lock_key)
        lock_manager.release_lock(lock_key, "alice")


class LeasedLockManagerContract(LockManagerContract):
    """The contract of managers whose leases can be renewed and asked for their holder."""

    def test_is_a_leased_lock_manager(self, lock_manager: Any) -> None:
        assert isinstance(lock_manager, LeasedLockManager)  # extend_lock and lock_holder too

    def test_lock_holder_names_the_holder(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.lock_holder(lock_key) is None
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        assert lock_manager.lock_holder(lock_key) == "alice"
        lock_manager.release_lock(lock_key, "alice")
        assert lock_manager.lock_holder(lock_key) is None

    def test_extend_lock_only_by_its_holder(self, lock_manager: Any, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=60)
        assert lock_manager.extend_lock(lock_key, "alice", 60)
        assert not lock_manager.extend_lock(lock_key, "bob", 60)
        assert not lock_manager.extend_lock(lock_key + "-other", "alice", 60)
        assert lock_manager.is_lock_holder(lock_key, "alice")
