"""Tasks and flows for the task-runner tests, pickled by value to Dask, Ray and process workers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle

from resultkit import Flow, Task, flow, task
from resultkit.cache_policies import FLOW_PARAMETERS, INPUTS, TASK_SOURCE
from resultkit.storage import Storage

from .workload import mark_run

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def keyed_task(runs: Path) -> Task[[int], dict[str, Any]]:
    """A task keyed on its input and the flow's parameters, storing in whatever storage is in force."""
    runs_dir = str(runs)

    @task(cache_policy=INPUTS + TASK_SOURCE + FLOW_PARAMETERS, name="runners.keyed",
          cache_result_in_memory=False)
    def keyed(x: int) -> dict[str, Any]:
        mark_run(runs_dir, f"keyed{x}")
        return {"x": x, "pid": os.getpid()}

    return keyed


def mapping_flow(storage: Storage, runner: Any, runs: Path, n: int = 50) -> Flow[[str], dict[str, Any]]:
    """A flow that maps ``keyed`` over ``range(n)`` on ``runner``, storing in ``storage``."""
    keyed = keyed_task(runs)

    @flow(result_storage=storage, task_runner=runner, name="runners.mapping")
    def mapping(day: str) -> dict[str, Any]:
        states = keyed.map(range(n), return_state=True)
        here = keyed(0, return_state=True)  # the caller's own key for the first call
        return {"names": [s.name for s in states], "keys": [s.cache_key for s in states],
                "pids": {s.result()["pid"] for s in states}, "caller_key": here.cache_key,
                "caller_state": here.name}

    return mapping


def gated_task(runs: Path, gate: Path, storage: Any = None) -> Task[[int], int]:
    """A task whose body marks its start, then waits until the file ``gate`` exists."""
    runs_dir, gate_path = str(runs), str(gate)

    @task(cache_policy=INPUTS + TASK_SOURCE, name="runners.gated", result_storage=storage,
          cache_result_in_memory=False)
    def gated(x: int) -> int:
        mark_run(runs_dir, f"gated{x}")
        deadline = time.monotonic() + 120
        while not os.path.exists(gate_path):  # held open until the test lets it finish
            if time.monotonic() > deadline:
                raise TimeoutError(f"{gate_path} never appeared")
            time.sleep(0.01)
        return x * 10

    return gated
