"""t.map and t.submit on real engines: a Dask LocalCluster, a local Ray and a spawned process pool."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from resultkit import settings
from resultkit.storage import LocalStorage
from resultkit.task_runners import DaskTaskRunner, ProcessPoolTaskRunner, RayTaskRunner

from .runner_workload import gated_task, mapping_flow
from .workload import executing_pids, executions

TIMEOUT = 120


@pytest.fixture(params=["dask", "ray", "process"])
def runner(request: pytest.FixtureRequest) -> Any:
    """Each engine's runner, on a cluster the test session already runs where it can."""
    if request.param == "dask":
        return DaskTaskRunner(cluster=request.getfixturevalue("dask_client").cluster)
    if request.param == "ray":
        request.getfixturevalue("ray_local")
        return RayTaskRunner()
    return ProcessPoolTaskRunner(max_workers=2)


def test_map_in_a_flow_stores_in_the_flow_storage_with_the_callers_keys(runner, tmp_path, runs):
    storage = LocalStorage(tmp_path / "flow-store")
    mapping = mapping_flow(storage, runner, runs)
    first = mapping("2026-12-01")
    assert first["names"] == ["Completed"] * 50
    assert os.getpid() not in first["pids"] and os.getpid() not in executing_pids(runs)
    # FLOW_PARAMETERS (and the rest of the key) came out the same on the workers as here.
    assert first["caller_state"] == "Cached" and first["caller_key"] == first["keys"][0]
    assert sorted(storage.list()) == sorted(first["keys"])  # every record in the flow's storage
    assert list((tmp_path / "resultkit-home").glob("**/*")) == []  # none in default storage

    second = mapping("2026-12-01")  # another run of the flow: all hits
    assert second["names"] == ["Cached"] * 50 and second["keys"] == first["keys"]
    assert executions(runs) == sorted(f"keyed{x}" for x in range(50))

    other_day = mapping("2026-12-02")  # other flow parameters: other keys
    assert other_day["names"] == ["Completed"] * 50
    assert not set(other_day["keys"]) & set(first["keys"])


def test_dask_runner_starts_and_closes_its_own_local_cluster(tmp_path, runs):
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1,
                                            "processes": True, "dashboard_address": None})
    mapping = mapping_flow(LocalStorage(tmp_path / "store"), runner, runs, n=6)
    assert mapping("d")["names"] == ["Completed"] * 6
    assert runner.client is None and runner.cluster is None  # the flow's copy was started, not this one


def test_a_herd_of_eight_on_dask_runs_the_body_once_under_serializable(dask_client, tmp_path, runs):
    gate = tmp_path / "gate"
    gated = gated_task(runs, gate, storage=LocalStorage(tmp_path / "store"))
    runner = DaskTaskRunner(cluster=dask_client.cluster)
    with runner, settings(isolation_level="SERIALIZABLE", task_runner=runner):
        futures = [gated.submit(7) for _ in range(8)]
        # Open the gate only once the body runs and the other worker is busy with the herd too.
        deadline = time.monotonic() + TIMEOUT
        while not (executions(runs) and all(runner.client.processing().values())):
            assert time.monotonic() < deadline, "the herd never reached both workers"
            time.sleep(0.01)
        gate.touch()
        states = [future.state for future in futures]
    assert [s.result() for s in states] == [70] * 8
    assert sorted(s.name for s in states) == ["Cached"] * 7 + ["Completed"]
    assert executions(runs) == ["gated7"]  # the body ran once


def test_dask_runner_connects_to_a_scheduler_address(dask_client, tmp_path, runs):
    runner = DaskTaskRunner(address=dask_client.scheduler.address)
    mapping = mapping_flow(LocalStorage(tmp_path / "store"), runner, runs, n=4)
    assert mapping("d")["names"] == ["Completed"] * 4
    assert dask_client.status == "running"  # a scheduler it did not start is left running


def test_runner_arguments_are_checked_and_a_missing_engine_says_what_to_install():
    from resultkit import ConfigurationError

    with pytest.raises(ConfigurationError, match="pass only one of address=, cluster=, client="):
        DaskTaskRunner(address="tcp://127.0.0.1:8786", client=object())
    with pytest.raises(ConfigurationError, match="cluster_class/cluster_kwargs describe a cluster"):
        DaskTaskRunner(address="tcp://127.0.0.1:8786", cluster_kwargs={"n_workers": 1})
    with pytest.raises(ConfigurationError, match="use a scheduler address"):
        DaskTaskRunner(address=8786)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="init_kwargs"):
        RayTaskRunner(init_kwargs=["num_cpus"])  # type: ignore[arg-type]
    runner = DaskTaskRunner(cluster_class="resultkit_no_such_engine.Cluster")
    with pytest.raises(ConfigurationError, match=r"pip install 'resultkit\[dask\]'"):
        runner.start()
