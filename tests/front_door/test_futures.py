"""Futures on the thread runner: submit, map, unmapped, wait_for, upstream failures, context."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest

from resultkit import ConfigurationError, flow, settings, task, unmapped
from resultkit.cache_policies import FLOW_PARAMETERS, INPUTS, RUN_ID
from resultkit.context import ContextSnapshot, capture, get_run_context, restore
from resultkit.futures import FutureList, TaskFuture
from resultkit.task_runners import ThreadPoolTaskRunner, current_task_runner


@task
def add(x: int, y: int = 1) -> int:
    return x + y


@task
def total(values: list[int], start: int = 0) -> int:
    return start + sum(values)


@task
def fail(message: str) -> int:
    raise ValueError(message)


def test_submit_returns_a_future_with_the_value_and_a_state():
    future = add.submit(41)
    assert isinstance(future, TaskFuture)
    assert future.result(timeout=30) == 42
    assert future.state.name == "Completed" and future.state.result() == 42
    assert future.done()
    assert add.submit(1, y=2, return_state=True).result() == 3


def test_map_zips_iterables_and_repeats_scalars_and_unmapped():
    futures = add.map([1, 2, 3], 10)
    assert isinstance(futures, FutureList) and len(futures) == 3
    assert futures.result() == [11, 12, 13]
    assert add.map(x=[1, 2], y=[10, 20]).result() == [11, 22]
    # unmapped: the whole list goes to every call, as in Prefect.
    assert total.map(unmapped([1, 2, 3]), start=[0, 100]).result() == [6, 106]
    states = add.map(range(3), return_state=True)
    assert [s.name for s in states] == ["Completed"] * 3


def test_map_maps_over_a_future_that_returns_a_list():
    @task
    def numbers() -> list[int]:
        return [5, 6]

    assert add.map(numbers.submit()).result() == [6, 7]


def test_futures_and_values_mix_as_arguments_also_inside_lists():
    one, two = add.submit(0), add.submit(1)
    assert add.submit(one, y=two).result() == 3
    assert total.submit([one, two, 10], start=one).result() == 14
    assert total.map([[one], [two, 5]]).result() == [1, 7]
    assert total.submit(add.map([1, 2])).result() == 5  # what map returned, passed on whole


def test_a_future_argument_is_resolved_before_the_key_is_computed(tmp_path):
    @task(cache_policy=INPUTS, result_storage=tmp_path)
    def square(x: int) -> int:
        return x * x

    via_future = square.submit(add.submit(2)).state  # add(2) == 3
    direct = square(3, return_state=True)
    assert via_future.name == "Completed" and direct.name == "Cached"
    assert via_future.cache_key == direct.cache_key


def test_wait_for_orders_calls_that_pass_no_value():
    order: list[str] = []
    first_may_finish = threading.Event()

    @task
    def first() -> None:
        assert first_may_finish.wait(30)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    upstream = first.submit()
    downstream = second.submit(wait_for=[upstream])
    assert not downstream.done()  # held back while its upstream runs
    first_may_finish.set()
    downstream.wait(30)
    assert order == ["first", "second"]


def test_a_failing_upstream_fails_the_downstream_with_its_error():
    broken = fail.submit("upstream broke")
    downstream = add.submit(broken)
    assert downstream.state.is_failed()
    with pytest.raises(ValueError, match="upstream broke"):
        downstream.result()
    waiting = add.submit(1, wait_for=[broken])
    assert isinstance(waiting.state.exception, ValueError)
    assert str(waiting.result(raise_on_failure=False)) == "upstream broke"
    mapped = add.map([broken, 1])
    assert [f.state.name for f in mapped] == ["Failed", "Completed"]


def test_result_timeout_names_the_task():
    gate = threading.Event()

    @task
    def slow() -> int:
        assert gate.wait(30)
        return 1

    future = slow.submit()
    with pytest.raises(TimeoutError, match=r"'slow' did not finish within 0\.05 s"):
        future.result(timeout=0.05)
    future.wait(0.01)  # waiting never raises
    gate.set()
    assert future.result(timeout=30) == 1


def test_map_errors_name_the_problem():
    with pytest.raises(ConfigurationError, match=r"no iterable argument.*submit\(\)"):
        add.map(1, 2)
    with pytest.raises(ConfigurationError, match=r"different lengths \{'x': 2, 'y': 3\}.*unmapped"):
        add.map([1, 2], [1, 2, 3])
    with pytest.raises(ConfigurationError, match="wait_for= takes futures"):
        add.submit(1, wait_for=[3])
    # str is a scalar, not an iterable of characters (as in Prefect)
    assert total.map([[1]], start=unmapped(0)).result() == [1]


def test_async_tasks_and_methods_submit():
    @task
    async def double(x: int) -> int:
        return 2 * x

    class Model:
        def __init__(self, scale: int) -> None:
            self.scale = scale

        @task
        def apply(self, x: int) -> int:
            return self.scale * x

    assert double.submit(4).result() == 8
    model = Model(3)
    assert model.apply.submit(2).result() == 6
    assert model.apply.map([1, 2]).result() == [3, 6]


def test_the_flow_runner_is_started_per_run_and_closed_after_it():
    seen: list[object] = []

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def pipeline() -> list[int]:
        seen.append(current_task_runner())
        return add.map(range(4)).result()

    assert pipeline() == [1, 2, 3, 4] and pipeline() == [1, 2, 3, 4]
    first, second = seen
    assert isinstance(first, ThreadPoolTaskRunner) and first is not second
    assert not first._started and not second._started  # closed when their runs ended


def test_settings_choose_the_runner_outside_a_flow():
    with ThreadPoolTaskRunner(max_workers=1) as runner, settings(task_runner=runner):
        assert current_task_runner() is runner
        assert add.submit(1).runner is runner
    assert current_task_runner() is not runner  # the process's default again


def test_bad_runners_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="task_runner must be a TaskRunner"):
        flow(task_runner="threads")(lambda: None)
    with pytest.raises(ConfigurationError, match="task_runner must be a TaskRunner"), \
            settings(task_runner=object()):
        pass
    with pytest.raises(ConfigurationError, match=r"max_workers=0\): use an int >= 1"):
        ThreadPoolTaskRunner(max_workers=0)


def test_submitted_tasks_see_the_flow_run_and_its_storage(tmp_path):
    @task(cache_policy=INPUTS + FLOW_PARAMETERS + RUN_ID)
    def probe(x: int) -> dict[str, object]:
        run = get_run_context()
        assert run is not None
        return {"run_id": run.run_id, "parameters": dict(run.parameters),
                "thread": threading.current_thread().name}

    @flow(result_storage=tmp_path / "flow-store")
    def pipeline(day: str) -> tuple[list[dict[str, object]], str, list[str]]:
        states = probe.map([1, 2], return_state=True)
        run = get_run_context()
        assert run is not None
        return [s.result() for s in states], run.run_id, [s.cache_key for s in states]

    values, run_id, keys = pipeline("monday")
    assert [v["run_id"] for v in values] == [run_id, run_id]
    assert [v["parameters"] for v in values] == [{"day": "monday"}] * 2
    assert all(str(v["thread"]).startswith("resultkit-task") for v in values)
    assert sorted(p.name for p in (tmp_path / "flow-store").iterdir()) == sorted(keys)


def test_capture_and_restore_carry_the_context_by_hand(tmp_path):
    @flow(result_storage=tmp_path / "flow-store", persist_result=True)
    def outer(n: int) -> ContextSnapshot:
        return capture()

    snapshot = outer(3)
    assert snapshot.run is not None and dict(snapshot.run.parameters) == {"n": 3}
    clone = pickle.loads(pickle.dumps(snapshot))  # what another process would get
    assert get_run_context() is None
    with restore(clone):
        run = get_run_context()
        assert run is not None and run.run_id == snapshot.run.run_id
        assert add(1, return_state=True).reference.storage.basepath == tmp_path / "flow-store"
    assert get_run_context() is None and not capture()
    with pytest.raises(ConfigurationError, match=r"ContextSnapshot from resultkit\.context\.capture"):
        with restore({"run": None}):  # type: ignore[arg-type]
            pass


def test_isolation_level_setting_makes_tasks_serializable(tmp_path, monkeypatch):
    """SERIALIZABLE takes the key's lock: a lock held elsewhere makes the call wait, then time out."""
    from resultkit import LockTimeout
    from resultkit.locking import default_lock_manager
    from resultkit.results import ResultStore

    @task(cache_policy=INPUTS)
    def square(x: int) -> int:
        return x * x

    key = square(2, return_state=True).cache_key  # in the default storage; the key is the same anywhere
    other = tmp_path / "other-store"
    locks = default_lock_manager(ResultStore(other))
    assert locks.acquire_lock(key, "someone-else", hold_timeout=60)
    monkeypatch.setenv("RESULTKIT_LOCK_TIMEOUT", "0.1")
    with settings(result_storage=other, isolation_level="serializable"):
        with pytest.raises(LockTimeout, match="someone-else"):
            square(2)
    monkeypatch.setenv("RESULTKIT_ISOLATION_LEVEL", "SERIALIZABLE")
    with settings(result_storage=other), pytest.raises(LockTimeout):
        square(2)
    with settings(result_storage=other, isolation_level="READ_COMMITTED"):
        assert square(2) == 4  # the block's level beats the environment's: no wait for the lock
    monkeypatch.delenv("RESULTKIT_ISOLATION_LEVEL")
    locks.release_lock(key, "someone-else")


def test_isolation_level_from_pyproject_and_bad_values(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.resultkit]\nisolation_level = 'SERIALIZABLE'\n")
    monkeypatch.chdir(project)
    from resultkit._settings import effective_settings
    from resultkit.transactions import IsolationLevel

    assert effective_settings().isolation_level is IsolationLevel.SERIALIZABLE
    (project / "pyproject.toml").write_text("[tool.resultkit]\nisolation_level = 'sometimes'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESULTKIT_ISOLATION_LEVEL", "sometimes")
    with pytest.raises(ConfigurationError, match=r"RESULTKIT_ISOLATION_LEVEL.*'sometimes'.*SERIALIZABLE"):
        add(1)
    with pytest.raises(ConfigurationError, match=r"settings\(\): isolation_level='never'"), \
            settings(isolation_level="never"):
        pass


def test_the_process_default_runner_is_one_thread_pool(tmp_path: Path):
    assert isinstance(current_task_runner(), ThreadPoolTaskRunner)
    assert current_task_runner() is current_task_runner()


def test_bind_runs_a_task_in_the_captured_context_in_a_spawned_pool(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    @task(cache_policy=INPUTS + FLOW_PARAMETERS)
    def where(x: int) -> int:
        return x

    @flow(result_storage=tmp_path / "flow-store")
    def pipeline(tag: str) -> tuple[list[str], str]:
        bound = capture().bind(where)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            states = [pool.submit(bound, x, return_state=True).result(timeout=120) for x in (1, 2)]
        return [s.cache_key for s in states], where(1, return_state=True).name

    keys, here = pipeline("blue")
    assert here == "Cached"  # the worker's key for where(1) is the caller's, FLOW_PARAMETERS included
    assert sorted(p.name for p in (tmp_path / "flow-store").iterdir()) == sorted(keys)
    with pytest.raises(ConfigurationError, match="bind\\(\\) needs a callable"):
        capture().bind(3)  # type: ignore[arg-type]


def test_unmapped_and_runner_arguments_follow_prefect():
    from resultkit.task_runners import DaskTaskRunner, RayTaskRunner

    assert unmapped([1, 2]) == unmapped([1, 2]) and unmapped(1) != 1
    assert hash(unmapped(3)) == hash(unmapped(3)) and repr(unmapped("x")) == "unmapped('x')"
    # prefect-dask's and prefect-ray's argument order (SPEC 9)
    dask = DaskTaskRunner("tcp://127.0.0.1:8786", None, None, {"timeout": 5})
    assert dask.address == "tcp://127.0.0.1:8786" and dask.client_kwargs == {"timeout": 5}
    copy = dask.duplicate()
    assert copy is not dask and (copy.address, copy.client_kwargs) == (dask.address, dask.client_kwargs)
    ray_runner = RayTaskRunner("auto", {"num_cpus": 1})
    assert (ray_runner.address, ray_runner.init_kwargs) == ("auto", {"num_cpus": 1})
