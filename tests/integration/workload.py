"""Tasks for the integration tests, built in factories so they pickle by value.

A Dask worker or spawned process cannot import the test modules, so a task and every
helper it calls must travel whole: this module registers itself with cloudpickle to be
pickled by value.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from resultkit import Flow, Task, flow, task
from resultkit.cache_policies import INPUTS, TASK_SOURCE
from resultkit.storage import Storage

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def mark_run(runs: str, label: str) -> None:
    """Leave one marker file for one execution of a body: ``label-pid-unique``."""
    with open(os.path.join(runs, f"{label}-{os.getpid()}-{uuid.uuid4().hex}"), "w"):
        pass


def executions(runs: Path) -> list[str]:
    """The labels of every body execution so far, sorted."""
    return sorted(name.rsplit("-", 2)[0] for name in os.listdir(runs))


def executing_pids(runs: Path) -> set[int]:
    """The process ids that ran bodies."""
    return {int(name.rsplit("-", 2)[1]) for name in os.listdir(runs)}


def square_task(storage: Storage, runs: Path) -> Task[[int], dict[str, Any]]:
    """A cached task whose value holds a numpy array, counting its executions."""
    runs_dir = str(runs)

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=storage, name="integration.square",
          cache_result_in_memory=False)
    def square(x: int) -> dict[str, Any]:
        mark_run(runs_dir, f"square{x}")
        return {"x": x, "squares": np.arange(x + 1) ** 2}

    return square


def daily_flow(local: Storage, remote: Storage, runs: Path) -> Flow[[int], dict[str, Any]]:
    """A flow whose first task stores locally and second in remote storage."""
    runs_dir = str(runs)

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=local, name="integration.clean",
          cache_result_in_memory=False)
    def clean(day: int) -> np.ndarray:
        mark_run(runs_dir, f"clean{day}")
        values = np.random.default_rng(day).normal(size=5_000)
        return values[np.abs(values) < 3]

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=remote, name="integration.summarise",
          cache_result_in_memory=False)
    def summarise(values: np.ndarray) -> dict[str, float]:
        mark_run(runs_dir, f"summarise{len(values)}")
        return {"count": float(len(values)), "mean": float(values.mean())}

    @flow
    def daily(day: int) -> dict[str, Any]:
        cleaned = clean(day, return_state=True)
        summary = summarise(cleaned.result(), return_state=True)
        return {"states": [cleaned.name, summary.name], "summary": summary.result(),
                "keys": [cleaned.cache_key, summary.cache_key], "pid": os.getpid()}

    return daily


def publish_flow(storage: Storage, runs: Path) -> Flow[[int, int], str]:
    """A flow that exports a file then validates it, in one transaction with a rollback hook."""
    runs_dir = str(runs)

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=storage, name="integration.export")
    def export(day: int) -> str:
        path = os.path.join(runs_dir, f"export{day}-{os.getpid()}-{uuid.uuid4().hex}")
        with open(path, "w") as out:
            out.write(f"report for day {day}\n")
        return path

    @export.on_rollback
    def remove_export(txn: Any) -> None:
        for name in os.listdir(runs_dir):
            if name.startswith("export"):
                os.remove(os.path.join(runs_dir, name))

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=storage, name="integration.check")
    def check(path: str, min_size: int) -> str:
        if os.path.getsize(path) < min_size:
            raise ValueError(f"{os.path.basename(path)} is smaller than {min_size} bytes")
        return path

    @flow
    def publish(day: int, min_size: int) -> str:
        from resultkit import transaction

        with transaction():
            return check(export(day), min_size)

    return publish
