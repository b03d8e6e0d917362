"""Answers Prefect's tests/test_tasks.py (classes TestResultPersistence, TestTaskCaching,
TestCacheFunctionBuiltins, TestCachePolicies and TestTaskWithOptions): one test of ours per
behaviour, named after theirs. The code is written as a Prefect user would write it, with
resultkit's imports.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
from pathlib import Path
from typing import Any

import pydantic
import pytest

from resultkit import ConfigurationError, HashError, flow, task
from resultkit.cache_policies import (
    DEFAULT,
    INPUTS,
    NO_CACHE,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    FlowParameters,
    Inputs,
    RunId,
    TaskSource,
)
from resultkit.storage import LocalStorage
from resultkit.tasks import Task, task_input_hash
from resultkit.transactions import FileLockManager, IsolationLevel, MemoryLockManager

from ._cite import xfail_differs

# Policies a task can be given; Prefect parametrizes over CachePolicy.__subclasses__().
POLICIES: list[CachePolicy] = [Inputs(), TaskSource(), FlowParameters(), RunId(),
                               CacheKeyFnPolicy(lambda *_: "k"), INPUTS + TASK_SOURCE]


# -- TestResultPersistence ----------------------------------------------------------------


@pytest.mark.parametrize("persist_result", [True, False])
def test_persist_result_set_to_bool(persist_result: bool) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(persist_result=persist_result)
    def my_task() -> None:
        pass

    @task
    def base() -> None:
        pass

    assert my_task.persist_result is persist_result
    assert base.with_options(persist_result=persist_result).persist_result is persist_result


def test_default_cache_policy_does_not_set_persist_result_with_options() -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task
    def base() -> None:
        pass

    assert base.cache_policy == DEFAULT and base.persist_result is None
    new_task = base.with_options(name="something")
    assert new_task.cache_policy == DEFAULT and new_task.persist_result is None


@pytest.mark.parametrize("cache_policy", POLICIES, ids=lambda p: type(p).__name__)
def test_setting_cache_policy_sets_persist_result_to_true(cache_policy: CachePolicy) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(cache_policy=cache_policy)
    def my_task() -> None:
        pass

    @task
    def base() -> None:
        pass

    assert my_task.persist_result is True
    assert base.with_options(cache_policy=cache_policy).persist_result is True


def test_setting_cache_key_fn_sets_persist_result_to_true() -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(cache_key_fn=lambda *_: "test-key")
    def my_task() -> None:
        pass

    @task
    def base() -> None:
        pass

    assert my_task.persist_result is True
    assert base.with_options(cache_key_fn=lambda *_: "test-key").persist_result is True


def test_setting_result_storage_sets_persist_result_to_true(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence (an unsaved storage instance)."""
    storage = LocalStorage(tmp_path)

    @task(result_storage=storage)
    def my_task() -> None:
        pass

    @task
    def base() -> None:
        pass

    assert my_task.persist_result is True
    assert base.with_options(result_storage=storage).persist_result is True


def test_setting_result_serializer_sets_persist_result_to_true() -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(result_serializer="json")
    def my_task() -> None:
        pass

    @task
    def base() -> None:
        pass

    assert my_task.persist_result is True
    assert base.with_options(result_serializer="json").persist_result is True


def test_setting_result_storage_key_sets_persist_result_to_true() -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(result_storage_key="test-key")
    def my_task() -> None:
        pass

    @task
    def base() -> None:
        pass

    assert my_task.persist_result is True
    assert base.with_options(result_storage_key="test-key").persist_result is True


def test_result_storage_accepts_path_object(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    storage_path = tmp_path / "results"

    @task(result_storage=storage_path)
    def my_task() -> int:
        return 42

    assert my_task.result_storage == storage_path and my_task.persist_result is True


def test_result_storage_with_path_execution(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(result_storage=tmp_path / "results", persist_result=True)
    def my_task(x: int) -> int:
        return x * 2

    @flow
    def test_flow() -> int:
        return my_task(5)

    assert test_flow() == 10
    assert list((tmp_path / "results").iterdir())


def test_result_storage_path_with_with_options(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    path1, path2 = tmp_path / "path1", tmp_path / "path2"

    @task(result_storage=path1)
    def base() -> None:
        pass

    new_task = base.with_options(result_storage=path2)
    assert (base.result_storage, new_task.result_storage) == (path1, path2)
    assert base.persist_result is True and new_task.persist_result is True


def test_result_storage_path_relative() -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(result_storage=Path("./relative/path"))
    def my_task() -> str:
        return "test"

    assert my_task.result_storage == Path("./relative/path") and my_task.persist_result is True


@xfail_differs("Unsaved storage instances work everywhere")
def test_result_storage_unsaved_block_still_rejected(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    with pytest.raises(TypeError):
        @task(result_storage=LocalStorage(tmp_path))
        def my_task() -> None:
            pass


@xfail_differs("A value that cannot be serialized raises `SerializationError`")
def test_logs_warning_on_serialization_error(caplog: pytest.LogCaptureFixture) -> None:
    """Prefect tests/test_tasks.py::TestResultPersistence."""
    @task(result_serializer="json")
    def my_task() -> Any:
        return lambda: 1

    assert callable(my_task())
    assert any(r.levelname == "WARNING" and "serializ" in r.getMessage() for r in caplog.records)


# -- TestTaskCaching ------------------------------------------------------------------------


def test_repeated_task_call_within_flow_is_cached_by_default() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(1, return_state=True)

    first, second = bar()
    assert (first.name, second.name) == ("Completed", "Cached")
    assert second.result() == first.result()


def test_cache_hits_within_flows_are_cached() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_key_fn=lambda *_: "cache_hit-1", persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(2, return_state=True)

    first, second = bar()
    assert (first.name, second.name) == ("Completed", "Cached")
    assert second.result() == first.result() == 1


def test_many_repeated_cache_hits_within_flows_cached() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_key_fn=lambda *_: "cache_hit-2", persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        foo(1, return_state=True)
        return [foo(i, return_state=True) for i in range(5)]

    assert all(state.name == "Cached" for state in bar())


def test_cache_hits_between_flows_are_cached() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_key_fn=lambda *_: "cache_hit-3", persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar(x: int) -> Any:
        return foo(x, return_state=True)

    first, second = bar(1), bar(2)
    assert (first.name, second.name) == ("Completed", "Cached")
    assert second.result() == first.result() == 1


def test_cache_misses_arent_cached() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching (a key function never returning one key twice)."""
    tally: list[str] = []

    def mutating_key(*_: Any) -> str:
        tally.append("x")
        return "call-tally-" + "".join(tally)

    @task(cache_key_fn=mutating_key, persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(1, return_state=True)

    first, second = bar()
    assert (first.name, second.name) == ("Completed", "Completed")
    assert tally == ["x", "x"]  # once per call: resultkit computes the key once


def test_cache_key_fn_receives_context() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    def get_flow_run_id(context: Any, args: Any) -> str:
        return str(context.task_run.flow_run_id)

    @task(cache_key_fn=get_flow_run_id, persist_result=True)
    def foo(x: str) -> str:
        return x

    @flow
    def bar() -> Any:
        return foo("something", return_state=True), foo("different", return_state=True)

    first, second = bar()
    assert (first.name, first.result(), second.name, second.result()) == (
        "Completed", "something", "Cached", "something")
    third, fourth = bar()
    assert (third.name, fourth.name) == ("Completed", "Cached")
    assert third.result() == fourth.result() == "something"


@xfail_differs("Keys that a backend or fsspec would interpret are refused.")
def test_cache_key_fn_arg_inputs_are_stable() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching: Prefect's key holds '[' and '('."""
    def stringed_inputs(context: Any, args: Any) -> str:
        return str(sorted(args.items()))

    @task(cache_key_fn=stringed_inputs, persist_result=True)
    def foo(a: int, b: int, c: int = 3) -> int:
        return a + b + c

    assert foo(1, 2, 3) == 6


def test_cache_key_fn_arg_inputs_are_stable_with_a_safe_key() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching, with a key that names one object."""
    def stringed_inputs(context: Any, args: Any) -> str:
        return "-".join(f"{name}={value}" for name, value in sorted(args.items()))

    @task(cache_key_fn=stringed_inputs, persist_result=True)
    def foo(a: int, b: int, c: int = 3) -> int:
        return a + b + c

    @flow
    def bar() -> Any:
        return (foo(1, 2, 3, return_state=True), foo(1, b=2, return_state=True),
                foo(c=3, a=1, b=2, return_state=True))

    states = bar()
    assert [s.name for s in states] == ["Completed", "Cached", "Cached"]
    assert [s.result() for s in states] == [6, 6, 6]


def test_cache_key_hits_with_future_expiration_are_cached() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_key_fn=lambda *_: "cache-hit-4", cache_expiration=datetime.timedelta(seconds=30),
          persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(2, return_state=True)

    first, second = bar()
    assert (first.name, second.name, second.result()) == ("Completed", "Cached", 1)


@xfail_differs("`cache_expiration` must be a positive `timedelta`")
def test_cache_key_hits_with_past_expiration_are_not_cached() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching (a negative cache_expiration)."""
    @task(cache_key_fn=lambda *_: "cache-hit-5", cache_expiration=datetime.timedelta(seconds=-5),
          persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(2, return_state=True)

    first, second = bar()
    assert (first.name, second.name) == ("Completed", "Completed")


def test_cache_key_hits_with_past_expiration_are_not_cached_when_expired() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching::test_cache_key_hits_with_past_expiration_are_not_cached,
    with an expiry already past when the second call reads the record."""
    from resultkit.results import ResultStore

    store = ResultStore()  # the default storage the task uses
    store.write("cache-hit-5", 1, expiration=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))

    @task(cache_key_fn=lambda *_: "cache-hit-5", persist_result=True)
    def foo(x: int) -> int:
        return x

    state = foo(2, return_state=True)
    assert (state.name, state.result()) == ("Completed", 2)


def test_cache_misses_w_refresh_cache() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_key_fn=lambda *_: "cache-hit-6", refresh_cache=True, persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(2, return_state=True)

    first, second = bar()
    assert (first.name, second.name) == ("Completed", "Completed")
    assert second.result() != first.result()


def test_cache_hits_wo_refresh_cache() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_key_fn=lambda *_: "cache-hit-7", refresh_cache=False, persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(2, return_state=True)

    first, second = bar()
    assert (first.name, second.name) == ("Completed", "Cached")
    assert second.result() == first.result()


def test_tasks_refresh_cache_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching (PREFECT_TASKS_REFRESH_CACHE -> RESULTKIT_REFRESH_CACHE)."""
    @task(cache_key_fn=lambda *_: "cache-hit-8", persist_result=True)
    def foo(x: int) -> int:
        return x

    @task(cache_key_fn=lambda *_: "cache-hit-8", refresh_cache=True, persist_result=True)
    def refresh_task(x: int) -> int:
        return x

    @task(cache_key_fn=lambda *_: "cache-hit-8", refresh_cache=False, persist_result=True)
    def not_refresh_task(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        foo(0)
        return (foo(1, return_state=True), refresh_task(2, return_state=True),
                not_refresh_task(3, return_state=True))

    monkeypatch.setenv("RESULTKIT_REFRESH_CACHE", "true")
    first, second, third = bar()
    assert [s.name for s in (first, second, third)] == ["Completed", "Completed", "Cached"]
    assert second.result() != first.result() and third.result() == second.result()


def test_cache_key_fn_receives_self_if_method() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    cache_args: list[dict[str, Any]] = []

    def stringed_inputs(context: Any, args: dict[str, Any]) -> str:
        cache_args.append(args)
        return f"add-{args['self'].x}-{args['a']}"

    class Foo:
        def __init__(self, x: int) -> None:
            self.x = x

        @task(cache_key_fn=stringed_inputs, persist_result=True)
        def add(self, a: int) -> int:
            return a + self.x

    f1, f2 = Foo(1), Foo(100)

    @flow
    def bar() -> Any:
        return (f1.add(5, return_state=True), f1.add(5, return_state=True),
                f2.add(5, return_state=True), f2.add(5, return_state=True))

    states = bar()
    assert [s.name for s in states] == ["Completed", "Cached", "Completed", "Cached"]
    assert cache_args == [{"self": f1, "a": 5}, {"self": f1, "a": 5}, {"self": f2, "a": 5},
                          {"self": f2, "a": 5}]
    assert [s.result() for s in states] == [6, 6, 105, 105]


def test_instance_methods_can_share_a_cache() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    def stringed_inputs(context: Any, args: dict[str, Any]) -> str:
        rest = dict(args)
        rest.pop("self")
        return f"shared-{rest['a']}"

    class Foo:
        def __init__(self, x: int) -> None:
            self.x = x

        @task(cache_key_fn=stringed_inputs, persist_result=True)
        def add(self, a: int) -> int:
            return a + self.x

    f1, f2 = Foo(1), Foo(100)

    @flow
    def bar() -> Any:
        return (f1.add(5, return_state=True), f1.add(5, return_state=True),
                f2.add(5, return_state=True), f2.add(5, return_state=True))

    states = bar()
    assert [s.name for s in states] == ["Completed", "Cached", "Cached", "Cached"]
    assert [s.result() for s in states] == [6, 6, 6, 6]


def test_cache_key_fn_takes_precedence_over_cache_policy(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching (Prefect logs the warning; resultkit warns)."""
    with pytest.warns(UserWarning, match="cache_key_fn wins"):
        @task(cache_key_fn=lambda *_: "cache-hit-9", cache_policy=INPUTS,
              result_storage=LocalStorage(tmp_path), persist_result=True)
        def foo(x: int) -> int:
            return x

    first, second = foo(1, return_state=True), foo(2, return_state=True)
    assert (first.name, second.name) == ("Completed", "Cached")
    assert second.result() == first.result()


def test_changing_result_storage_key_busts_cache() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_key_fn=lambda *_: "cache-hit-10", result_storage_key="before", persist_result=True)
    def foo(x: int) -> int:
        return x

    first = foo(1, return_state=True)
    second = foo.with_options(result_storage_key="after")(2, return_state=True)
    assert (first.name, second.name) == ("Completed", "Completed")
    assert (first.result(), second.result()) == (1, 2)


def test_false_persist_results_sets_cache_policy_to_none(caplog: pytest.LogCaptureFixture) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(persist_result=False)
    def foo(x: int) -> int:
        return x

    assert foo.cache_policy == NO_CACHE
    assert "Ignoring" not in caplog.text


@xfail_differs("`persist_result=False` with a cache policy raises `ConfigurationError`")
def test_warns_went_false_persist_result_and_cache_policy(caplog: pytest.LogCaptureFixture) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(persist_result=False, cache_policy=INPUTS)
    def foo(x: int) -> int:
        return x

    assert foo.cache_policy == NO_CACHE


def test_no_cache_can_be_configured_as_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching (PREFECT_TASKS_DEFAULT_NO_CACHE -> RESULTKIT_DEFAULT_NO_CACHE)."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_NO_CACHE", "true")

    @task
    def foo(x: int) -> int:
        return x

    monkeypatch.delenv("RESULTKIT_DEFAULT_NO_CACHE")  # read at decoration, as Prefect does
    assert foo.cache_policy == NO_CACHE
    states = [foo.with_options(persist_result=True)(1, return_state=True) for _ in range(2)]
    assert [s.name for s in states] == ["Completed", "Completed"]


def test_no_cache_default_can_be_overrided(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_NO_CACHE", "true")

    @task(cache_policy=DEFAULT)
    def foo(x: int) -> int:
        return x

    @task(cache_key_fn=lambda *_: "bar-key")
    def bar(x: int) -> int:
        return x

    assert foo.cache_policy == DEFAULT
    assert bar.cache_policy != NO_CACHE
    assert [bar(i, return_state=True).name for i in (1, 2)] == ["Completed", "Cached"]


def test_no_cache_default_is_respected_even_with_result_persistence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_NO_CACHE", "true")

    @task(persist_result=True)
    def foo(x: int) -> int:
        return x

    @task(result_storage_key="foo-bar")
    def zig(x: int) -> int:
        return x

    assert foo.cache_policy == NO_CACHE and zig.cache_policy == NO_CACHE
    assert [foo(1, return_state=True).name for _ in range(2)] == ["Completed", "Completed"]


@pytest.mark.parametrize("cache_policy", [NO_CACHE, None], ids=["NO_CACHE", "None"])
def test_does_not_warn_went_false_persist_result_and_none_cache_policy(
        caplog: pytest.LogCaptureFixture, cache_policy: Any) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(persist_result=False, cache_policy=cache_policy)
    def foo(x: int) -> int:
        return x

    assert foo.cache_policy == cache_policy
    assert "Ignoring" not in caplog.text


def test_cache_policy_storage_path(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching: records land in the policy's key_storage."""
    @task(cache_policy=Inputs().configure(key_storage=tmp_path))
    def foo(x: int) -> int:
        return x

    state = foo(1, return_state=True)
    assert (tmp_path / state.cache_key).exists()


def test_cache_policy_storage_str(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_policy=Inputs().configure(key_storage=str(tmp_path)))
    def foo(x: int) -> int:
        return x

    state = foo(1, return_state=True)
    assert (tmp_path / state.cache_key).exists()


@xfail_differs("Keys include the task's identity")
def test_cache_policy_storage_path_key_from_a_bare_context(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching::test_cache_policy_storage_path predicts the
    task's key with ``policy.compute_key(task_ctx=None, ...)``."""
    cache_policy = Inputs().configure(key_storage=tmp_path)
    expected = cache_policy.compute_key(task_ctx=None, inputs={"x": 1}, flow_parameters=None)

    @task(cache_policy=cache_policy)
    def foo(x: int) -> int:
        return x

    foo(1)
    assert (tmp_path / str(expected)).exists()


@xfail_differs("`key_storage` holds the whole record")
def test_cache_policy_storage_storage_block(tmp_path: Path, resultkit_home: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching: the value goes to the result storage."""
    @task(cache_policy=Inputs().configure(key_storage=LocalStorage(tmp_path)))
    def foo(x: int) -> int:
        return x

    state = foo(1, return_state=True)
    assert (tmp_path / state.cache_key).exists()
    assert (resultkit_home / "storage" / state.cache_key).exists()


@pytest.mark.parametrize("isolation_level", [IsolationLevel.SERIALIZABLE, "SERIALIZABLE"])
def test_cache_policy_lock_manager(tmp_path: Path, isolation_level: Any) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching: the body runs holding the key's lock."""
    manager = FileLockManager(tmp_path)
    seen: list[bool] = []

    @task(cache_policy=Inputs().configure(lock_manager=manager, isolation_level=isolation_level))
    def foo(x: int) -> int:
        seen.append(manager.is_locked(state_key[0]))
        return x

    state_key = [foo.explain(1).cache_key]
    assert foo(1) == 1 and seen == [True]
    assert not manager.is_locked(state_key[0])


@xfail_differs("Distinct keys never share a lock file")
def test_cache_policy_lock_manager_lock_file_named_by_key(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching::test_cache_policy_lock_manager: ``<key>.lock``."""
    @task(cache_policy=Inputs().configure(lock_manager=FileLockManager(tmp_path),
                                          isolation_level=IsolationLevel.SERIALIZABLE))
    def foo(x: int) -> int:
        assert (tmp_path / f"{key}.lock").exists()
        return x

    key = foo.explain(1).cache_key
    foo(1)


def test_cache_policy_lock_manager_async() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching: concurrent async calls run the body once."""
    runs: list[int] = []

    @task(cache_policy=(INPUTS + TASK_SOURCE).configure(isolation_level=IsolationLevel.SERIALIZABLE,
                                                        lock_manager=MemoryLockManager()))
    async def my_task(x: int) -> int:
        runs.append(x)
        return x + len(runs)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(my_task(42) for _ in range(3))))

    assert len(set(asyncio.run(main()))) == 1
    assert runs == [42]


@xfail_differs("`FileLockManager` is the default for local storage")
def test_cache_policy_serializable_isolation_level_with_no_manager() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(cache_policy=Inputs().configure(isolation_level=IsolationLevel.SERIALIZABLE))
    def foo(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="not supported"):
        foo(1)


def test_unhashable_input_provides_helpful_error() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching: the error names the argument, type and fixes."""
    @task(persist_result=True)
    def foo(x: int, lock_obj: Any) -> int:
        return x

    with pytest.raises(HashError) as info:
        foo(42, lock_obj=threading.Lock())
    message = str(info.value)
    for expected in ("lock_obj", "_thread.lock", "cache_key_fn", "NO_CACHE"):
        assert expected in message


@xfail_differs("An input that cannot be hashed raises `HashError`")
def test_unhashable_input_provides_helpful_error_and_runs(caplog: pytest.LogCaptureFixture) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching::test_unhashable_input_provides_helpful_error:
    Prefect logs the error and runs the task uncached."""
    @task(persist_result=True)
    def foo(x: int, lock_obj: Any) -> int:
        return x

    assert foo(42, lock_obj=threading.Lock()) == 42
    assert "cannot be cached" in caplog.text


def test_unhashable_input_workarounds() -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    lock = threading.Lock()

    def cache_on_x_only(context: Any, parameters: dict[str, Any]) -> str:
        return str(parameters.get("x"))

    @task(cache_key_fn=cache_on_x_only, persist_result=True)
    def foo_with_key_fn(x: int, lock_obj: Any) -> int:
        return x

    @task(cache_policy=NO_CACHE, persist_result=True)
    def foo_with_none_policy(x: int, lock_obj: Any) -> int:
        return x

    @task(cache_policy=DEFAULT - "lock_obj", persist_result=True)
    def foo_with_subtraction(x: int, lock_obj: Any) -> int:
        return x

    @flow
    def test_flow() -> Any:
        return [t(42, lock_obj=lock, return_state=True)
                for t in (foo_with_key_fn, foo_with_key_fn, foo_with_none_policy,
                          foo_with_none_policy, foo_with_subtraction, foo_with_subtraction)]

    states = test_flow()
    assert [s.name for s in states] == ["Completed", "Cached", "Completed", "Completed",
                                        "Completed", "Cached"]
    assert all(s.result() == 42 for s in states)


def test_disable_caching_setting_disables_caching_regardless_of_cache_policy(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching (PREFECT_TASKS_DISABLE_CACHING -> RESULTKIT_DISABLE_CACHING)."""
    monkeypatch.setenv("RESULTKIT_DISABLE_CACHING", "true")

    @task(cache_policy=TASK_SOURCE)
    def foo(x: int) -> int:
        return x

    assert foo.cache_policy == NO_CACHE
    assert [foo(1, return_state=True).name for _ in range(2)] == ["Completed", "Completed"]
    assert "Ignoring" not in caplog.text


def test_disable_caching_setting_allows_normal_caching_when_false(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    monkeypatch.setenv("RESULTKIT_DISABLE_CACHING", "false")

    @task(cache_policy=TASK_SOURCE)
    def foo(x: int) -> int:
        return x

    assert foo.cache_policy == TASK_SOURCE and foo.persist_result is True


@pytest.mark.parametrize("cache_policy", [NO_CACHE, None], ids=["NO_CACHE", "None"])
def test_does_not_warn_when_false_persist_result_and_none_cache_policy(
        recwarn: pytest.WarningsRecorder, cache_policy: Any) -> None:
    """Prefect tests/test_tasks.py::TestTaskCaching."""
    @task(persist_result=False, cache_policy=cache_policy)
    def foo(x: int) -> int:
        return x

    assert foo.cache_policy == cache_policy
    assert not [w for w in recwarn if "cache" in str(w.message)]


# -- TestCacheFunctionBuiltins ------------------------------------------------------------


def test_task_input_hash_within_flows() -> None:
    """Prefect tests/test_tasks.py::TestCacheFunctionBuiltins."""
    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(2, return_state=True), foo(1, return_state=True)

    states = bar()
    assert [s.name for s in states] == ["Completed", "Completed", "Cached"]
    assert [s.result() for s in states] == [1, 2, 1]


def test_task_input_hash_between_flows() -> None:
    """Prefect tests/test_tasks.py::TestCacheFunctionBuiltins."""
    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar(x: int) -> Any:
        return foo(x, return_state=True)

    states = [bar(1), bar(2), bar(1)]
    assert [s.name for s in states] == ["Completed", "Completed", "Cached"]
    assert [s.result() for s in states] == [1, 2, 1]


class _Value:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.x == other.x  # type: ignore[attr-defined]


def test_task_input_hash_works_with_object_return_types() -> None:
    """Prefect tests/test_tasks.py::TestCacheFunctionBuiltins."""
    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(x: int) -> _Value:
        return _Value(x)

    @flow
    def bar() -> Any:
        return foo(1, return_state=True), foo(2, return_state=True), foo(1, return_state=True)

    first, second, third = bar()
    assert [s.name for s in (first, second, third)] == ["Completed", "Completed", "Cached"]
    assert first.result() != second.result() and first.result() == third.result()


def test_task_input_hash_works_with_object_input_types() -> None:
    """Prefect tests/test_tasks.py::TestCacheFunctionBuiltins."""
    class TestClass:
        def __init__(self, x: int) -> None:
            self.x = x

    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(instance: TestClass) -> int:
        return instance.x

    @flow
    def bar() -> Any:
        return (foo(TestClass(1), return_state=True), foo(TestClass(2), return_state=True),
                foo(TestClass(1), return_state=True))

    states = bar()
    assert [s.name for s in states] == ["Completed", "Completed", "Cached"]
    assert [s.result() for s in states] == [1, 2, 1]


def test_task_input_hash_works_with_block_input_types() -> None:
    """Prefect tests/test_tasks.py::TestCacheFunctionBuiltins (a pydantic model, as Prefect's blocks are)."""
    class TestBlock(pydantic.BaseModel):
        x: int
        y: int
        z: int

    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(instance: TestBlock) -> int:
        return instance.x

    @flow
    def bar() -> Any:
        return (foo(TestBlock(x=1, y=2, z=3), return_state=True),
                foo(TestBlock(x=4, y=2, z=3), return_state=True),
                foo(TestBlock(x=1, y=2, z=3), return_state=True))

    states = bar()
    assert [s.name for s in states] == ["Completed", "Completed", "Cached"]
    assert [s.result() for s in states] == [1, 4, 1]


def test_task_input_hash_depends_on_task_key_and_code() -> None:
    """Prefect tests/test_tasks.py::TestCacheFunctionBuiltins."""
    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(x: int) -> int:
        return x

    def foo_new_code(x: int) -> int:
        return x + 1

    def foo_same_code(x: int) -> int:
        return x

    @task(cache_key_fn=task_input_hash, persist_result=True)
    def bar(x: int) -> int:
        return x

    @flow
    def my_flow() -> Any:
        first = foo(1, return_state=True)
        foo.fn = foo_same_code
        second = foo(1, return_state=True)
        foo.fn = foo_new_code
        third = foo(1, return_state=True)
        return first, second, third, bar(1, return_state=True), bar(1, return_state=True)

    states = my_flow()
    assert [s.name for s in states] == ["Completed", "Cached", "Completed", "Completed", "Cached"]
    assert [s.result() for s in states] == [1, 1, 2, 1, 1]


def test_task_input_hash_works_with_block_input_types_and_bytes() -> None:
    """Prefect tests/test_tasks.py::TestCacheFunctionBuiltins."""
    class TestBlock(pydantic.BaseModel):
        x: int
        y: int
        z: bytes

    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(instance: TestBlock) -> int:
        return instance.x

    @flow
    def bar() -> Any:
        return [foo(block, return_state=True) for block in (
            TestBlock(x=1, y=2, z=b"dog"), TestBlock(x=4, y=2, z=b"dog"),
            TestBlock(x=1, y=2, z=b"dog"), TestBlock(x=1, y=2, z="dog".encode("latin-1")),
            TestBlock(x=1, y=2, z=b"cat"))]

    states = bar()
    assert [s.name for s in states] == ["Completed", "Completed", "Cached", "Cached", "Completed"]


def test_task_input_hash_is_importable_where_prefect_users_import_it() -> None:
    """Prefect src/prefect/tasks.py: ``from prefect.tasks import task_input_hash``."""
    import resultkit

    assert resultkit.task_input_hash is task_input_hash
    with pytest.raises(HashError, match="lock"):
        task_input_hash(None, {"lock": threading.Lock()})


# -- TestCachePolicies (the task attribute) -------------------------------------------------


def test_cache_policy_init_to_none_when_not_persisting_results() -> None:
    """Prefect tests/test_tasks.py::TestCachePolicies."""
    @task(persist_result=False)
    def my_task() -> None:
        pass

    assert my_task.cache_policy is NO_CACHE


def test_cache_policy_init_to_default_when_persisting_results() -> None:
    """Prefect tests/test_tasks.py::TestCachePolicies."""
    @task(persist_result=True)
    def my_task() -> None:
        pass

    assert my_task.cache_policy is DEFAULT


def test_cache_policy_init_to_none_if_result_storage_key() -> None:
    """Prefect tests/test_tasks.py::TestCachePolicies."""
    @task(result_storage_key="foo", persist_result=True)
    def my_task() -> None:
        pass

    assert my_task.cache_policy is None and my_task.result_storage_key == "foo"


def test_cache_policy_inits_as_expected() -> None:
    """Prefect tests/test_tasks.py::TestCachePolicies."""
    @task(cache_policy=TASK_SOURCE, persist_result=True)
    def my_task() -> None:
        pass

    assert my_task.cache_policy is TASK_SOURCE


# -- TestTaskWithOptions ------------------------------------------------------------------


def _first_key(*_: Any) -> str:
    return "first-cache-hit"


def _second_key(*_: Any) -> str:
    return "second-cache-hit"


def test_with_options_allows_override_of_task_settings(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions."""
    block, new_block = LocalStorage(tmp_path / "foo"), LocalStorage(tmp_path / "bar")

    @task(name="Initial task", description="Task before with options", tags=["tag1", "tag2"],
          cache_key_fn=_first_key, cache_expiration=datetime.timedelta(days=1), retries=2,
          retry_delay_seconds=5, persist_result=True, result_serializer="pickle",
          result_storage=block, cache_result_in_memory=False, timeout_seconds=None,
          refresh_cache=False, result_storage_key="foo")
    def initial_task() -> None:
        pass

    copied = initial_task.with_options(
        name="Copied task", description="A copied task", tags=["tag3", "tag4"],
        cache_key_fn=_second_key, cache_expiration=datetime.timedelta(days=2), retries=5,
        retry_delay_seconds=10, persist_result=True, result_serializer="json",
        result_storage=new_block, cache_result_in_memory=True, timeout_seconds=42,
        refresh_cache=True, result_storage_key="bar")
    assert copied.name == "Copied task" and copied.description == "A copied task"
    assert copied.tags == {"tag3", "tag4"}
    assert copied.cache_key_fn is _second_key
    assert copied.cache_expiration == datetime.timedelta(days=2)
    assert (copied.retries, copied.retry_delay_seconds) == (5, 10)
    assert copied.persist_result is True and copied.result_serializer == "json"
    assert copied.result_storage == new_block and copied.cache_result_in_memory is True
    assert copied.timeout_seconds == 42 and copied.refresh_cache is True
    assert copied.result_storage_key == "bar"


@xfail_differs("`persist_result=False` with a cache policy raises `ConfigurationError`")
def test_with_options_allows_override_of_task_settings_keeping_a_key_fn() -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions::test_with_options_allows_override_of_task_settings
    sets persist_result=False beside a cache_key_fn and a result_storage_key."""
    @task(cache_key_fn=_first_key)
    def initial_task() -> None:
        pass

    assert initial_task.with_options(persist_result=False, result_storage_key="bar").persist_result is False


def test_with_options_uses_existing_settings_when_no_override(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions."""
    storage = LocalStorage(tmp_path)

    @task(name="Initial task", description="Task before with options", tags=["tag1", "tag2"],
          cache_key_fn=_first_key, cache_expiration=datetime.timedelta(days=1), retries=2,
          retry_delay_seconds=5, result_serializer="json", result_storage=storage,
          cache_result_in_memory=False, timeout_seconds=42, refresh_cache=True,
          result_storage_key="test")
    def initial_task() -> None:
        pass

    copied = initial_task.with_options()
    assert copied is not initial_task
    assert copied.name == "Initial task" and copied.description == "Task before with options"
    assert copied.tags == {"tag1", "tag2"} and copied.tags is not initial_task.tags
    assert copied.cache_key_fn is _first_key
    assert copied.cache_expiration == datetime.timedelta(days=1)
    assert (copied.retries, copied.retry_delay_seconds) == (2, 5)
    assert copied.persist_result is True and copied.result_serializer == "json"
    assert copied.result_storage == storage and copied.cache_result_in_memory is False
    assert copied.timeout_seconds == 42 and copied.refresh_cache is True
    assert copied.result_storage_key == "test"


def test_with_options_can_unset_result_options_with_none(tmp_path: Path) -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions."""
    @task(result_serializer="json", result_storage=LocalStorage(tmp_path), refresh_cache=True,
          result_storage_key="test")
    def initial_task() -> None:
        pass

    copied = initial_task.with_options(result_serializer=None, result_storage=None,
                                       refresh_cache=None, result_storage_key=None)
    assert copied.result_serializer is None and copied.result_storage is None
    assert copied.refresh_cache is None and copied.result_storage_key is None


def test_tags_are_copied_from_original_task() -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions."""
    @task(name="Initial task", tags=["tag1", "tag2"])
    def initial_task() -> None:
        pass

    with_options_task = initial_task.with_options(name="With options task")
    initial_task.tags.add("tag3")
    assert initial_task.tags == {"tag1", "tag2", "tag3"}
    assert with_options_task.tags == {"tag1", "tag2"}


def test_with_options_signature_aligns_with_task_signature() -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions: every @task option is a with_options one."""
    import dataclasses

    from resultkit._options import TaskOptions

    names = {f.name for f in dataclasses.fields(TaskOptions)} - {"given"}
    assert all(f"``{name}``" in (task.__doc__ or "") for name in names)  # documented on @task

    @task
    def base() -> None:
        pass

    defaults = TaskOptions()
    for name in names:
        assert isinstance(base.with_options(**{name: getattr(defaults, name)}), Task), name


def test_with_options_allows_override_of_0_retries() -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions."""
    @task(retries=3, retry_delay_seconds=10)
    def initial_task() -> None:
        pass

    copied = initial_task.with_options(retries=0, retry_delay_seconds=0)
    assert (copied.retries, copied.retry_delay_seconds) == (0, 0)


def test_with_options_refresh_cache() -> None:
    """Prefect tests/test_tasks.py::TestTaskWithOptions."""
    @task(cache_key_fn=lambda *_: "cache hit", persist_result=True)
    def foo(x: int) -> int:
        return x

    @flow
    def bar() -> Any:
        return (foo(1, return_state=True), foo(2, return_state=True),
                foo.with_options(refresh_cache=True)(3, return_state=True), foo(4, return_state=True))

    states = bar()
    assert [s.name for s in states] == ["Completed", "Cached", "Completed", "Cached"]
    assert [s.result() for s in states] == [1, 1, 3, 3]


def test_logging_level_for_cache_hits(caplog: pytest.LogCaptureFixture) -> None:
    """A hit is one INFO line on the ``resultkit`` logger (Prefect shows hits in its run logs)."""
    @task(cache_key_fn=lambda *_: "logged-hit", persist_result=True)
    def foo(x: int) -> int:
        return x

    foo(1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="resultkit"):
        foo(2)
    hits = [r for r in caplog.records if r.name == "resultkit" and "hit" in r.getMessage()]
    assert len(hits) == 1 and hits[0].levelname == "INFO"
    assert "foo" in hits[0].getMessage() and "logged-hit"[:12] in hits[0].getMessage()


@xfail_differs("`cache_policy=NO_CACHE` on its own persists the result")
def test_setting_no_cache_policy_leaves_persist_result_unset() -> None:
    """Prefect src/prefect/tasks.py: a cache policy implies persistence unless it is NO_CACHE."""
    @task(cache_policy=NO_CACHE)
    def my_task() -> None:
        pass

    assert my_task.persist_result is None
