"""A Prefect 3 flow over resultkit tasks, run by tests/compat/prefect/test_under_prefect.py.

``@prefect.task`` is stacked on a resultkit task (Prefect's own caching off), and the flow
maps it under ``ProcessPoolTaskRunner``: Prefect copies the resultkit task's ``__dict__``
and ships it to worker processes. The second map is answered from resultkit's records.
Usage: ``python pipeline.py STORAGE``.
"""

from __future__ import annotations

import sys

from prefect import flow
from prefect import task as prefect_task
from prefect.cache_policies import NO_CACHE as PREFECT_NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner

from resultkit import task
from resultkit.cache_policies import INPUTS

STORAGE = sys.argv[1] if len(sys.argv) > 1 else "results"


@prefect_task(cache_policy=PREFECT_NO_CACHE, persist_result=False)
@task(cache_policy=INPUTS, result_storage=STORAGE, tags=["under-prefect"])
def square(x: int) -> int:
    return x * x


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def pipeline(xs: list[int]) -> tuple[list[int], list[int]]:
    first = [future.result() for future in square.map(xs)]
    second = [future.result() for future in square.map(xs)]
    return first, second


if __name__ == "__main__":
    print("RESULT", pipeline([1, 2, 3]), flush=True)
