"""Group commits are all or nothing to readers, whatever kills the committer and when.

A writer process commits 2 or 3 records in one transaction and is SIGKILLed at a random
moment (before, inside or after its commit). A reader in another process polls the keys
meanwhile; afterwards the group must be whole or absent, and never partly visible.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from resultkit import task, transaction
from resultkit.cache_policies import INPUTS
from resultkit.results import ResultStore
from resultkit.results.journal import JOURNAL_FOLDER, sweep_journals
from resultkit.storage import LocalStorage, S3Storage, Storage

TRIALS = 30
MIN_MID_COMMIT_KILLS = 10
MAX_TRIALS = 60
fork = multiprocessing.get_context("fork")


def _local(tmp_path: Path) -> Callable[[], Storage]:
    return lambda: LocalStorage(tmp_path / "records")


def _s3(bucket: str, endpoint: str) -> Callable[[], Storage]:
    return lambda: S3Storage(bucket, "results", endpoint_url=endpoint, skip_instance_cache=True)


def commit_group(make_storage: Callable[[], Storage], keys: list[str], elements: int,
                 go: Connection, done: Connection) -> None:
    """Child: say ready, and on 'go' commit one record per key in one transaction; report its seconds."""
    store = ResultStore(make_storage())
    values = [np.full(elements, index, dtype=np.float64) for index in range(len(keys))]
    store.exists(keys[0])  # connects (remote) before 'go', so the commit fills the timed window
    done.send("ready")
    go.recv()
    started = time.perf_counter()
    with transaction(store=store):
        for key, value in zip(keys, values):
            with transaction(key=key, store=store) as txn:
                txn.stage(value)
    done.send(time.perf_counter() - started)


def journals_left(storage: Storage) -> int:
    return sum(1 for key in storage._list(JOURNAL_FOLDER + "/") if not key.endswith(".beat"))


class Reader(threading.Thread):
    """Polls the keys of the current group; if it sees one record, every other must be there too."""

    def __init__(self, store: ResultStore, pace: float) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.pace = pace  # seconds between polls: moto's server shares this process's GIL
        self.keys: list[str] = []
        self.reads = 0
        self.violations: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            keys = list(self.keys)
            for index, key in enumerate(keys):
                if self.store.lookup(key) is not None:
                    # The commit finished: its records are never deleted afterwards.
                    missing = [k for k in keys if self.store.lookup(k) is None]
                    if missing:
                        self.violations.append(f"saw {key} without {missing}")
                    break
            self.reads += 1
            self.stop.wait(self.pace)


def run_trials(make_storage: Callable[[], Storage], records: int, elements: int, tag: str,
               pace: float = 0.0) -> None:
    storage = make_storage()
    reader_store = ResultStore(make_storage())
    reader = Reader(reader_store, pace)
    reader.start()
    rng = random.Random(f"{tag}-{records}")
    commit_seconds = calibrate(make_storage, records, elements, tag)
    trials = mid_commit = 0
    outcomes = {"whole": 0, "absent": 0}
    try:
        while trials < TRIALS or (mid_commit < MIN_MID_COMMIT_KILLS and trials < MAX_TRIALS):
            keys = [f"{tag}/trial-{trials}/record-{index}" for index in range(records)]
            go_receive, go_send = fork.Pipe(duplex=False)
            done_receive, done_send = fork.Pipe(duplex=False)
            child = fork.Process(target=commit_group,
                                 args=(make_storage, keys, elements, go_receive, done_send))
            child.start()
            done_send.close()
            reader.keys = keys
            assert done_receive.recv() == "ready"
            go_send.send(True)
            if rng.random() < 0.25:  # anywhere, journal written or not
                time.sleep(rng.uniform(0.0, commit_seconds))  # a random moment, not a synchronisation
            else:  # inside the commit: once its journal is there, at a random moment after
                while journals_left(storage) == 0 and not done_receive.poll():
                    pass
                time.sleep(rng.uniform(0.0, commit_seconds * 0.8))
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join()
            trials += 1
            mid_commit += journals_left(storage) > 0
            visible = [reader_store.lookup(key) is not None for key in keys]  # recovers a dead commit
            assert all(visible) or not any(visible), f"trial {trials}: partial group {visible}"
            outcomes["whole" if all(visible) else "absent"] += 1
            assert journals_left(storage) == 0 or not any(visible)
            if not any(visible):
                sweep_journals(storage)  # what `resultkit gc` does: nothing of the commit is left
                assert journals_left(storage) == 0
                assert not any(storage.exists(key) for key in keys)
    finally:
        reader.stop.set()
        reader.join()
    assert reader.violations == []
    assert reader.reads > 0
    assert mid_commit >= MIN_MID_COMMIT_KILLS, f"only {mid_commit} of {trials} kills landed mid-commit"
    assert outcomes["whole"] + outcomes["absent"] == trials


def calibrate(make_storage: Callable[[], Storage], records: int, elements: int, tag: str) -> float:
    """Seconds one uninterrupted group commit takes in a child (median of three)."""
    times = []
    for attempt in range(3):
        keys = [f"{tag}/calibrate-{attempt}/record-{index}" for index in range(records)]
        go_receive, go_send = fork.Pipe(duplex=False)
        done_receive, done_send = fork.Pipe(duplex=False)
        child = fork.Process(target=commit_group, args=(make_storage, keys, elements, go_receive, done_send))
        child.start()
        assert done_receive.recv() == "ready"
        go_send.send(True)
        times.append(done_receive.recv())
        child.join()
    return sorted(times)[1]


@pytest.mark.parametrize("records", [2, 3])
def test_sigkill_during_a_local_group_commit_leaves_it_whole_or_absent(tmp_path: Path, records: int) -> None:
    run_trials(_local(tmp_path), records, elements=1 << 19, tag="local")


@pytest.mark.parametrize("records", [2, 3])
def test_sigkill_during_an_s3_group_commit_leaves_it_whole_or_absent(
        s3_bucket: str, s3_endpoint: str, records: int) -> None:
    run_trials(_s3(s3_bucket, s3_endpoint), records, elements=1 << 14, tag="s3", pace=0.005)


# -- tasks: the next call recomputes ----------------------------------------------------


def pipeline(basepath: str, log: str, go: Connection) -> None:
    """Child: a transaction of two tasks, as a user writes it; each body appends to ``log``."""
    small, big = make_tasks(basepath, log)
    go.recv()
    with transaction():
        small(1)
        big(1)


def make_tasks(basepath: str, log: str) -> tuple[Any, Any]:
    def note(name: str) -> None:
        with open(log, "a") as f:
            f.write(name + "\n")

    @task(cache_policy=INPUTS, result_storage=basepath, name="small")
    def small(x: int) -> int:
        note("small")
        return x

    @task(cache_policy=INPUTS, result_storage=basepath, name="big")
    def big(x: int) -> Any:
        note("big")
        return np.zeros(1 << 20)

    return small, big


def test_a_killed_task_transaction_is_recomputed_whole_by_the_next_call(tmp_path: Path) -> None:
    basepath, log = str(tmp_path / "records"), tmp_path / "bodies.log"
    storage = LocalStorage(basepath)
    rng = random.Random(7)
    for trial in range(12):
        log.unlink(missing_ok=True)
        for key in list(storage.list()):
            storage.delete(key)
        go_receive, go_send = fork.Pipe(duplex=False)
        child = fork.Process(target=pipeline, args=(basepath, str(log), go_receive))
        child.start()
        go_send.send(True)
        while not (log.exists() and "big" in log.read_text()):
            if not child.is_alive():
                break
            time.sleep(0.0005)  # polling a file the child writes; the kill moment is random below
        time.sleep(rng.uniform(0.0, 0.01))
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        small, big = make_tasks(basepath, str(log))
        stored_before = [small.explain(1).hit, big.explain(1).hit]
        assert stored_before in ([True, True], [False, False]), f"trial {trial}: {stored_before}"
        log.unlink(missing_ok=True)
        with transaction():
            small(1)
            big(1)
        ran = log.read_text().split() if log.exists() else []
        assert ran == ([] if stored_before == [True, True] else ["small", "big"])
        assert small.explain(1).hit and big.explain(1).hit  # the group ends whole
