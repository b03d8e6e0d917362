"""Leases that heal: Redis outages retried, short renewed leases, a full disk, swept lock files."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from resultkit.errors import ConfigurationError, StorageError
from resultkit.locking.lease import LEASE_SECONDS
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import FileLockManager, RedisLockManager, transaction


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _RedisServer:
    """A redis-server of this test's own, so the test can stop and restart it."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None, "redis-server is not installed: run `make test`"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")])
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 60
        while True:  # readiness poll, as tests/conftest.py's redis_url fixture does
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.proc.poll() is None and time.monotonic() < deadline
                threading.Event().wait(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[_RedisServer]:
    server = _RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class _LogEvents(logging.Handler):
    """Sets an event when a record on resultkit.locking contains a given phrase."""

    def __init__(self, **phrases: str) -> None:
        super().__init__(logging.DEBUG)
        self.phrases = phrases
        self.events = {name: threading.Event() for name in phrases}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for name, phrase in self.phrases.items():
            if phrase in message:
                self.events[name].set()


@pytest.fixture
def lock_log() -> Iterator[Callable[..., _LogEvents]]:
    logger = logging.getLogger("resultkit.locking")
    handlers: list[_LogEvents] = []
    level = logger.level

    def attach(**phrases: str) -> _LogEvents:
        handler = _LogEvents(**phrases)
        handlers.append(handler)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        return handler

    yield attach
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


# -- Redis outages -------------------------------------------------------------------------


@pytest.mark.parametrize("face", ["sync", "async"])
def test_redis_outage_while_waiting_is_retried_until_the_server_is_back(
    face: str, own_redis: _RedisServer, lock_log: Callable[..., _LogEvents]
) -> None:
    key = f"outage/{uuid.uuid4().hex}"
    manager = RedisLockManager(own_redis.url, socket_connect_timeout=2, socket_timeout=5)
    assert manager.acquire_lock(key, "holder-on-the-lost-server", hold_timeout=300)
    log = lock_log(waiting=f"lock {key!r}", outage="retrying with backoff", back="reachable again")
    outcome: list[Any] = []

    def wait_for_the_lock() -> None:
        try:
            if face == "sync":
                outcome.append(manager.acquire_lock(key, "waiter", acquire_timeout=120))
            else:
                outcome.append(asyncio.run(manager.aacquire_lock(key, "waiter",
                                                                 acquire_timeout=120)))
        except BaseException as exc:  # the assertion below shows it
            outcome.append(exc)

    waiter = threading.Thread(target=wait_for_the_lock)
    waiter.start()
    try:
        assert log.events["waiting"].wait(60), "the waiter never started waiting"
        own_redis.stop()  # the server goes away, and the lock with it
        assert log.events["outage"].wait(60), "the waiter never noticed the outage"
        assert waiter.is_alive()  # still retrying, not failed with a ConfigurationError
        own_redis.start()
        waiter.join(120)
    finally:
        if own_redis.proc is None:
            own_redis.start()
        waiter.join(120)
    assert outcome == [True]
    assert log.events["back"].is_set()
    assert manager.is_lock_holder(key, "waiter")


def test_a_serializable_transaction_waits_through_a_redis_outage(
    own_redis: _RedisServer, lock_log: Callable[..., _LogEvents], tmp_path: Path
) -> None:
    key = f"outage/{uuid.uuid4().hex}"
    manager = RedisLockManager(own_redis.url, socket_connect_timeout=2, socket_timeout=5)
    store = ResultStore(LocalStorage(tmp_path / "storage"))
    assert manager.acquire_lock(key, "a-worker-on-the-lost-server", hold_timeout=300)
    log = lock_log(waiting=f"lock {key!r}", outage="retrying with backoff")
    outcome: list[Any] = []

    def run_the_transaction() -> None:
        try:
            with transaction(key, store=store, isolation_level="SERIALIZABLE",
                             lock_manager=manager, lock_timeout=120) as txn:
                txn.stage("computed after the outage")
            outcome.append(txn.is_committed())
        except BaseException as exc:  # the assertion below shows it
            outcome.append(exc)

    worker = threading.Thread(target=run_the_transaction)
    worker.start()
    try:
        assert log.events["waiting"].wait(60), "the transaction never waited for the lock"
        own_redis.stop()
        assert log.events["outage"].wait(60), "the transaction never noticed the outage"
        own_redis.start()
        worker.join(120)
    finally:
        if own_redis.proc is None:
            own_redis.start()
        worker.join(120)
    assert outcome == [True]
    assert store.read(key).result == "computed after the outage"
    assert not manager.is_locked(key)


def test_redis_outage_outlasting_the_timeout_raises_naming_the_server(
    own_redis: _RedisServer, lock_log: Callable[..., _LogEvents]
) -> None:
    manager = RedisLockManager(own_redis.url, socket_connect_timeout=2)
    own_redis.stop()
    log = lock_log(outage="retrying with backoff")
    with pytest.raises(ConfigurationError, match=f"127.0.0.1:{own_redis.port}"):
        manager.wait_for_lock("k", timeout=0.5)
    assert log.events["outage"].is_set()  # it was retried before giving up


def test_a_transactions_redis_lock_is_a_short_lease(redis_url: str, tmp_path: Path) -> None:
    import redis

    manager = RedisLockManager(redis_url)
    key = f"lease/{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    with transaction(key, store=ResultStore(LocalStorage(tmp_path)),
                     isolation_level="SERIALIZABLE", lock_manager=manager) as txn:
        remaining_ms = client.pttl(f"resultkit:lock:{key}")
        txn.rollback()
    # A holder killed now would free the lock within 15 s: the keeper renews, so leases are short.
    assert LEASE_SECONDS <= 15
    assert 0 < remaining_ms <= 15_000
    assert not manager.is_locked(key)


def _redis_transaction_until_killed(storage_path: str, url: str, key: str, ready: Any) -> None:
    """In a child process: hold ``key``'s Redis lock in a SERIALIZABLE transaction, for ever."""
    store = ResultStore(LocalStorage(storage_path))
    with transaction(key, store=store, isolation_level="SERIALIZABLE",
                     lock_manager=RedisLockManager(url)):
        ready.set()
        threading.Event().wait()


def test_a_killed_holders_redis_lock_is_taken_over_within_15_s(
    spawn: Any, redis_url: str, tmp_path: Path
) -> None:
    import redis

    key = f"takeover/{uuid.uuid4().hex}"
    storage_path = str(tmp_path / "storage")
    ready = spawn.Event()
    doomed = spawn.Process(target=_redis_transaction_until_killed,
                           args=(storage_path, redis_url, key, ready))
    doomed.start()
    try:
        assert ready.wait(60), "the holder never took the lock"
        os.kill(doomed.pid, signal.SIGKILL)  # a crashed machine: nobody releases the lock
    finally:
        doomed.join(30)
    remaining_ms = redis.Redis.from_url(redis_url).pttl(f"resultkit:lock:{key}")
    assert 0 < remaining_ms <= 15_000  # the dead holder's lease: at most 15 s left
    store = ResultStore(LocalStorage(storage_path))
    with transaction(key, store=store, isolation_level="SERIALIZABLE",
                     lock_manager=RedisLockManager(redis_url), lock_timeout=30) as txn:
        assert not txn.is_committed()
        txn.stage("taken over")
    assert store.read(key).result == "taken over"


# -- a full disk ---------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (the tests run as root), filled to the last byte."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)], check=True)
    try:
        (mountpoint / "storage" / ".rk-locks").mkdir(parents=True)
        with open(mountpoint / "filler", "wb", buffering=0) as filler:
            with pytest.raises(OSError):  # ENOSPC: the disk is full now
                while True:
                    filler.write(b"\0" * 512)
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


@pytest.fixture
def no_inodes_left(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs whose inodes are all used: no file or folder can be created on it."""
    mountpoint = tmp_path / "no-inodes"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=64", "tmpfs",
                    str(mountpoint)], check=True)
    try:
        (mountpoint / "storage").mkdir()
        with pytest.raises(OSError):  # ENOSPC once the inodes run out
            for index in range(1000):
                (mountpoint / f"f{index}").touch()
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_full_disk_creating_the_lock_directory_raises_storage_error(no_inodes_left: Path) -> None:
    store = ResultStore(LocalStorage(no_inodes_left / "storage"))
    lock_dir = no_inodes_left / "storage" / ".rk-locks"
    with pytest.raises(StorageError, match=str(lock_dir)):
        with transaction("k", store=store, isolation_level="SERIALIZABLE"):
            pass


def _leftover_temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if p.name.endswith(".tmp")]


def test_full_disk_under_file_lock_raises_storage_error_naming_the_directory(tiny_disk: Path) -> None:
    lock_dir = tiny_disk / "storage" / ".rk-locks"
    manager = FileLockManager(lock_dir)
    with pytest.raises(StorageError, match=str(lock_dir)) as err:
        manager.acquire_lock("k", "me", acquire_timeout=0)
    assert "full disk" in str(err.value)
    assert _leftover_temp_files(tiny_disk) == []
    assert not manager.is_locked("k")


def test_full_disk_under_serializable_raises_storage_error(tiny_disk: Path) -> None:
    store = ResultStore(LocalStorage(tiny_disk / "storage"))
    body_ran = []
    with pytest.raises(StorageError, match=str(tiny_disk / "storage" / ".rk-locks")):
        with transaction("k", store=store, isolation_level="SERIALIZABLE") as txn:
            body_ran.append(True)
            txn.stage("never written")
    assert body_ran == []
    assert _leftover_temp_files(tiny_disk) == []


# -- lock files swept by gc ------------------------------------------------------------------


def test_gc_removes_lock_files_of_keys_no_longer_locked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from resultkit.cli import main
    from resultkit.locking import default_lock_manager

    root = tmp_path / "storage"
    store = ResultStore(LocalStorage(root))
    manager = default_lock_manager(store)
    assert isinstance(manager, FileLockManager)
    for key in ("done/a", "done/b"):
        with transaction(key, store=store, isolation_level="SERIALIZABLE") as txn:
            txn.stage(key)
    assert manager.acquire_lock("expired", "gone", hold_timeout=0.01)
    assert manager.wait_for_lock("expired", timeout=30)  # its lease ran out, never released
    assert manager.acquire_lock("held", "worker", hold_timeout=300)
    lock_dir = root / ".rk-locks"
    held = {manager._lock_path("held").name, manager._lock_path("held").with_suffix(".guard").name}
    stale_tmp = lock_dir / f".{'0' * 64}.{uuid.uuid4().hex}.tmp"  # a writer killed mid-write
    stale_tmp.write_text("{")
    past = time.time() - 2 * 3600
    os.utime(stale_tmp, (past, past))
    before = {p.name for p in lock_dir.iterdir()}
    # done/a, done/b: a guard each; expired and held: lock and guard each; one stale temp file.
    assert len(before) == 2 + 2 + 2 + 1

    capsys.readouterr()
    assert main(["gc", str(root), "--dry-run", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["lock_files"]
    assert {p.name for p in lock_dir.iterdir()} == before  # a dry run removes nothing
    assert main(["gc", str(root), "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)["lock_files"]
    assert removed == listed and len(removed) == len(before) - len(held)
    assert all(path.startswith(".rk-locks/") for path in removed)
    assert {p.name for p in lock_dir.iterdir()} == held
    assert manager.is_lock_holder("held", "worker")
    # The swept keys lock as before.
    assert manager.acquire_lock("done/a", "again", acquire_timeout=0)
    manager.release_lock("done/a", "again")
    manager.release_lock("held", "worker")


def test_a_lock_taken_while_gc_sweeps_is_never_lost(tmp_path: Path) -> None:
    manager = FileLockManager(tmp_path / "locks")
    stop = threading.Event()
    failures: list[str] = []

    def lock_and_unlock(index: int) -> None:
        count = 0
        while not stop.is_set() or count < 50:
            holder = f"w{index}-{count}"
            if not manager.acquire_lock("contended", holder, acquire_timeout=60):
                failures.append(f"{holder} timed out")
                return
            if manager.lock_holder("contended") != holder:
                failures.append(f"{holder} lost its lock")
            manager.release_lock("contended", holder)
            count += 1

    workers = [threading.Thread(target=lock_and_unlock, args=(i,)) for i in range(3)]
    for worker in workers:
        worker.start()
    sweeps = 0
    while sweeps < 200:
        manager.sweep()
        sweeps += 1
    stop.set()
    for worker in workers:
        worker.join(120)
    assert failures == []


# -- the redis extra ----------------------------------------------------------------------


def test_redis_lock_manager_without_redis_py_names_the_extra() -> None:
    script = textwrap.dedent("""
        import sys

        class RefuseRedis:
            # Hides redis-py as if it were not installed.
            def find_spec(self, name, path=None, target=None):
                if name == "redis" or name.startswith("redis."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, RefuseRedis())
        from resultkit.errors import ConfigurationError
        from resultkit.transactions import RedisLockManager
        try:
            RedisLockManager("redis://localhost:6379/0")
        except ConfigurationError as err:
            print("ConfigurationError:", err)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ConfigurationError:" in done.stdout
    assert "pip install 'resultkit[redis]'" in done.stdout
