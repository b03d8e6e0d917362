"""Answers Prefect's tests/results/test_task_results.py, test by test (same names).

Prefect reads a task's persisted result back through its API (``api_state.result()``);
the counterpart here is a fresh reader: a ``ResultReference`` rebuilt from JSON, as
another process or orchestrator would hold it, or a new ``ResultStore`` on the storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from resultkit import flow, task
from resultkit.results import ResultReference, ResultStore
from resultkit.serializers import JSONSerializer, PickleSerializer, Serializer, resolve_serializer
from resultkit.storage import LocalStorage
from resultkit.storage.blocks import load_storage

from ._cite import xfail_differs


def fresh_read(state: Any) -> Any:
    """The value another process gets from the state's reference (read from storage)."""
    return ResultReference.from_json(state.reference.to_json()).get()


def records_in(storage: Any) -> list[str]:
    return list(ResultStore(storage).list())


@pytest.mark.parametrize("options", [{"retries": 3}])
def test_task_persisted_result_due_to_flow_feature(options: dict[str, Any]) -> None:
    """tests/results/test_task_results.py: a persisting task in a flow with retries."""

    @task(persist_result=True)
    def bar() -> int:
        return 1

    @flow(**options)
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() == 1 and fresh_read(task_state) == 1


@pytest.mark.parametrize("options", [{"cache_key_fn": lambda *_: "xyz"}])
def test_task_persisted_result_due_to_task_feature(options: dict[str, Any]) -> None:
    """tests/results/test_task_results.py: a task persisting because of its own option."""

    @task(**options, persist_result=True)
    def bar() -> int:
        return 1

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() == 1 and fresh_read(task_state) == 1
    assert task_state.reference.storage_key == "xyz"


def test_task_persisted_result_due_to_opt_in() -> None:
    """tests/results/test_task_results.py: persist_result=True persists."""

    @task(persist_result=True)
    def bar() -> int:
        return 1

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() == 1 and fresh_read(task_state) == 1


def test_task_result_is_cached_in_memory_by_default() -> None:
    """tests/results/test_task_results.py: the value is kept in memory (no read back) by default."""

    @task(persist_result=True)
    def bar() -> list[int]:
        return [1]

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert bar.options.cache_result_in_memory is True
    value = task_state.result()
    assert value == [1] and task_state.result() is value  # the value itself, not a fresh load


def test_task_with_uncached_but_persisted_result() -> None:
    """tests/results/test_task_results.py: cache_result_in_memory=False still persists the value."""

    @task(persist_result=True, cache_result_in_memory=False)
    def bar() -> int:
        return 1

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() == 1 and fresh_read(task_state) == 1


def test_task_with_uncached_but_persisted_result_not_cached_during_flow() -> None:
    """tests/results/test_task_results.py: inside the flow, the result is available twice."""

    @task(persist_result=True, cache_result_in_memory=False)
    def bar() -> int:
        return 1

    @flow
    def foo() -> Any:
        state = bar(return_state=True)
        assert state.result() == 1
        assert state.result() == 1
        return state

    assert fresh_read(foo()) == 1


@pytest.mark.parametrize(
    "serializer",
    ["json", "pickle", JSONSerializer(), PickleSerializer(), "compressed/pickle", "compressed/json"],
    ids=str,
)
@pytest.mark.parametrize("source", ["child", "parent"])
def test_task_result_serializer(source: str, serializer: Any, tmp_path: Path) -> None:
    """tests/results/test_task_results.py: the task's or its flow's serializer writes the record."""
    storage = LocalStorage(tmp_path)

    @task(result_serializer=serializer if source == "child" else None, result_storage=storage,
          persist_result=True)
    def bar() -> int:
        return 1

    @flow(result_serializer=serializer if source == "parent" else None, result_storage=storage)
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() == 1 and fresh_read(task_state) == 1
    written = ResultStore(storage).metadata(task_state.reference.storage_key).serializer
    assert Serializer.from_config(written) == resolve_serializer(serializer)


@pytest.mark.parametrize("source", ["child", "parent"])
def test_task_result_storage(source: str, tmp_path: Path) -> None:
    """tests/results/test_task_results.py: the task's or its flow's storage (a saved block) holds the record."""
    slug = LocalStorage(tmp_path / "test-storage").save("compat-task-result-storage")
    storage = load_storage(slug)

    @task(result_storage=storage if source == "child" else None, persist_result=True)
    def bar() -> int:
        return 1

    @flow(result_storage=storage if source == "parent" else None)
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() == 1 and fresh_read(task_state) == 1
    assert records_in(tmp_path / "test-storage") == [task_state.reference.storage_key]


def test_task_result_static_storage_key(tmp_path: Path) -> None:
    """tests/results/test_task_results.py: result_storage_key names the record."""

    @task(result_storage=tmp_path / "test-storage", persist_result=True, result_storage_key="test")
    def bar() -> int:
        return 1

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() == 1
    assert task_state.reference.storage_key == "test" and fresh_read(task_state) == 1


def test_task_failure_is_persisted_randomly(tmp_path: Path) -> None:
    """tests/results/test_task_results.py: a failure never takes the storage key (nothing is written)."""

    @task(result_storage=tmp_path / "test-storage", persist_result=True, result_storage_key="not-a-uuid")
    def bar() -> int:
        raise ValueError("oops I messed up")

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.is_failed()
    with pytest.raises(ValueError, match="oops I messed up"):
        task_state.result()
    assert records_in(tmp_path / "test-storage") == []


def test_task_result_parameter_formatted_storage_key(tmp_path: Path) -> None:
    """tests/results/test_task_results.py: {parameters[x]} templates, defaults applied."""

    @task(result_storage=tmp_path / "test-storage", persist_result=True,
          result_storage_key="{parameters[x]}-{parameters[y]}-bar")
    def bar(x: int = 1, y: str = "test") -> int:
        return 1

    @flow
    def foo() -> Any:
        return bar(y="foo", return_state=True)

    task_state = foo()
    assert task_state.result() == 1
    assert task_state.reference.storage_key == "1-foo-bar" and fresh_read(task_state) == 1


def test_task_result_with_null_return() -> None:
    """tests/results/test_task_results.py: None is persisted and read back as None."""

    @task(persist_result=True)
    def bar() -> None:
        return None

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() is None and fresh_read(task_state) is None


@pytest.mark.parametrize("value", [True, False, None])
def test_task_literal_result_is_handled_the_same(value: bool | None) -> None:
    """tests/results/test_task_results.py: True, False and None come back as themselves."""

    @task(persist_result=True, result_serializer="pickle")
    def bar() -> bool | None:
        return value

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    task_state = foo()
    assert task_state.result() is value and fresh_read(task_state) is value


@xfail_differs("A task's exception is not persisted")
def test_task_exception_is_persisted(tmp_path: Path) -> None:
    """tests/results/test_task_results.py: the raised exception is stored as the task's result."""

    @task(persist_result=True, result_storage=tmp_path)
    def bar() -> int:
        raise ValueError("Hello world")

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    assert foo().is_failed()
    assert records_in(tmp_path), "the exception was not persisted"


@xfail_differs("No separate metadata storage")
def test_result_store_correctly_receives_metadata_storage(tmp_path: Path) -> None:
    """tests/results/test_task_results.py: key_storage holds the metadata, result storage the payload."""
    from resultkit.cache_policies import Inputs

    @task(persist_result=True, result_storage=tmp_path / "results",
          cache_policy=Inputs().configure(key_storage=tmp_path / "metadata"))
    def bar() -> int:
        return 1

    bar()
    assert records_in(tmp_path / "metadata") and records_in(tmp_path / "results")


@pytest.mark.parametrize("empty_type", [dict, list])
@pytest.mark.parametrize("persist_result", [True, False])
def test_task_empty_result_is_retained(persist_result: bool, empty_type: type) -> None:
    """tests/results/test_task_results.py: an empty dict or list comes back as it was."""

    @task(persist_result=persist_result)
    def my_task() -> Any:
        return empty_type()

    @flow
    def my_flow() -> Any:
        return my_task()

    assert my_flow() == empty_type() and type(my_flow()) is empty_type


@pytest.mark.parametrize(
    "resultlike", [{"type": "foo"}, {"type": "literal", "user-stuff": "bar"}, {"type": "persisted"}]
)
@pytest.mark.parametrize("persist_result", [True, False])
def test_task_resultlike_result_is_retained(persist_result: bool, resultlike: dict[str, Any]) -> None:
    """tests/results/test_task_results.py: user dicts that look like result metadata are plain values."""

    @task(persist_result=persist_result)
    def my_task() -> Any:
        return resultlike

    @flow
    def my_flow() -> Any:
        return my_task(return_state=True)

    state = my_flow()
    assert state.result() == resultlike
    if persist_result:
        assert fresh_read(state) == resultlike
