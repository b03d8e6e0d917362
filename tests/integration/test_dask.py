"""resultkit inside a Dask LocalCluster of worker processes, on local and S3 storage."""

from __future__ import annotations

import os

import pytest

from resultkit.results import ResultReference
from resultkit.storage import LocalStorage

from .workload import daily_flow, executing_pids, executions, publish_flow, square_task

TIMEOUT = 120


def results(futures):
    return [future.result(timeout=TIMEOUT) for future in futures]


def test_dask_workers_share_s3_storage_the_second_pass_all_hits(dask_client, s3_storage, runs):
    # (Dask on local storage: tests/front_door/test_concurrency.py.)
    square = square_task(s3_storage, runs)
    first = results(dask_client.map(square, range(8), return_state=True, pure=False))
    assert [s.name for s in first] == ["Completed"] * 8
    second = results(dask_client.map(square, range(8), return_state=True, pure=False))
    assert [s.name for s in second] == ["Cached"] * 8
    assert [s.result()["x"] for s in second] == list(range(8))
    assert [s.result()["squares"].tolist() for s in second] == [
        [i * i for i in range(x + 1)] for x in range(8)]
    assert executions(runs) == sorted(f"square{x}" for x in range(8))  # each body ran once
    assert os.getpid() not in executing_pids(runs)  # in the workers
    assert sorted(s3_storage.list()) == sorted(s.cache_key for s in first)
    assert square(5, return_state=True).name == "Cached"  # the client reads the same records


def test_flows_on_dask_workers_mix_local_and_s3_storage(dask_client, tmp_path, s3_storage, runs):
    local = LocalStorage(tmp_path / "local-store")
    daily = daily_flow(local, s3_storage, runs)
    first = results(dask_client.map(daily, range(6), pure=False))
    assert [r["states"] for r in first] == [["Completed", "Completed"]] * 6
    second = results(dask_client.map(daily, range(6), pure=False))
    assert [r["states"] for r in second] == [["Cached", "Cached"]] * 6
    assert [r["summary"] for r in second] == [r["summary"] for r in first]
    assert len(executions(runs)) == 12  # two tasks for each of six days, once each
    assert sorted(local.list()) == sorted(r["keys"][0] for r in first)
    assert sorted(s3_storage.list()) == sorted(r["keys"][1] for r in first)
    assert daily(3) == {**first[3], "pid": os.getpid(), "states": ["Cached", "Cached"]}


def test_references_pass_between_dask_workers_as_json(dask_client, s3_storage, runs):
    square = square_task(s3_storage, runs)
    producer, consumer = sorted(dask_client.scheduler_info()["workers"])

    def produce(x):
        return square(x, return_state=True).reference.to_json()

    def consume(text):
        ref = ResultReference.from_json(text)
        return os.getpid(), ref.get()["squares"].sum()

    texts = dask_client.map(produce, range(4), workers=[producer], allow_other_workers=False,
                            pure=False)
    totals = dask_client.map(consume, texts, workers=[consumer], allow_other_workers=False,
                             pure=False)
    loaded = results(totals)
    assert [int(total) for _, total in loaded] == [sum(i * i for i in range(x + 1)) for x in range(4)]
    assert len({pid for pid, _ in loaded}) == 1 and loaded[0][0] not in executing_pids(runs)
    assert executions(runs) == [f"square{x}" for x in range(4)]  # consumers never ran the body


def test_a_transaction_on_a_worker_rolls_back_and_leaves_nothing_in_s3(dask_client, s3_storage, runs):
    publish = publish_flow(s3_storage, runs)
    failed = dask_client.submit(publish, 1, 1_000_000, pure=False)
    with pytest.raises(ValueError, match="smaller than 1000000 bytes"):
        failed.result(timeout=TIMEOUT)
    assert os.listdir(runs) == []  # the rollback hook removed the export, on the worker
    assert list(s3_storage.list()) == []  # and neither task's record was written

    path = dask_client.submit(publish, 1, 10, pure=False).result(timeout=TIMEOUT)
    assert [os.path.join(runs, name) for name in os.listdir(runs)] == [path]
    assert len(list(s3_storage.list())) == 2  # both committed together
