"""Tasks inside transactions: grouped commits, rollback hooks, RolledBack states, SERIALIZABLE."""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from resultkit import flow, get_transaction, task, transaction
from resultkit.cache_policies import INPUTS


def stored(path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if not p.name.startswith(".rk-")) if path.exists() else []


def test_a_later_failure_rolls_back_earlier_tasks_in_the_block(tmp_path):
    out = tmp_path / "out.txt"
    store = tmp_path / "store"
    rolled_back = []

    @task(cache_policy=INPUTS, result_storage=str(store))
    def write_file(text):
        out.write_text(text)
        return str(out)

    @write_file.on_rollback
    def remove_file(txn):
        rolled_back.append(txn.key)
        out.unlink()

    @task(cache_policy=INPUTS, result_storage=str(store))
    def quality_test(path):
        raise ValueError(f"{path} fails the quality test")

    states = []

    @flow
    def pipeline():
        with transaction():
            states.append(write_file("hello", return_state=True))
            assert out.exists() and states[0].name == "Completed"
            quality_test(states[0].result())

    with pytest.raises(ValueError, match="fails the quality test"):
        pipeline()
    assert not out.exists() and len(rolled_back) == 1
    assert stored(store) == []  # neither task left a record
    assert states[0].name == "RolledBack" and states[0].is_rolled_back()


def test_tasks_in_a_block_commit_together_when_it_ends(tmp_path):
    committed = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def step(x):
        assert get_transaction() is not None
        return x

    @step.on_commit
    def note(txn):
        committed.append(stored(tmp_path))

    with transaction():
        step(1), step(2)
        assert stored(tmp_path) == [] and committed == []  # nothing written before the block ends
    assert len(stored(tmp_path)) == 2
    assert committed == [stored(tmp_path)] * 2  # hooks ran only after every write


def test_tasks_that_do_not_persist_still_take_part(tmp_path):
    rolled_back = []

    @task
    def ephemeral(x):
        return x

    ephemeral.on_rollback(lambda txn: rolled_back.append("ephemeral"))

    with pytest.raises(KeyError):
        with transaction():
            state = ephemeral(1, return_state=True)
            raise KeyError("later failure")
    assert rolled_back == ["ephemeral"] and state.name == "RolledBack"


def test_a_task_called_from_a_task_is_a_lazy_child(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path / "store"))
    def inner(x):
        return x + 1

    @task(cache_policy=INPUTS, result_storage=str(tmp_path / "store"))
    def outer(x):
        inner(x)
        raise RuntimeError("outer fails after inner staged")

    with pytest.raises(RuntimeError):
        outer(1)
    assert stored(tmp_path / "store") == []  # inner's record went down with outer


def test_serializable_tasks_run_the_body_once_across_threads(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    barrier = threading.Barrier(4)

    @task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"), result_storage=str(tmp_path / "s"))
    def expensive(x):
        (runs / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        return x * 7

    def call(_):
        barrier.wait()
        return expensive(6, return_state=True)

    with ThreadPoolExecutor(4) as pool:
        states = list(pool.map(call, range(4)))
    assert [s.result() for s in states] == [42] * 4
    assert sorted(s.name for s in states) == ["Cached"] * 3 + ["Completed"]
    assert len(list(runs.iterdir())) == 1
