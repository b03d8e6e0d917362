"""ResultStore under Prefect's names: options, write(obj=, key=), the async face, serialization errors."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import re
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from resultkit.errors import ConfigurationError, RecordNotFound, SerializationError
from resultkit.results import ResultStore
from resultkit.serializers import Serializer
from resultkit.storage import LocalStorage, MemoryStorage


def test_result_storage_is_the_storage_under_prefects_name(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path / "results")
    assert isinstance(store.storage, LocalStorage) and store.result_storage is store.storage
    assert store.storage.basepath == tmp_path / "results"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"storage": "a", "result_storage": "b"}, "both storage=.*and result_storage="),
        ({"metadata_storage": "meta"}, "metadata_storage=.*one object"),
        ({"cache_result_in_memory": "yes"}, "cache_result_in_memory must be True or False"),
        ({"storage_key_fn": "uuid"}, "storage_key_fn must be a function"),
    ],
)
def test_bad_prefect_named_options_are_configuration_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        ResultStore(**options)


def test_write_takes_obj_and_key_by_keyword_and_our_positional_order() -> None:
    store = ResultStore(MemoryStorage())
    assert store.write(obj={"a": 1}, key="k1").result == {"a": 1}
    assert store.write("k2", [2]).result == [2]
    assert store.write(key="k3", obj=None).metadata.is_literal  # None is a value, not "missing"
    assert (store.read(key="k1").result, store.read("k2").result, store.read(key="k3").result) == ({"a": 1}, [2], None)


def test_write_refuses_the_value_twice_or_not_at_all() -> None:
    store = ResultStore(MemoryStorage())
    with pytest.raises(ConfigurationError, match="got the value twice"):
        store.write("k", 1, obj=2)
    with pytest.raises(ConfigurationError, match="needs the value to store"):
        store.write(key="k")
    assert list(store.list(include_expired=True)) == []


def test_write_without_a_key_uses_storage_key_fn() -> None:
    store = ResultStore(MemoryStorage())
    first, second = store.write(obj=1).metadata.storage_key, store.write(obj=2).metadata.storage_key
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    counter = iter(range(100))
    named = ResultStore(MemoryStorage(), storage_key_fn=lambda: f"run-{next(counter)}")
    assert named.write(obj="x").metadata.storage_key == "run-0"
    assert named.read("run-0").result == "x"


def test_a_storage_key_fn_that_returns_no_string_is_a_configuration_error() -> None:
    store = ResultStore(MemoryStorage(), storage_key_fn=lambda: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="returned int 42"):
        store.write(obj=1)


def test_prefect_options_survive_pickling(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path, cache_result_in_memory=False)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.cache_result_in_memory is False and copy.write(obj=1).result == 1


# ------------------------------------------------------------------ serialization errors


@pytest.mark.parametrize("serializer", ["pickle", "json", "compressed/pickle"])
def test_a_value_that_cannot_be_serialized_raises_serialization_error_with_the_value(serializer: str) -> None:
    store = ResultStore(MemoryStorage(), serializer=serializer)
    value = {"lock": threading.Lock()}
    with pytest.raises(SerializationError, match="lock") as caught:
        store.write("k", value)
    assert caught.value.has_value and caught.value.value is value
    assert "result_serializer='json'" not in str(caught.value)  # JSON cannot hold a lock either
    assert not store.exists("k") and list(store.storage.list()) == []


def test_a_third_party_serializer_failure_is_a_serialization_error_with_the_value() -> None:
    class Strict(Serializer):
        type: ClassVar[str] = "compat-strict"

        def dumps_chunks(self, obj: Any) -> list[bytes]:
            raise TypeError(f"cannot take {type(obj).__name__}")

        def loads(self, data: Any) -> Any:
            return None

        def to_config(self) -> dict[str, Any]:
            return {"type": self.type}

    store = ResultStore(MemoryStorage(), serializer=Strict())
    with pytest.raises(SerializationError, match=r"TypeError: cannot take set") as caught:
        store.write("k", {1})
    assert caught.value.value == {1}
    assert not store.exists("k")


def test_create_result_record_writes_nothing_and_persist_result_record_writes_it() -> None:
    store = ResultStore(MemoryStorage(), serializer="json")
    record = store.create_result_record({"x": 1}, key="made")
    assert record.result == {"x": 1} and record.metadata.payload_size == len(b'{"x":1}')
    assert not store.exists("made")
    assert store.persist_result_record(record).metadata.storage_key == "made"
    assert store.read("made").result == {"x": 1}
    with pytest.raises(SerializationError) as caught:
        store.create_result_record({"bad": threading.Lock()}, key="never")
    assert "bad" in caught.value.value


# ------------------------------------------------------------------ the async face


class _GatedStorage(MemoryStorage):
    """Memory storage whose reads wait until a gate opens (set from the event loop)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.opened_in_time = True

    def read_head(self, key: str, size: int) -> bytes:
        if not self.gate.is_set():
            self.opened_in_time = self.gate.wait(timeout=30)  # bounded: a blocked loop fails, never hangs
        return super().read_head(key, size)


def test_aread_awrite_aexists_do_not_block_the_event_loop() -> None:
    storage = _GatedStorage()
    store = ResultStore(storage)

    async def scenario() -> tuple[Any, bool, bool]:
        await store.awrite(obj="value", key="k")
        reading = asyncio.ensure_future(store.aread(key="k"))
        checking = asyncio.ensure_future(store.aexists(key="k"))
        await asyncio.sleep(0)  # yield once: the reads are now waiting on the gate in threads
        storage.gate.set()  # runs only because the loop is free while they wait
        return (await reading).result, await checking, await store.aexists(key="missing")

    assert asyncio.run(scenario()) == ("value", True, False)
    assert storage.opened_in_time


def test_the_async_face_has_the_sync_signature_and_raises_the_same_errors() -> None:
    for name in ("read", "write", "exists", "persist_result_record"):
        sync, coroutine = getattr(ResultStore, name), getattr(ResultStore, "a" + name)
        assert inspect.iscoroutinefunction(coroutine)
        assert inspect.signature(coroutine) == inspect.signature(sync)
    store = ResultStore(MemoryStorage())
    with pytest.raises(RecordNotFound):
        asyncio.run(store.aread(key="absent"))
