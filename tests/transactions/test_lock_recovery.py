"""Locks whose holder died are reclaimed: SIGKILLed processes, foreign expired leases, racing reclaimers."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from resultkit.transactions import FileLockManager, RedisLockManager

from . import workers


def _kill_holder(spawn: Any, manager: Any, key: str, hold_timeout: float, reap: bool) -> None:
    ready = spawn.Event()
    holder = spawn.Process(target=workers.hold_lock_until_killed,
                           args=(manager, key, "doomed", hold_timeout, ready))
    holder.start()
    try:
        assert ready.wait(60), "the holder process never took the lock"
        assert manager.is_lock_holder(key, "doomed")
        os.kill(holder.pid, signal.SIGKILL)
        if reap:
            holder.join(30)
    finally:
        if reap and holder.is_alive():
            holder.kill()


def test_file_lock_of_a_killed_process_is_reclaimed_long_before_its_lease(
    spawn: Any, tmp_path: Path, lock_key: str
) -> None:
    manager = FileLockManager(tmp_path / "locks")
    # A 1-hour lease: only noticing the dead pid can free this lock in time.
    _kill_holder(spawn, manager, lock_key, hold_timeout=3600, reap=True)
    assert manager.acquire_lock(lock_key, "survivor", acquire_timeout=30)
    assert manager.is_lock_holder(lock_key, "survivor")


def test_file_lock_of_a_killed_unreaped_process_is_reclaimed(
    spawn: Any, tmp_path: Path, lock_key: str
) -> None:
    # Until its parent reaps it, a killed child is a zombie that still answers kill(pid, 0).
    manager = FileLockManager(tmp_path / "locks")
    ready = spawn.Event()
    holder = spawn.Process(target=workers.hold_lock_until_killed,
                           args=(manager, lock_key, "doomed", 3600, ready))
    holder.start()
    assert ready.wait(60)
    os.kill(holder.pid, signal.SIGKILL)
    try:
        assert manager.acquire_lock(lock_key, "survivor", acquire_timeout=30)
    finally:
        holder.join(30)


def test_redis_lock_of_a_killed_process_is_free_within_its_lease(
    spawn: Any, redis_url: str, lock_key: str
) -> None:
    manager = RedisLockManager(redis_url)
    _kill_holder(spawn, manager, lock_key, hold_timeout=1.0, reap=True)
    assert manager.acquire_lock(lock_key, "survivor", acquire_timeout=30, hold_timeout=60)
    assert manager.is_lock_holder(lock_key, "survivor")


def _foreign_lease(manager: FileLockManager, key: str, expires: float) -> None:
    """A lock file as written by a process on another machine sharing the file system."""
    manager.directory.mkdir(parents=True, exist_ok=True)
    lease = {"key": key, "holder": "other-host:123:abc", "host": "some-other-host",
             "pid": 123, "started": "1", "expires": expires}
    manager._lock_path(key).write_text(json.dumps(lease))


def test_live_lease_of_another_host_is_respected(tmp_path: Path, lock_key: str) -> None:
    manager = FileLockManager(tmp_path / "locks")
    _foreign_lease(manager, lock_key, expires=time.time() + 3600)
    assert manager.lock_holder(lock_key) == "other-host:123:abc"
    assert not manager.acquire_lock(lock_key, "me", acquire_timeout=0.1)


def test_expired_lease_of_another_host_is_reclaimed(tmp_path: Path, lock_key: str) -> None:
    manager = FileLockManager(tmp_path / "locks")
    _foreign_lease(manager, lock_key, expires=time.time() - 1)
    assert not manager.is_locked(lock_key)
    assert manager.acquire_lock(lock_key, "me", acquire_timeout=0)


def test_unreadable_lock_file_counts_as_free(tmp_path: Path, lock_key: str) -> None:
    manager = FileLockManager(tmp_path / "locks")
    manager.directory.mkdir(parents=True)
    manager._lock_path(lock_key).write_bytes(b'{"holder": "torn')
    assert manager.acquire_lock(lock_key, "me", acquire_timeout=0)


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_racing_reclaimers_of_a_dead_lock_have_one_winner(
    kind: str, spawn: Any, tmp_path: Path, lock_key: str, request: pytest.FixtureRequest
) -> None:
    manager: Any
    if kind == "file":
        manager = FileLockManager(tmp_path / "locks")
        _foreign_lease(manager, lock_key, expires=time.time() - 1)
    else:
        manager = RedisLockManager(request.getfixturevalue("redis_url"))
    contenders = 6
    start = spawn.Barrier(contenders)
    results = spawn.Queue()
    procs = [spawn.Process(target=workers.try_lock_once,
                           args=(manager, lock_key, f"p{i}", start, results))
             for i in range(contenders)]
    for proc in procs:
        proc.start()
    outcomes = dict(results.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(30)
    winners = [holder for holder, won in outcomes.items() if won]
    assert len(winners) == 1
    if kind == "file":  # the winner has exited, so read who took the lock from its file
        assert json.loads(manager._lock_path(lock_key).read_text())["holder"] == winners[0]
    else:
        assert manager.is_lock_holder(lock_key, winners[0])


def test_transaction_whose_holder_was_killed_mid_body_is_taken_over(
    spawn: Any, tmp_path: Path
) -> None:
    from resultkit.results import ResultStore
    from resultkit.storage import LocalStorage
    from resultkit.transactions import transaction

    storage_path = str(tmp_path / "storage")
    ready = spawn.Event()
    doomed = spawn.Process(target=workers.serializable_body_until_killed,
                           args=(storage_path, "k", ready))
    doomed.start()
    try:
        assert ready.wait(60)
        os.kill(doomed.pid, signal.SIGKILL)
    finally:
        doomed.join(30)
    store = ResultStore(LocalStorage(storage_path))
    with transaction("k", store=store, isolation_level="SERIALIZABLE", lock_timeout=30) as txn:
        assert not txn.is_committed()  # the dead holder wrote nothing
        txn.stage("recomputed")
    assert store.read("k").result == "recomputed"


def test_file_lock_held_by_a_forked_child_is_live(tmp_path: Path, lock_key: str) -> None:
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    manager = FileLockManager(tmp_path / "locks")
    manager.is_locked("warm-up")  # the parent has used the manager before forking
    ready = fork.Event()
    child = fork.Process(target=workers.hold_lock_until_killed,
                         args=(manager, lock_key, "child", 3600, ready))
    child.start()
    try:
        assert ready.wait(60)
        assert manager.is_lock_holder(lock_key, "child")  # not mistaken for a dead process
        assert not manager.acquire_lock(lock_key, "parent", acquire_timeout=0)
    finally:
        child.kill()
        child.join(30)
    assert manager.acquire_lock(lock_key, "parent", acquire_timeout=30)
