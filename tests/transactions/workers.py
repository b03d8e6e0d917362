"""Functions run in child processes by the transaction tests (importable by spawned children)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import transaction


def hold_lock_until_killed(manager: Any, key: str, holder: str, hold_timeout: float,
                           ready: Any) -> None:
    """Take a lock, report it, then block until the parent kills this process."""
    assert manager.acquire_lock(key, holder, acquire_timeout=60, hold_timeout=hold_timeout)
    ready.set()
    threading.Event().wait()


def try_lock_once(manager: Any, key: str, holder: str, start: Any, results: Any) -> None:
    """After the barrier, try the lock once without waiting; report whether it was won."""
    start.wait()
    results.put((holder, manager.acquire_lock(key, holder, acquire_timeout=0, hold_timeout=60)))


def herd_member(storage_path: str, key: str, body_log: str, start: Any, results: Any) -> None:
    """One of N callers doing the same slow work under SERIALIZABLE; reports the value it got."""
    store = ResultStore(LocalStorage(storage_path))
    start.wait()
    with transaction(key, store=store, isolation_level="SERIALIZABLE") as txn:
        if not txn.is_committed():
            with open(body_log, "a") as log:
                log.write(f"{os.getpid()}\n")
            time.sleep(0.3)  # the expensive work: long enough for every caller to arrive
            value = {"computed_by": os.getpid(), "answer": 42}
            txn.stage(value)
        else:
            value = txn.record.result
    results.put(value)


def whole_value(writer: int, index: int) -> dict[str, Any]:
    """A value whose parts all agree, so a torn mix of two writes is detectable."""
    tag = f"{writer}:{index}"
    return {"tag": tag, "payload": (tag + "|") * (500 + writer * 97), "writer": writer}


def is_whole(value: Any) -> bool:
    """Whether ``value`` is exactly one ``whole_value``."""
    writer, index = (int(part) for part in value["tag"].split(":"))
    return bool(value == whole_value(writer, index))


def read_committed_writer(storage_path: str, key: str, writer: int, writes: int,
                          start: Any) -> None:
    """Write ``writes`` distinct whole values to one key, each in its own transaction."""
    store = ResultStore(LocalStorage(storage_path))
    start.wait()
    for index in range(writes):
        with transaction(key, store=store, overwrite=True) as txn:
            txn.stage(whole_value(writer, index))


def reader(storage_path: str, key: str, start: Any, stop: Any, results: Any) -> None:
    """Read ``key`` until told to stop; report (reads, torn reads, misses after the first hit)."""
    store = ResultStore(LocalStorage(storage_path))
    reads = torn = vanished = 0
    seen_one = False
    start.wait()
    while not stop.is_set() or reads < 20:  # a few reads even if the writers were quick
        record = store.lookup(key)
        if record is None:
            vanished += seen_one
            continue
        seen_one = True
        reads += 1
        torn += not is_whole(record.result)
    results.put((reads, torn, vanished))


def file_exists(path: str) -> bool:
    """Helper used by hooks in child processes."""
    return Path(path).exists()


# -- tasks -----------------------------------------------------------------------------------

from resultkit import task  # noqa: E402  (kept beside the task workers that need it)
from resultkit.cache_policies import INPUTS  # noqa: E402


@task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"))
def slow_square(x: int, body_log: str) -> dict[str, int]:
    """An expensive task: appends to ``body_log`` each time its body runs."""
    with open(body_log, "a") as log:
        log.write(f"{os.getpid()}\n")
    time.sleep(0.3)  # the expensive work: long enough for every caller to arrive
    return {"square": x * x, "computed_by": os.getpid()}


def task_herd_member(x: int, body_log: str, start: Any, results: Any,
                     machine: dict[str, str] | None = None) -> None:
    """Call ``slow_square`` after the barrier; ``machine`` gives its own home, S3 and Redis."""
    call = slow_square
    if machine is not None:
        from resultkit.storage.s3 import S3Storage
        from resultkit.transactions import RedisLockManager

        os.environ["RESULTKIT_HOME"] = machine["home"]
        call = slow_square.with_options(
            result_storage=S3Storage(machine["bucket"], endpoint_url=machine["endpoint"]),
            cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE",
                                          lock_manager=RedisLockManager(machine["redis_url"])),
        )
    start.wait()
    state = call(x, body_log, return_state=True)
    results.put((state.name, state.result()))


def serializable_body_until_killed(storage_path: str, key: str, ready: Any) -> None:
    """Enter a SERIALIZABLE transaction (taking the key's file lock) and hang in its body."""
    store = ResultStore(LocalStorage(storage_path))
    with transaction(key, store=store, isolation_level="SERIALIZABLE") as txn:
        assert not txn.is_committed()
        ready.set()
        threading.Event().wait()
