"""Answers Prefect's tests/results/test_result_store.py, test by test (same names).

Prefect's flow and task tests look at ``get_run_context().result_store`` and
``should_persist_result()``. resultkit resolves storage, serializer and persistence
per call, so the counterpart is what a task actually does: whether it wrote a record
(``state.reference``), with which serializer (the record's header) and where.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from resultkit import flow, task
from resultkit.errors import RecordNotFound
from resultkit.results import ResultRecord, ResultStore
from resultkit.serializers import JSONSerializer, PickleSerializer, Serializer
from resultkit.storage import LocalStorage
from resultkit.storage.blocks import load_storage

from ._cite import xfail_differs


@task
def probe() -> int:
    """A task with no result options: it persists only where its context says so."""
    return 1


persisting_probe = probe.with_options(persist_result=True)


def default_storage() -> Path:
    return Path(os.environ["RESULTKIT_HOME"]) / "storage"


def serializer_of(state: Any) -> Serializer:
    """The serializer named in the header of the record the state refers to."""
    reference = state.reference
    return Serializer.from_config(ResultStore(reference.storage).metadata(reference.storage_key).serializer)


def storage_path_of(state: Any) -> Path:
    storage = state.reference.storage
    assert isinstance(storage, LocalStorage)
    return Path(storage.basepath)


def persisted(state: Any) -> bool:
    return state.reference is not None


@pytest.fixture
def saved_storage(tmp_path: Path) -> tuple[str, Path]:
    """A LocalStorage saved as a block: (its slug, its folder)."""
    folder = tmp_path / "test"
    return LocalStorage(folder).save("compat-result-store"), folder


# ------------------------------------------------------------------ the store itself


def test_create_result_record() -> None:
    """tests/results/test_result_store.py: a record made for a value, naming the store's serializer."""
    store = ResultStore()
    record = store.create_result_record({"foo": "bar"})
    assert isinstance(record, ResultRecord) and record.result == {"foo": "bar"}
    assert record.metadata.serializer["type"] == store.serializer.type


@xfail_differs("`record.metadata.serializer` is the serializer's config dict")
def test_create_result_record_serializer_is_a_serializer() -> None:
    """tests/results/test_result_store.py test_create_result_record: metadata.serializer.type."""
    store = ResultStore()
    assert store.create_result_record({"foo": "bar"}).metadata.serializer.type == store.serializer.type  # type: ignore[attr-defined]


@xfail_differs("No separate metadata storage")
def test_result_store_read_and_write_with_metadata_storage(tmp_path: Path) -> None:
    """tests/results/test_result_store.py: metadata in one storage, results in another."""
    store = ResultStore(metadata_storage=LocalStorage(tmp_path / "metadata"),  # type: ignore[arg-type]
                        result_storage=LocalStorage(tmp_path / "results"))
    asyncio.run(store.awrite(key="test", obj="test"))
    assert (tmp_path / "metadata" / "test").exists()


@xfail_differs("No separate metadata storage")
def test_result_store_exists_with_metadata_storage(tmp_path: Path) -> None:
    """tests/results/test_result_store.py: exists() looks at the metadata storage."""
    store = ResultStore(metadata_storage=LocalStorage(tmp_path / "metadata"),  # type: ignore[arg-type]
                        result_storage=LocalStorage(tmp_path / "results"))
    store.write(key="test", obj="test")
    assert store.exists(key="test")


def test_default_result_store_exists_resolves_default_storage() -> None:
    """tests/results/test_result_store.py: two default stores share the default storage."""
    ResultStore().write(obj="test", key="test")
    reader = ResultStore()
    assert reader.exists(key="test") and asyncio.run(reader.aexists(key="test"))
    assert (default_storage() / "test").is_file()


def test_result_store_exists_with_no_metadata_storage(tmp_path: Path) -> None:
    """tests/results/test_result_store.py: exists and aexists follow the record file."""
    store = ResultStore(result_storage=LocalStorage(tmp_path / "results"))
    asyncio.run(store.awrite(key="test", obj="test"))
    assert asyncio.run(store.aexists(key="test")) and store.exists(key="test")
    (tmp_path / "results" / "test").unlink()
    assert not asyncio.run(store.aexists(key="test")) and not store.exists(key="test")


class TestInMemoryCacheExpiration:
    """tests/results/test_result_store.py: reads agree with storage and honour expiry."""

    def test_read_returns_cached_result_before_expiration(self, tmp_path: Path) -> None:
        store = ResultStore(result_storage=LocalStorage(tmp_path), cache_result_in_memory=True)
        expiration = datetime.now(timezone.utc) + timedelta(seconds=60)
        store.persist_result_record(store.create_result_record("cached_value", key="k", expiration=expiration))
        assert store.read(key="k").result == "cached_value"
        assert store.read(key="k").result == "cached_value"

    def test_read_evicts_expired_result_from_cache(self, tmp_path: Path) -> None:
        store = ResultStore(result_storage=LocalStorage(tmp_path), cache_result_in_memory=True)
        past = datetime.now(timezone.utc) - timedelta(seconds=1)
        store.persist_result_record(store.create_result_record("old_value", key="k", expiration=past))
        with pytest.raises(RecordNotFound, match="expired"):
            store.read(key="k")
        store.persist_result_record(store.create_result_record("new_value", key="k"))
        assert store.read(key="k").result == "new_value"

    def test_aread_evicts_expired_result_from_cache(self, tmp_path: Path) -> None:
        store = ResultStore(result_storage=LocalStorage(tmp_path), cache_result_in_memory=True)

        async def scenario() -> Any:
            future = datetime.now(timezone.utc) + timedelta(seconds=60)
            await store.apersist_result_record(store.create_result_record("old_value", key="k", expiration=future))
            assert (await store.aread(key="k")).result == "old_value"
            # Re-execution overwrites the record: the next read sees the new value, never a stale copy.
            await store.apersist_result_record(store.create_result_record("new_value", key="k"))
            return (await store.aread(key="k")).result

        assert asyncio.run(scenario()) == "new_value"

    def test_read_returns_result_with_no_expiration(self, tmp_path: Path) -> None:
        store = ResultStore(result_storage=LocalStorage(tmp_path), cache_result_in_memory=True)
        store.persist_result_record(store.create_result_record("permanent_value", key="k"))
        first = store.read(key="k")
        assert first.result == "permanent_value" and first.metadata.expiration is None
        assert store.read(key="k").result == "permanent_value"


# ------------------------------------------------------------------ root flows


def test_root_flow_default_result_store() -> None:
    """tests/results/test_result_store.py: no persistence by default; pickle into the default storage."""

    @flow
    def foo() -> Any:
        return probe(return_state=True), persisting_probe(return_state=True)

    plain, persisting = foo()
    assert not persisted(plain) and probe.options.cache_result_in_memory is True
    assert serializer_of(persisting) == PickleSerializer()
    assert storage_path_of(persisting) == default_storage()


def test_root_flow_default_result_serializer_can_be_overriden_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/results/test_result_store.py: RESULTKIT_DEFAULT_SERIALIZER sets the default."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_SERIALIZER", "json")

    @flow(persist_result=False)
    def foo() -> Any:
        return persisting_probe(return_state=True)

    assert serializer_of(foo()) == JSONSerializer()


def test_root_flow_default_persist_result_can_be_overriden_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/results/test_result_store.py: RESULTKIT_PERSIST_BY_DEFAULT turns persistence on."""
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")

    @flow
    def foo() -> Any:
        return probe(return_state=True)

    assert persisted(foo())


def test_root_flow_can_opt_out_when_persist_result_default_is_overriden_by_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tests/results/test_result_store.py: @flow(persist_result=False) beats the environment."""
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")

    @flow(persist_result=False)
    def foo() -> Any:
        return probe(return_state=True)

    assert not persisted(foo())


@pytest.mark.parametrize("toggle", [True, False])
def test_root_flow_custom_persist_setting(toggle: bool) -> None:
    """tests/results/test_result_store.py: the flow's persist_result reaches its tasks."""

    @flow(persist_result=toggle)
    def foo() -> Any:
        return probe(return_state=True)

    state = foo()
    assert persisted(state) is toggle
    if toggle:
        assert serializer_of(state) == PickleSerializer() and storage_path_of(state) == default_storage()


def test_root_flow_custom_serializer_by_type_string() -> None:
    """tests/results/test_result_store.py: @flow(result_serializer="json") reaches its tasks."""

    @flow(result_serializer="json", persist_result=False)
    def foo() -> Any:
        return probe(return_state=True), persisting_probe(return_state=True)

    plain, persisting = foo()
    assert not persisted(plain)
    assert serializer_of(persisting) == JSONSerializer() and storage_path_of(persisting) == default_storage()


def test_root_flow_custom_serializer_by_instance() -> None:
    """tests/results/test_result_store.py: a serializer instance, orjson included, reaches its tasks."""

    @flow(persist_result=False, result_serializer=JSONSerializer(jsonlib="orjson"))
    def foo() -> Any:
        return persisting_probe(return_state=True)

    assert serializer_of(foo()) == JSONSerializer(jsonlib="orjson")


def test_root_flow_custom_storage_by_slug(saved_storage: tuple[str, Path]) -> None:
    """tests/results/test_result_store.py: a saved block's slug is the flow's storage."""
    slug, folder = saved_storage

    @flow(result_storage=slug)
    def foo() -> Any:
        return persisting_probe(return_state=True)

    state = foo()
    assert storage_path_of(state) == folder and serializer_of(state) == PickleSerializer()


def test_root_flow_custom_storage_by_instance_presaved(saved_storage: tuple[str, Path]) -> None:
    """tests/results/test_result_store.py: a saved block's instance is the flow's storage."""
    slug, folder = saved_storage
    storage = load_storage(slug)

    @flow(result_storage=storage)
    def foo() -> Any:
        return persisting_probe(return_state=True)

    state = foo()
    assert state.reference.storage == storage and storage_path_of(state) == folder


# ------------------------------------------------------------------ child flows


def test_child_flow_inherits_default_result_settings() -> None:
    """tests/results/test_result_store.py: a child flow has the defaults too."""

    @flow
    def bar() -> Any:
        return probe(return_state=True), persisting_probe(return_state=True)

    @flow
    def foo() -> Any:
        return bar()

    plain, persisting = foo()
    assert not persisted(plain)
    assert serializer_of(persisting) == PickleSerializer() and storage_path_of(persisting) == default_storage()


def test_child_flow_default_result_serializer_can_be_overriden_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/results/test_result_store.py: the environment's serializer reaches a child flow."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_SERIALIZER", "json")

    @flow
    def bar() -> Any:
        return persisting_probe(return_state=True)

    @flow
    def foo() -> Any:
        return bar()

    assert serializer_of(foo()) == JSONSerializer()


def test_child_flow_default_persist_result_can_be_overriden_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/results/test_result_store.py: RESULTKIT_PERSIST_BY_DEFAULT reaches a child flow."""
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")

    @flow
    def bar() -> Any:
        return probe(return_state=True)

    @flow
    def foo() -> Any:
        return bar()

    assert persisted(foo())


def test_child_flow_can_opt_out_when_persist_result_default_is_overriden_by_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tests/results/test_result_store.py: a child flow's persist_result=False beats the environment."""
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")

    @flow(persist_result=False)
    def bar() -> Any:
        return probe(return_state=True)

    @flow
    def foo() -> Any:
        return bar()

    assert not persisted(foo())


def test_child_flow_custom_persist_setting() -> None:
    """tests/results/test_result_store.py: only the child flow that asks for it persists."""

    @flow(persist_result=True)
    def bar() -> Any:
        return probe(return_state=True)

    @flow
    def foo() -> Any:
        return probe(return_state=True), bar()

    parent, child = foo()
    assert not persisted(parent) and persisted(child)
    assert serializer_of(child) == PickleSerializer() and storage_path_of(child) == default_storage()


def test_child_flow_can_opt_out_of_result_persistence_when_parent_uses_feature() -> None:
    """tests/results/test_result_store.py: a parent with retries does not make a child persist."""

    @flow(persist_result=False)
    def bar() -> Any:
        return probe(return_state=True)

    @flow(retries=3)
    def foo() -> Any:
        return probe(return_state=True), bar()

    parent, child = foo()
    assert not persisted(parent) and not persisted(child)


def test_child_flow_inherits_custom_serializer() -> None:
    """tests/results/test_result_store.py: a child flow inherits its parent's serializer."""

    @flow
    def bar() -> Any:
        return persisting_probe(return_state=True)

    @flow(persist_result=False, result_serializer="json")
    def foo() -> Any:
        return bar()

    state = foo()
    assert serializer_of(state) == JSONSerializer() and storage_path_of(state) == default_storage()


def test_child_flow_inherits_custom_storage(saved_storage: tuple[str, Path]) -> None:
    """tests/results/test_result_store.py: a child flow inherits its parent's storage."""
    slug, folder = saved_storage

    @flow
    def bar() -> Any:
        return persisting_probe(return_state=True)

    @flow(result_storage=slug)
    def foo() -> Any:
        return bar()

    assert storage_path_of(foo()) == folder


def test_child_flow_custom_storage(saved_storage: tuple[str, Path]) -> None:
    """tests/results/test_result_store.py: a child flow's own storage, the parent's default."""
    slug, folder = saved_storage

    @flow(result_storage=slug)
    def bar() -> Any:
        return persisting_probe(return_state=True)

    @flow
    def foo() -> Any:
        return persisting_probe(return_state=True), bar()

    parent, child = foo()
    assert storage_path_of(parent) == default_storage() and storage_path_of(child) == folder
    assert serializer_of(child) == PickleSerializer()


def test_nested_flow_custom_persist_setting() -> None:
    """tests/results/test_result_store.py: an outer flow persists, its inner flow opts out."""

    @flow(persist_result=False)
    def bar() -> Any:
        return probe(return_state=True)

    @flow(persist_result=True)
    def foo() -> Any:
        return probe(return_state=True), bar()

    outer, inner = foo()
    assert persisted(outer) and not persisted(inner)


def test_nested_flow_custom_storage(saved_storage: tuple[str, Path]) -> None:
    """tests/results/test_result_store.py: an inner flow's storage for its tasks, the outer's default."""
    slug, folder = saved_storage

    @flow(result_storage=slug, persist_result=True)
    def bar() -> Any:
        return probe(return_state=True)

    @flow(persist_result=True)
    def foo() -> Any:
        return probe(return_state=True), bar()

    outer, inner = foo()
    assert storage_path_of(outer) == default_storage() and storage_path_of(inner) == folder
    assert serializer_of(inner) == PickleSerializer()


# ------------------------------------------------------------------ tasks


def test_task_inherits_default_result_settings() -> None:
    """tests/results/test_result_store.py: a task in a flow has the defaults."""

    @flow
    def foo() -> Any:
        return probe(return_state=True), persisting_probe(return_state=True)

    plain, persisting = foo()
    assert not persisted(plain)
    assert serializer_of(persisting) == PickleSerializer() and storage_path_of(persisting) == default_storage()


def test_task_default_result_serializer_can_be_overriden_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/results/test_result_store.py: the environment's serializer reaches a task outside a flow."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_SERIALIZER", "json")
    assert serializer_of(persisting_probe(return_state=True)) == JSONSerializer()


def test_task_default_persist_result_can_be_overriden_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/results/test_result_store.py: RESULTKIT_PERSIST_BY_DEFAULT makes tasks persist."""
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")

    @flow
    def foo() -> Any:
        return probe(return_state=True)

    assert persisted(foo()) and persisted(probe(return_state=True))


def test_task_can_opt_out_of_result_persistence_with_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/results/test_result_store.py: @task(persist_result=False) beats the environment, sync and async."""
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")

    @task(persist_result=False)
    def bar() -> int:
        return 1

    @task(persist_result=False)
    async def abar() -> int:
        return 1

    assert not persisted(bar(return_state=True))
    assert not persisted(asyncio.run(abar(return_state=True)))


@pytest.mark.parametrize("toggle", [True, False])
def test_task_custom_cache_setting(toggle: bool) -> None:
    """tests/results/test_result_store.py: cache_result_in_memory is the task's own; it persists either way."""
    bar = persisting_probe.with_options(cache_result_in_memory=toggle)

    @flow
    def foo() -> Any:
        return bar(return_state=True)

    state = foo()
    assert bar.options.cache_result_in_memory is toggle and probe.options.cache_result_in_memory is True
    assert serializer_of(state) == PickleSerializer() and storage_path_of(state) == default_storage()


def test_task_can_opt_out_of_result_persistence_when_flow_uses_feature() -> None:
    """tests/results/test_result_store.py: a flow's retries do not make its tasks persist."""

    @flow(retries=3)
    def foo() -> Any:
        return probe(return_state=True), probe.with_options(persist_result=False)(return_state=True)

    assert [persisted(state) for state in foo()] == [False, False]


def test_task_can_opt_out_when_persist_result_default_is_overriden_by_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tests/results/test_result_store.py: @task(persist_result=False) beats the environment in a flow."""
    monkeypatch.setenv("RESULTKIT_PERSIST_BY_DEFAULT", "true")

    @flow
    def foo() -> Any:
        return probe.with_options(persist_result=False)(return_state=True)

    assert not persisted(foo())


def test_task_inherits_custom_serializer() -> None:
    """tests/results/test_result_store.py: a task inherits its flow's serializer."""

    @flow(result_serializer="json", persist_result=False)
    def foo() -> Any:
        return persisting_probe(return_state=True)

    assert serializer_of(foo()) == JSONSerializer()


def test_task_inherits_custom_storage(saved_storage: tuple[str, Path]) -> None:
    """tests/results/test_result_store.py: a task inherits its flow's storage."""
    slug, folder = saved_storage

    @flow(result_storage=slug, persist_result=True)
    def foo() -> Any:
        return persisting_probe(return_state=True)

    state = foo()
    assert storage_path_of(state) == folder and serializer_of(state) == PickleSerializer()


def test_task_custom_serializer() -> None:
    """tests/results/test_result_store.py: a task's own serializer, the flow's default."""

    @task(result_serializer="json")
    def own_serializer() -> int:
        return 1

    @flow
    def foo() -> Any:
        return persisting_probe(return_state=True), own_serializer(return_state=True)

    default, own = foo()
    assert serializer_of(default) == PickleSerializer() and serializer_of(own) == JSONSerializer()


# ------------------------------------------------------------------ default storage creation


def test_default_storage_creation_for_flow_with_persistence_features() -> None:
    """tests/results/test_result_store.py: a persisting flow's tasks write to the default storage."""

    @flow(persist_result=True)
    def foo() -> Any:
        return probe(return_state=True)

    assert storage_path_of(foo()) == default_storage()


def test_default_storage_creation_for_flow_without_persistence_features() -> None:
    """tests/results/test_result_store.py: nothing persisting, nothing touched."""

    @flow(persist_result=False)
    def foo() -> Any:
        return probe(return_state=True)

    assert not persisted(foo()) and not default_storage().exists()


def test_default_storage_creation_for_task_with_persistence_features() -> None:
    """tests/results/test_result_store.py: persist_result=True, or a cache key function, uses the default storage."""

    @flow(retries=2, persist_result=True)
    def my_flow_1() -> Any:
        return persisting_probe(return_state=True)

    @flow(persist_result=True)
    def my_flow_2() -> Any:
        return probe.with_options(cache_key_fn=lambda *_: "always", persist_result=True)(return_state=True)

    assert storage_path_of(my_flow_1()) == default_storage()
    state = my_flow_2()
    assert storage_path_of(state) == default_storage() and state.reference.storage_key == "always"


def test_default_storage_creation_for_task_without_persistence_features() -> None:
    """tests/results/test_result_store.py: a task that does not persist touches no storage."""

    @flow
    def my_flow() -> Any:
        return probe.with_options(persist_result=False)(return_state=True)

    assert not persisted(my_flow()) and not default_storage().exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"persist_result": True, "cache_result_in_memory": False, "result_serializer": "json"},
         {"persist_result": True, "cache_result_in_memory": False, "serializer": JSONSerializer()}),
        ({"persist_result": False, "cache_result_in_memory": True, "result_serializer": "json"},
         {"persist_result": False, "cache_result_in_memory": True, "serializer": JSONSerializer()}),
    ],
)
def test_result_store_from_task_with_no_flow_run_context(options: dict[str, Any], expected: dict[str, Any]) -> None:
    """tests/results/test_result_store.py: a task's own options, outside any flow."""
    my_task = probe.with_options(**options)
    state = my_task(return_state=True)
    assert my_task.options.cache_result_in_memory is expected["cache_result_in_memory"]
    assert persisted(state) is expected["persist_result"]
    if expected["persist_result"]:
        assert serializer_of(state) == expected["serializer"] and storage_path_of(state) == default_storage()


@pytest.mark.parametrize("persist_result", [True, False])
def test_result_store_from_task_loads_persist_result_from_flow_store(persist_result: bool) -> None:
    """tests/results/test_result_store.py: a task takes persist_result from its flow."""

    @flow(persist_result=persist_result)
    def foo() -> Any:
        return probe(return_state=True)

    assert persisted(foo()) is persist_result


@pytest.mark.parametrize("persist_result", [True, False])
def test_result_store_from_task_takes_precedence_from_task(persist_result: bool) -> None:
    """tests/results/test_result_store.py: the task's own persist_result beats its flow's."""

    @flow(persist_result=not persist_result)
    def foo() -> Any:
        return probe.with_options(persist_result=persist_result)(return_state=True)

    assert persisted(foo()) is persist_result


# ------------------------------------------------------------------ default result storage


@xfail_differs("`RESULTKIT_DEFAULT_STORAGE` does not turn persistence on")
def test_configured_default_result_storage_enables_default_persistence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/results/test_result_store.py TestDefaultResultStorageResolution: a default storage means persist."""
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(tmp_path / "my-results"))
    assert persisted(probe(return_state=True))


def test_block_backed_storage_does_not_enable_default_persistence_by_itself(saved_storage: tuple[str, Path]) -> None:
    """tests/results/test_result_store.py TestDefaultResultStorageResolution: a saved block is just storage."""
    slug, folder = saved_storage
    store = ResultStore(result_storage=slug)
    assert store.result_storage == load_storage(slug)
    assert not persisted(probe(return_state=True)) and not folder.exists()


def test_configured_default_result_storage_does_not_override_parent_opt_out(
    saved_storage: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/results/test_result_store.py TestDefaultResultStorageResolution: persist_result=False wins."""
    slug, folder = saved_storage
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(tmp_path / "my-results"))

    @flow(persist_result=False, result_storage=slug)
    def my_flow() -> Any:
        return probe(return_state=True)

    assert not persisted(my_flow()) and not folder.exists() and not (tmp_path / "my-results").exists()
