"""Answers Prefect's tests/results/test_flow_results.py: a flow's own return value, persisted
or not, with its serializer and storage from the flow, its parent or the environment.

Prefect's tests also read each state back from its server (``api_state``); there is no
server here, so the record a persisted flow wrote is read back through ``state.reference``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from resultkit import ConfigurationError, flow, task
from resultkit.results import ResultStore
from resultkit.serializers import JSONSerializer, PickleSerializer
from resultkit.storage import LocalStorage

from ._cite import xfail_differs


def _serializer_type(state: Any) -> str:
    config = state.reference.read().metadata.serializer
    inner = config.get("serializer")
    return str(config["type"]) + (f"/{inner['type']}" if isinstance(inner, dict) else "")


def test_flow_with_unpersisted_result() -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow(persist_result=False)
    def foo() -> int:
        return 1

    state = foo(return_state=True)
    assert state.result() == 1 and state.reference is None


def test_flow_with_uncached_and_unpersisted_null_result() -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow(persist_result=False, cache_result_in_memory=False)
    def foo() -> None:
        return None

    state = foo(return_state=True)
    assert state.result() is None and state.reference is None


def test_flow_with_uncached_but_persisted_result(tmp_path: Path) -> None:
    """Prefect tests/results/test_flow_results.py: the value is read back from its record."""
    @flow(persist_result=True, cache_result_in_memory=False, result_storage=tmp_path)
    def foo() -> int:
        return 1

    state = foo(return_state=True)
    record_file = tmp_path / state.reference.storage_key
    assert record_file.exists()
    assert state.result() == 1


def test_flow_result_missing_with_null_return() -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow(persist_result=False)
    def foo() -> None:
        return None

    assert foo(return_state=True).result() is None


@pytest.mark.parametrize("value", [True, False, None])
def test_flow_literal_result_is_available_but_not_serialized_or_persisted(value: Any) -> None:
    """Prefect tests/results/test_flow_results.py: literals live in the header, no payload."""
    @flow(persist_result=True, result_serializer="pickle")
    def foo() -> Any:
        return value

    state = foo(return_state=True)
    assert state.result() is value
    record = state.reference.read()
    assert record.metadata.is_literal and record.metadata.payload_size == 0 and record.result is value


@xfail_differs("A flow's exception is not persisted either")
def test_flow_exception_is_persisted() -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow(persist_result=True)
    def foo() -> None:
        raise ValueError("Hello world")

    state = foo(return_state=True)
    with pytest.raises(ValueError, match="Hello world"):
        state.result()
    assert state.reference is not None


@pytest.mark.parametrize(("serializer", "expected"), [
    ("json", "json"), ("pickle", "pickle"), (JSONSerializer(), "json"), (PickleSerializer(), "pickle"),
    ("compressed/pickle", "compressed/pickle"), ("compressed/json", "compressed/json"),
], ids=["json", "pickle", "JSONSerializer", "PickleSerializer", "compressed-pickle", "compressed-json"])
def test_flow_result_serializer(serializer: Any, expected: str) -> None:
    """Prefect tests/results/test_flow_results.py (custom serializers: test_serializers.py)."""
    @flow(result_serializer=serializer, persist_result=True)
    def foo() -> int:
        return 1

    state = foo(return_state=True)
    assert state.result() == 1 and state.reference.get() == 1
    assert _serializer_type(state) == expected


def test_flow_result_storage_by_instance(tmp_path: Path) -> None:
    """Prefect tests/results/test_flow_results.py (an unsaved instance works here)."""
    storage = LocalStorage(tmp_path / "test-storage")

    @flow(result_storage=storage, persist_result=True)
    def foo() -> int:
        return 1

    state = foo(return_state=True)
    assert state.result() == 1
    assert (tmp_path / "test-storage" / state.reference.storage_key).exists()


def test_flow_result_storage_by_slug(tmp_path: Path) -> None:
    """Prefect tests/results/test_flow_results.py."""
    slug = LocalStorage(tmp_path / "test-storage").save("flow-results")

    @flow(result_storage=slug, persist_result=True)
    def foo() -> int:
        return 1

    state = foo(return_state=True)
    assert state.result() == 1
    assert (tmp_path / "test-storage" / state.reference.storage_key).exists()


def test_child_flow_persisted_result_due_to_opt_in() -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow
    def foo() -> Any:
        return bar(return_state=True)

    @flow(persist_result=True)
    def bar() -> int:
        return 1

    child_state = foo(return_state=True).result()
    assert child_state.result() == 1 and child_state.reference.get() == 1


@pytest.mark.parametrize("source", ["child", "parent"])
def test_child_flow_result_serializer(source: str) -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow(result_serializer="json" if source == "parent" else None)
    def foo() -> Any:
        return bar(return_state=True)

    @flow(result_serializer="json" if source == "child" else None, persist_result=True)
    def bar() -> int:
        return 1

    child_state = foo(return_state=True).result()
    assert child_state.result() == 1 and _serializer_type(child_state) == "json"


@pytest.mark.parametrize("source", ["child", "parent"])
def test_child_flow_result_storage(tmp_path: Path, source: str) -> None:
    """Prefect tests/results/test_flow_results.py."""
    storage = LocalStorage(tmp_path / "test-storage")

    @flow(result_storage=storage if source == "parent" else None)
    def foo() -> Any:
        return bar(return_state=True)

    @flow(result_storage=storage if source == "child" else None, persist_result=True)
    def bar() -> int:
        return 1

    child_state = foo(return_state=True).result()
    assert child_state.result() == 1
    assert (tmp_path / "test-storage" / child_state.reference.storage_key).exists()


def test_child_flow_result_missing_with_null_return() -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow
    def foo() -> Any:
        return bar(return_state=True)

    @flow(persist_result=False)
    def bar() -> None:
        return None

    child_state = foo(return_state=True).result()
    assert child_state.result() is None and child_state.reference is None


@pytest.mark.parametrize("empty_type", [dict, list])
@pytest.mark.parametrize("persist_result", [True, False])
def test_flow_empty_result_is_retained(persist_result: bool, empty_type: type) -> None:
    """Prefect tests/results/test_flow_results.py."""
    @flow(persist_result=persist_result)
    def my_flow() -> Any:
        return empty_type()

    assert my_flow() == empty_type()
    assert my_flow(return_state=True).result() == empty_type()


@pytest.mark.parametrize("resultlike", [
    {"type": "foo"}, {"type": "literal", "user-stuff": "bar"}, {"type": "persisted"},
    {"type": "persisted", "value": "test"}, {"type": "unpersisted"},
])
@pytest.mark.parametrize("persist_result", [True, False])
def test_flow_resultlike_result_is_retained(persist_result: bool, resultlike: dict[str, Any]) -> None:
    """Prefect tests/results/test_flow_results.py: dicts that look like result records."""
    @flow(persist_result=persist_result, result_serializer="json")
    def my_flow() -> dict[str, Any]:
        return resultlike

    state = my_flow(return_state=True)
    assert state.result() == resultlike
    if persist_result:
        assert state.reference.get() == resultlike


def test_root_flow_default_remote_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/results/test_flow_results.py (PREFECT_DEFAULT_RESULT_STORAGE_BLOCK ->
    RESULTKIT_DEFAULT_STORAGE, here a saved slug)."""
    slug = LocalStorage(tmp_path).save("my-result-storage")
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", slug)

    @flow(persist_result=True)
    def foo() -> int:
        return 1

    state = foo(return_state=True)
    assert (tmp_path / state.reference.storage_key).exists()


@xfail_differs("`RESULTKIT_DEFAULT_STORAGE` does not turn persistence on")
def test_local_default_result_storage_enables_flow_result_persistence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/results/test_flow_results.py."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(tmp_path))

    @flow(cache_result_in_memory=False)
    def foo() -> dict[str, str]:
        return {"foo": "bar"}

    assert foo(return_state=True).reference is not None


def test_root_flow_default_remote_storage_saves_correct_result(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/results/test_flow_results.py."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", LocalStorage(tmp_path).save("my-result-storage"))

    @task(result_storage_key="my-result.pkl", persist_result=True)
    def bar() -> dict[str, str]:
        return {"foo": "bar"}

    @flow
    def foo() -> dict[str, str]:
        return bar()

    assert foo() == {"foo": "bar"}
    assert ResultStore(LocalStorage(tmp_path)).read("my-result.pkl").result == {"foo": "bar"}


def test_root_flow_nonexistent_default_storage_block_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/results/test_flow_results.py (a slug of a known block type, no such block;
    an unknown type such as ``fake-type/name`` is a relative path here)."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", "local/my-missing-result-storage")

    @flow(persist_result=True)
    def foo() -> int:
        return 1

    with pytest.raises(ConfigurationError, match="my-missing-result-storage"):
        foo()


def test_root_flow_explicit_result_storage_settings_overrides_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect tests/results/test_flow_results.py."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(tmp_path / "default"))

    @flow(result_storage=tmp_path / "explicit", persist_result=True)
    def foo() -> int:
        return 1

    state = foo(return_state=True)
    assert (tmp_path / "explicit" / state.reference.storage_key).exists()
    assert not (tmp_path / "default").exists()


def test_flow_version_result_storage_key(tmp_path: Path) -> None:
    """Prefect tests/results/test_flow_results.py (``prefect.runtime.flow_run.flow_version``
    is ``flow_run.flow_version`` in resultkit's templates)."""
    @task(result_storage_key="{flow_run.flow_version}", result_storage=tmp_path)
    def some_task() -> str:
        return "hello"

    @flow(version="somespecialflowversion")
    def some_flow() -> None:
        some_task()

    some_flow()
    assert ResultStore(LocalStorage(tmp_path)).read("somespecialflowversion").result == "hello"


def test_subflow_in_task_uses_own_result_serializer() -> None:
    """Prefect tests/results/test_flow_results.py: a flow inside a task uses its own serializer."""
    @flow(result_serializer="json", persist_result=True)
    def child_flow() -> dict[str, str]:
        return {"message": "child result"}

    @flow(result_serializer="pickle")
    def parent_flow() -> Any:
        return task(lambda: child_flow(return_state=True))()

    child_state = parent_flow()
    assert child_state.result() == {"message": "child result"}
    assert _serializer_type(child_state) == "json"
