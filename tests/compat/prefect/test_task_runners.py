"""Our answers to Prefect's tests/test_task_runners.py (ThreadPoolTaskRunner and ProcessPoolTaskRunner).

Prefect's runner tests call ``runner.submit(task, parameters_dict)``; ours go through
``t.submit``/``t.map``, the public call path, inside ``with runner, settings(task_runner=runner)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from resultkit import flow, settings, task
from resultkit.context import get_run_context
from resultkit.futures import TaskFuture
from resultkit.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from ._cite import xfail_differs


@task
def my_test_task(param1: Any, param2: Any) -> tuple[Any, Any]:
    return param1, param2


@task
async def my_test_async_task(param1: Any, param2: Any) -> tuple[Any, Any]:
    return param1, param2


@task
def context_matters(param1: Any = None, param2: Any = None) -> str | None:
    run = get_run_context()
    return None if run is None else run.flow_name


@task
def add_one(x: int) -> int:
    return x + 1


@contextlib.contextmanager
def running(runner: TaskRunner) -> Iterator[TaskRunner]:
    with runner, settings(task_runner=runner):
        yield runner


@pytest.fixture(params=["threads", "processes"])
def runner(request: pytest.FixtureRequest) -> TaskRunner:
    return ThreadPoolTaskRunner() if request.param == "threads" else ProcessPoolTaskRunner(2)


def test_duplicate() -> None:
    """Prefect: tests/test_task_runners.py (both runner classes)."""
    for original in (ThreadPoolTaskRunner(max_workers=100), ProcessPoolTaskRunner(max_workers=3)):
        copy = original.duplicate()
        assert type(copy) is type(original) and copy is not original
        assert copy.max_workers == original.max_workers


@xfail_differs("A runner used before it was started starts itself")
def test_runner_must_be_started() -> None:
    """Prefect: tests/test_task_runners.py; ours starts itself on first use."""
    with pytest.raises(RuntimeError, match="not started"):
        ThreadPoolTaskRunner().submit(my_test_task, (1, 2), {})


def test_set_max_workers() -> None:
    """Prefect: tests/test_task_runners.py."""
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        assert runner._executor is not None and runner._executor._max_workers == 2


def test_submit_sync_task(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    with running(runner):
        future = my_test_task.submit(1, 2)
        assert isinstance(future, TaskFuture)
        assert future.result(timeout=120) == (1, 2)


def test_submit_async_task(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    with running(runner):
        assert my_test_async_task.submit(1, 2).result(timeout=120) == (1, 2)


def test_submit_sync_task_receives_context(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py (Prefect's tags; ours the flow run)."""
    @flow(task_runner=runner, name="context-flow")
    def outer() -> Any:
        return context_matters.submit().result(timeout=120)

    assert outer() == "context-flow"


def test_map_sync_task(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    with running(runner):
        futures = my_test_task.map([1, 2, 3], [4, 5, 6])
        assert all(isinstance(f, TaskFuture) for f in futures)
        assert [f.result(timeout=120) for f in futures] == [(1, 4), (2, 5), (3, 6)]


def test_map_async_task(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    with running(runner):
        assert my_test_async_task.map([1, 2, 3], [4, 5, 6]).result(timeout=120) == [(1, 4), (2, 5), (3, 6)]


def test_map_sync_task_with_context(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    @flow(task_runner=runner, name="mapped-context")
    def outer() -> Any:
        return context_matters.map([1, 2, 3], [4, 5, 6]).result(timeout=120)

    assert outer() == ["mapped-context"] * 3


def test_map_with_future_resolved_to_list(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    with running(runner):
        listed = numbers.submit()
        assert my_test_task.map(listed, listed).result(timeout=120) == [(1, 1), (2, 2), (3, 3)]


def test_handles_recursively_submitted_tasks() -> None:
    """Prefect: tests/test_task_runners.py (33 nested submits never deadlock the pool)."""
    @task
    def recursive_task(n: int) -> int:
        if n == 0:
            return n
        return recursive_task.submit(n - 1).result(timeout=120)

    @flow
    def test_flow() -> TaskFuture[int]:
        return recursive_task.submit(33)

    assert test_flow().result(timeout=120) == 0


def test_task_raises_exception(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py (ProcessPoolTaskRunner)."""
    @task
    def broken() -> None:
        raise ValueError("Test error")

    with running(runner), pytest.raises(ValueError, match="Test error"):
        broken.submit().result(timeout=120)


def test_submit_with_wait_for(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    @flow(task_runner=runner)
    def test_flow() -> tuple[int, int, int]:
        future_a = add_one.submit(1)
        future_b = add_one.submit(2, wait_for=[future_a])
        future_c = add_one.submit(3, wait_for=[future_b])
        return future_a.result(), future_b.result(), future_c.result()

    assert test_flow() == (2, 3, 4)


@xfail_differs("A call whose upstream failed is `Failed` with the upstream's exception")
def test_submit_with_wait_for_upstream_failure() -> None:
    """Prefect: tests/test_task_runners.py; ours fails with the upstream's error instead."""
    @task
    def failing_task() -> None:
        raise RuntimeError("I failed!")

    @task
    def downstream_task() -> str:
        return "downstream completed"

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def test_flow() -> Any:
        upstream = failing_task.submit()
        downstream = downstream_task.submit(wait_for=[upstream])
        return upstream.state, downstream.state

    upstream_state, downstream_state = test_flow()
    assert upstream_state.is_failed()
    assert downstream_state.name == "NotReady"


def test_submit_with_future_as_parameter(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    @flow(task_runner=runner)
    def test_flow() -> tuple[int, int]:
        future_a = add_one.submit(5)
        future_b = add_one.submit(future_a)
        return future_a.result(), future_b.result()

    assert test_flow() == (6, 7)


def test_submit_with_multiple_futures_as_parameters(runner: TaskRunner) -> None:
    """Prefect: tests/test_task_runners.py."""
    @flow(task_runner=runner)
    def test_flow() -> tuple[Any, Any, Any]:
        future_a = my_test_task.submit(1, 2)
        future_b = my_test_task.submit(3, 4)
        future_c = my_test_task.submit(future_a, future_b)
        return future_a.result(), future_b.result(), future_c.result()

    assert test_flow() == ((1, 2), (3, 4), ((1, 2), (3, 4)))


def test_submit_remains_non_blocking() -> None:
    """Prefect: tests/test_task_runners.py (checked without timing: the downstream is not done yet)."""
    import threading

    gate = threading.Event()

    @task
    def held(x: int) -> int:
        return x

    with running(ThreadPoolTaskRunner()):
        @task
        def blocker() -> int:
            assert gate.wait(120)
            return 1

        upstream = blocker.submit()
        downstream = held.submit(2, wait_for=[upstream])  # returns while upstream still runs
        assert not upstream.done() and not downstream.done()
        gate.set()
        assert downstream.result(timeout=120) == 2


def test_executor_shutdown_on_exit() -> None:
    """Prefect: tests/test_task_runners.py."""
    runner = ProcessPoolTaskRunner(max_workers=1)
    with runner:
        assert runner.submit(add_one, (1,), {}).result(timeout=120) == 2
        executor = runner._executor
        assert executor is not None
    assert runner._executor is None
    with pytest.raises(RuntimeError):
        executor.submit(int)
