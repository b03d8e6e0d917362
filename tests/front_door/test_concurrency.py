"""One cache shared by threads, a process pool and Dask worker processes."""

from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from resultkit import task
from resultkit.cache_policies import INPUTS, TASK_SOURCE


def counted_task(storage: Path, runs: Path):
    """A task whose body leaves one file in ``runs`` per execution (from any process)."""
    runs.mkdir(parents=True, exist_ok=True)
    runs_dir = str(runs)

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=str(storage), name="shared.square")
    def square(x: int) -> int:
        marker = os.path.join(runs_dir, f"{x}-{os.getpid()}-{uuid.uuid4().hex}")
        with open(marker, "w"):
            pass
        return x * x

    return square


def executions(runs: Path) -> list[int]:
    return sorted(int(name.split("-")[0]) for name in os.listdir(runs))


def test_four_threads_share_one_cache(tmp_path):
    square = counted_task(tmp_path / "store", tmp_path / "runs")
    barrier = threading.Barrier(4)

    def worker(offset: int) -> list[str]:
        barrier.wait()
        first = [square(x) for x in range(offset, 16, 4)]  # each thread computes its share
        barrier.wait()
        states = [square(x, return_state=True) for x in range(16)]  # then reads everyone's
        assert first == [x * x for x in range(offset, 16, 4)]
        assert [s.result() for s in states] == [x * x for x in range(16)]
        return [s.name for s in states]

    with ThreadPoolExecutor(4) as pool:
        names = [n for result in pool.map(worker, range(4)) for n in result]
    assert names == ["Cached"] * 64
    assert executions(tmp_path / "runs") == list(range(16))


def test_a_process_pool_shares_one_cache(tmp_path):
    square = counted_task(tmp_path / "store", tmp_path / "runs")
    ctx = multiprocessing.get_context("spawn")  # nothing inherited: the task travels pickled
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        assert list(pool.map(square, range(8), timeout=120)) == [x * x for x in range(8)]
        second = list(pool.map(_state_name, [square] * 8, range(8), timeout=120))
    assert second == ["Cached"] * 8
    assert executions(tmp_path / "runs") == list(range(8))
    assert square(3, return_state=True).name == "Cached"  # and this process reads them too


def _state_name(t, x):
    return t(x, return_state=True).name


def test_dask_worker_processes_share_one_cache(tmp_path, dask_client):
    square = counted_task(tmp_path / "store", tmp_path / "runs")
    first = [f.result(timeout=120) for f in dask_client.map(square, range(12), pure=False)]
    assert first == [x * x for x in range(12)]
    futures = dask_client.map(square, range(12), return_state=True, pure=False)
    states = [f.result(timeout=120) for f in futures]
    assert [s.name for s in states] == ["Cached"] * 12
    assert [s.result() for s in states] == first
    assert executions(tmp_path / "runs") == list(range(12))
    pids = {int(name.split("-")[1]) for name in os.listdir(tmp_path / "runs")}
    assert os.getpid() not in pids  # the bodies really ran in the workers
