"""ResultStore's lock API (Prefect's): acquire/release through the store, guarded writes, waiting reads."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resultkit.errors import ConfigurationError, LockTimeout, RecordNotFound, TransactionError
from resultkit.locking import default_lock_manager
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage, MemoryStorage
from resultkit.transactions import FileLockManager, IsolationLevel, MemoryLockManager, transaction


class CountingLocks:
    """A real lock manager (the process's memory one) that counts the calls made to it."""

    def __init__(self) -> None:
        self.inner = MemoryLockManager()
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted

    # The LockManager protocol is checked structurally: spell its methods out.
    def acquire_lock(self, *args: Any, **kwargs: Any) -> bool:
        return self.__getattr__("acquire_lock")(*args, **kwargs)  # type: ignore[no-any-return]

    async def aacquire_lock(self, *args: Any, **kwargs: Any) -> bool:
        return await self.__getattr__("aacquire_lock")(*args, **kwargs)  # type: ignore[no-any-return]

    def release_lock(self, *args: Any, **kwargs: Any) -> None:
        self.__getattr__("release_lock")(*args, **kwargs)

    def is_locked(self, *args: Any, **kwargs: Any) -> bool:
        return self.__getattr__("is_locked")(*args, **kwargs)  # type: ignore[no-any-return]

    def is_lock_holder(self, *args: Any, **kwargs: Any) -> bool:
        return self.__getattr__("is_lock_holder")(*args, **kwargs)  # type: ignore[no-any-return]

    def wait_for_lock(self, *args: Any, **kwargs: Any) -> bool:
        return self.__getattr__("wait_for_lock")(*args, **kwargs)  # type: ignore[no-any-return]

    async def await_for_lock(self, *args: Any, **kwargs: Any) -> bool:
        return await self.__getattr__("await_for_lock")(*args, **kwargs)  # type: ignore[no-any-return]


@pytest.fixture
def waiting_logged() -> Iterator[threading.Event]:
    """Set when a lock wait begins (the debug line the waiting algorithm logs)."""
    event = threading.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting" in record.getMessage():
                event.set()

    logger = logging.getLogger("resultkit.locking")
    handler, level = Handler(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield event
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_lock_api_goes_to_the_configured_manager(tmp_path: Path, lock_key: str) -> None:
    locks = CountingLocks()
    store = ResultStore(LocalStorage(tmp_path), lock_manager=locks)
    assert store.acquire_lock(lock_key, holder="a", acquire_timeout=0, hold_timeout=60)
    assert store.is_locked(lock_key) and store.is_lock_holder(lock_key, holder="a")
    assert not store.is_lock_holder(lock_key)  # the default holder is this thread, not "a"
    assert not store.wait_for_lock(lock_key, timeout=0)
    store.release_lock(lock_key, holder="a")
    assert asyncio.run(store.aacquire_lock(lock_key, holder="b", acquire_timeout=0))
    store.release_lock(lock_key, holder="b")
    assert asyncio.run(store.await_for_lock(lock_key, timeout=0))
    assert set(locks.calls) == {"acquire_lock", "aacquire_lock", "release_lock", "is_locked",
                                "is_lock_holder", "wait_for_lock", "await_for_lock"}


def test_lock_api_defaults_to_the_storages_lock_manager(tmp_path: Path, lock_key: str) -> None:
    store = ResultStore(LocalStorage(tmp_path))
    files = default_lock_manager(store)
    assert isinstance(files, FileLockManager)
    assert store.acquire_lock(lock_key)
    assert files.is_lock_holder(lock_key, ResultStore.generate_default_holder())
    store.release_lock(lock_key)
    assert not files.is_locked(lock_key)


def test_default_holder_is_host_pid_and_thread_plus_the_asyncio_task() -> None:
    holder = ResultStore.generate_default_holder()
    assert holder.split(":")[2] == str(threading.get_ident())
    other: list[str] = []
    thread = threading.Thread(target=lambda: other.append(ResultStore.generate_default_holder()))
    thread.start()
    thread.join()
    assert other[0] != holder

    async def two_tasks() -> list[str]:
        async def one() -> str:
            return ResultStore.generate_default_holder()

        return list(await asyncio.gather(one(), one()))

    first, second = asyncio.run(two_tasks())
    assert first != second and first.startswith(holder)


def test_lock_api_without_a_lock_manager_says_how_to_configure_one() -> None:
    import uuid

    from resultkit.storage import FsspecStorage

    # (S3 and GCS storage have a default: ObjectStoreLockManager; an fsspec memory:// URL has none.)
    store = ResultStore(FsspecStorage(f"memory://rk-{uuid.uuid4().hex}/store"))
    if default_lock_manager(store) is not None:
        pytest.fail("this test needs a storage without a default lock manager")
    with pytest.raises(ConfigurationError, match="lock_manager=RedisLockManager"):
        store.acquire_lock("k")
    assert store.supports_isolation_level(IsolationLevel.READ_COMMITTED)
    assert not store.supports_isolation_level("SERIALIZABLE")


def test_supports_isolation_level_refuses_unknown_levels(tmp_path: Path) -> None:
    store = ResultStore(LocalStorage(tmp_path))
    assert store.supports_isolation_level(IsolationLevel.SERIALIZABLE)
    with pytest.raises(ConfigurationError, match="REPEATABLE_READ"):
        store.supports_isolation_level("REPEATABLE_READ")


def test_write_is_refused_while_another_holder_has_the_key(tmp_path: Path, lock_key: str) -> None:
    store = ResultStore(LocalStorage(tmp_path), lock_manager=MemoryLockManager())
    assert store.acquire_lock(lock_key, holder="owner")
    with pytest.raises(TransactionError) as err:
        store.write(lock_key, "intruder's value")
    assert isinstance(err.value, RuntimeError)  # Prefect raises a RuntimeError here
    assert lock_key in str(err.value) and "'owner'" in str(err.value)
    assert ResultStore.generate_default_holder() in str(err.value)
    with pytest.raises(TransactionError, match="'someone-else'"):
        store.write(lock_key, "v", holder="someone-else")
    assert not store.exists(lock_key)  # nothing was written
    store.write(lock_key, "owner's value", holder="owner")
    store.release_lock(lock_key, holder="owner")
    store.write(lock_key, "anyone's, once unlocked")
    assert store.read(lock_key).result == "anyone's, once unlocked"


def test_a_configured_lock_manager_guards_writes_and_the_default_costs_writes_nothing(
        tmp_path: Path, lock_key: str) -> None:
    from resultkit.transactions import FileLockManager

    locks = FileLockManager(tmp_path / "locks")
    guarded = ResultStore(LocalStorage(tmp_path), lock_manager=locks)
    assert guarded.acquire_lock(lock_key, holder="other-process")
    with pytest.raises(TransactionError, match="other-process"):
        guarded.write(lock_key, 1)
    guarded.write(lock_key, 2, holder="other-process")  # the holder itself may write
    # As in Prefect, a store given no lock manager does not check one on write: every
    # task's miss writes through it, and would pay a lock-file read for nothing.
    plain = ResultStore(LocalStorage(tmp_path))
    assert plain.acquire_lock("other/" + lock_key, holder="other-process")
    plain.write("other/" + lock_key, 3)
    assert plain.read("other/" + lock_key, holder="other-process").result == 3
    guarded.release_lock(lock_key, holder="other-process")
    plain.release_lock("other/" + lock_key, holder="other-process")


def test_read_of_a_key_locked_by_another_holder_waits_for_its_record(
    lock_key: str, waiting_logged: threading.Event
) -> None:
    store = ResultStore(MemoryStorage())  # the default memory lock manager
    assert store.acquire_lock(lock_key, holder="writer")
    read: list[Any] = []
    reader = threading.Thread(target=lambda: read.append(store.read(lock_key).result))
    reader.start()
    assert waiting_logged.wait(60), "the reader did not wait for the lock"
    store.write(lock_key, {"answer": 42}, holder="writer")
    store.release_lock(lock_key, holder="writer")
    reader.join(60)
    assert read == [{"answer": 42}]  # not RecordNotFound at once


def test_read_waits_at_most_the_lock_timeout(
    tmp_path: Path, lock_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(LocalStorage(tmp_path))
    assert store.acquire_lock(lock_key, holder="slow-writer", hold_timeout=300)
    store.lock_timeout = 0.05
    with pytest.raises(LockTimeout, match=r"0\.05 s"):
        store.read(lock_key)
    store.lock_timeout = None
    monkeypatch.setenv("RESULTKIT_LOCK_TIMEOUT", "0.02")
    with pytest.raises(LockTimeout, match=r"0\.02 s"):
        store.read(lock_key)
    # The holder itself reads without waiting.
    with pytest.raises(RecordNotFound):
        store.read(lock_key, holder="slow-writer")
    store.release_lock(lock_key, holder="slow-writer")


def test_lookup_does_no_lock_io(tmp_path: Path, lock_key: str) -> None:
    locks = CountingLocks()
    store = ResultStore(LocalStorage(tmp_path), lock_manager=locks)
    store.write(lock_key, "v")
    locks.calls.clear()
    assert store.lookup(lock_key) is not None  # the cache-hit path
    assert store.lookup(lock_key + "-missing") is None
    assert store.exists(lock_key)
    assert locks.calls == []


def test_remote_default_lock_managers_are_not_consulted_by_writes(
    s3_endpoint: str, s3_bucket: str
) -> None:
    from resultkit.storage.s3 import S3Storage

    store = ResultStore(S3Storage(s3_bucket, endpoint_url=s3_endpoint))
    assert store._checking_locks() is None  # a write costs no lock request on an object store
    store.write("k", 1)
    assert store.read("k").result == 1


def test_a_serializable_transaction_writes_and_reads_its_own_locked_key(tmp_path: Path) -> None:
    store = ResultStore(LocalStorage(tmp_path))
    with transaction("mine", store=store, isolation_level="SERIALIZABLE") as txn:
        assert store.is_locked("mine")
        with pytest.raises(RecordNotFound):
            txn.read()  # no wait: it reads as the lock's holder, the transaction
        txn.stage("committed under the lock")
    assert store.read("mine").result == "committed under the lock"
    assert not store.is_locked("mine")


def test_a_transaction_writes_through_a_store_whose_manager_is_another_object_for_one_server(
    tmp_path: Path, redis_url: str
) -> None:
    from resultkit.transactions import RedisLockManager

    store = ResultStore(LocalStorage(tmp_path), lock_manager=RedisLockManager(redis_url))
    key = f"two-objects/{tmp_path.name}"
    with transaction(key, store=store, isolation_level="SERIALIZABLE",
                     lock_manager=RedisLockManager(redis_url)) as txn:  # a second object
        assert store.is_locked(key)
        txn.stage("written under the transaction's lock")
    assert store.read(key).result == "written under the transaction's lock"
    assert not store.is_locked(key)
