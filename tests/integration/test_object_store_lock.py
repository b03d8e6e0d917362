"""ObjectStoreLockManager on S3 (moto) and GCS (fake-gcs-server): leases kept in the bucket."""

from __future__ import annotations

import contextlib
import pickle
import threading
import uuid
from typing import Any

import pytest

from resultkit.errors import ConfigurationError, LockNotHeldError
from resultkit.locking import ObjectStoreLockManager, default_lock_manager
from resultkit.results import ResultStore
from resultkit.storage import CachedStorage, GCSStorage, LocalStorage
from resultkit.transactions import LockManager


@pytest.fixture
def locks(bucket_storage: Any) -> ObjectStoreLockManager:
    return ObjectStoreLockManager(bucket_storage)


@pytest.fixture
def key() -> str:
    return f"results/{uuid.uuid4().hex}"


def test_s3_and_gcs_storage_default_to_a_lock_in_the_bucket(bucket_storage, tmp_path):
    manager = default_lock_manager(ResultStore(bucket_storage))
    assert isinstance(manager, ObjectStoreLockManager) and isinstance(manager, LockManager)
    assert manager.storage is bucket_storage
    assert default_lock_manager(ResultStore(bucket_storage)) is manager  # one per storage
    cached = CachedStorage(bucket_storage, directory=tmp_path / "cache")
    assert default_lock_manager(ResultStore(cached)) is manager  # the remote's lock
    assert not isinstance(default_lock_manager(ResultStore(LocalStorage(tmp_path))),
                          ObjectStoreLockManager)


def test_acquire_refuse_release(locks, key):
    assert not locks.is_locked(key)
    assert locks.acquire_lock(key, "alice", acquire_timeout=0, hold_timeout=60)
    assert locks.is_lock_holder(key, "alice") and locks.lock_holder(key) == "alice"
    assert not locks.acquire_lock(key, "bob", acquire_timeout=0)
    assert not locks.acquire_lock(key, "bob", acquire_timeout=0.3)
    assert locks.acquire_lock(key, "alice", acquire_timeout=0)  # the holder again: renews
    locks.release_lock(key, "alice")
    assert not locks.is_locked(key)
    assert locks.acquire_lock(key, "bob", acquire_timeout=0)  # a released lock is free again
    assert locks.is_lock_holder(key, "bob")


def test_a_second_manager_in_another_process_sees_the_same_lock(locks, bucket_storage, key):
    assert locks.acquire_lock(key, "alice", acquire_timeout=0)
    elsewhere = pickle.loads(pickle.dumps(locks))  # what a worker process gets
    assert elsewhere.lock_holder(key) == "alice"
    assert not elsewhere.acquire_lock(key, "bob", acquire_timeout=0)


def test_only_the_holder_releases_or_extends(locks, key):
    assert locks.acquire_lock(key, "alice", hold_timeout=60)
    with pytest.raises(LockNotHeldError, match="'alice'") as err:
        locks.release_lock(key, "mallory")
    assert isinstance(err.value, ValueError) and key in str(err.value)
    assert not locks.extend_lock(key, "mallory", 60)
    assert locks.extend_lock(key, "alice", 60)
    assert locks.is_lock_holder(key, "alice")


def test_releasing_a_lock_that_no_longer_exists_is_a_no_op(locks, key):
    locks.release_lock(key, "alice")  # never locked
    assert locks.acquire_lock(key, "alice")
    locks.release_lock(key, "alice")
    locks.release_lock(key, "alice")  # already released
    assert not locks.is_locked(key)


def test_a_lease_that_stands_still_is_taken_over(locks, key):
    assert locks.acquire_lock(key, "dead-holder", hold_timeout=0.3)  # never renewed
    assert locks.acquire_lock(key, "bob", acquire_timeout=30, hold_timeout=60)
    assert locks.is_lock_holder(key, "bob")
    with pytest.raises(LockNotHeldError, match="'bob'"):
        locks.release_lock(key, "dead-holder")
    assert not locks.extend_lock(key, "dead-holder", 60)


def test_wait_for_lock_returns_when_released(locks, key):
    assert locks.wait_for_lock(key, timeout=0)
    assert locks.acquire_lock(key, "alice")
    assert not locks.wait_for_lock(key, timeout=0.2)
    released = threading.Event()

    def release() -> None:
        locks.release_lock(key, "alice")
        released.set()

    threading.Thread(target=release).start()
    assert locks.wait_for_lock(key, timeout=30)
    assert released.wait(30)


def test_racing_managers_have_exactly_one_winner(bucket_storage, key):
    managers = [ObjectStoreLockManager(bucket_storage) for _ in range(8)]
    for manager in managers:
        _ = manager.backend  # the condition check, done before the race
    start = threading.Barrier(len(managers))
    won: list[str] = []

    def race(index: int) -> None:
        start.wait()
        if managers[index].acquire_lock(key, f"racer-{index}", acquire_timeout=0):
            won.append(f"racer-{index}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(managers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1 and managers[0].lock_holder(key) == won[0]


def test_lease_objects_are_never_listed_as_records(bucket_storage, locks, key):
    assert locks.acquire_lock(key, "alice")
    bucket_storage.write("visible", b"x")
    assert list(bucket_storage.list()) == ["visible"]
    assert locks.lease_path(key).endswith(f"/.rk-locks/{key}")


def test_a_store_that_ignores_conditional_writes_is_refused(gcs_pyemu_endpoint, key):
    import gcsfs

    bucket = "test-" + uuid.uuid4().hex[:16]
    gcsfs.GCSFileSystem(token="anon", project="test", endpoint_url=gcs_pyemu_endpoint,
                        skip_instance_cache=True).mkdir(bucket)
    storage = GCSStorage(bucket, "results", token="anon", project="test",
                         endpoint_url=gcs_pyemu_endpoint)
    locks = ObjectStoreLockManager(storage)
    with pytest.raises(ConfigurationError, match=r"does not honour conditional writes.*RedisLockManager"):
        locks.acquire_lock(key, "alice", acquire_timeout=0)


def test_only_s3_and_gcs_storage_is_accepted(tmp_path):
    with pytest.raises(ConfigurationError, match=r"needs S3 or GCS storage.*FileLockManager"):
        ObjectStoreLockManager(LocalStorage(tmp_path))


def test_async_waits_are_awaited(locks, key):
    import asyncio

    async def scenario() -> tuple[bool, bool, bool]:
        assert await locks.aacquire_lock(key, "alice", acquire_timeout=0, hold_timeout=60)
        refused = await locks.aacquire_lock(key, "bob", acquire_timeout=0.2)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.ensure_future(ticker())
        still_locked = not await locks.await_for_lock(key, timeout=0.3)
        beat.cancel()
        locks.release_lock(key, "alice")
        return refused, still_locked, ticks > 1  # the loop ran while we waited

    assert asyncio.run(scenario()) == (False, True, True)


def test_an_unreachable_store_is_an_outage_the_wait_rides_out(tmp_path, key):
    """A store that stops answering is Unreachable (retried until the timeout), never 'free'."""
    import boto3
    from moto.server import ThreadedMotoServer

    from resultkit.locking.base import Unreachable
    from resultkit.storage import S3Storage
    from resultkit.storage.retry import RetryPolicy

    with socket_port() as port:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="outage-test")
    storage = S3Storage("outage-test", "results", endpoint_url=endpoint,
                        config_kwargs={"retries": {"max_attempts": 1}})
    storage.retry_policy = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
    locks = ObjectStoreLockManager(storage)
    assert locks.acquire_lock(key, "alice", acquire_timeout=0)
    server.stop()
    with pytest.raises(Unreachable, match="cannot reach s3://outage-test/results") as err:
        locks.acquire_lock(key, "bob", acquire_timeout=0.5)
    assert isinstance(err.value, ConfigurationError)
    with pytest.raises(Unreachable):
        locks.is_locked(key)  # never "not locked" because the store did not answer


@contextlib.contextmanager
def socket_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port
