"""ResultReference: a handle that travels as JSON or pickle and loads its value once."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from resultkit.errors import ConfigurationError, RecordNotFound, StorageError
from resultkit.results import ResultReference, ResultStore
from resultkit.storage import LocalStorage, MemoryStorage

VALUE = {"rows": 3, "columns": ["a", "b"], "mean": 1.25}


@pytest.fixture
def local_store(tmp_path: Path) -> ResultStore:
    return ResultStore(LocalStorage(tmp_path / "records"))


def test_record_and_store_make_equal_references(local_store: ResultStore) -> None:
    record = local_store.write("tasks/summary", VALUE)
    from_record = record.reference()
    from_store = local_store.reference("tasks/summary")
    assert from_record == from_store
    assert from_record.storage_key == "tasks/summary"
    assert from_record.get() == VALUE


def test_json_round_trip_holds_configuration_not_objects(local_store: ResultStore) -> None:
    local_store.write("tasks/summary", VALUE)
    text = local_store.reference("tasks/summary").to_json()
    data = json.loads(text)
    assert data["storage"] == {"type": "local", **local_store.storage.to_block()}
    assert data["storage_key"] == "tasks/summary"
    assert data["serializer"]["type"] == "pickle"
    rebuilt = ResultReference.from_json(text)
    assert isinstance(rebuilt.storage, LocalStorage)
    assert rebuilt.storage.basepath == local_store.storage.basepath  # type: ignore[attr-defined]
    assert rebuilt.get() == VALUE
    assert ResultReference.from_json(data).get() == VALUE  # the parsed dict works too


def test_path_string_storage_round_trips(local_store: ResultStore, tmp_path: Path) -> None:
    local_store.write("k", VALUE)
    ref = ResultReference(str(tmp_path / "records"), "k")
    assert json.loads(ref.to_json())["storage"] == str(tmp_path / "records")
    assert ResultReference.from_json(ref.to_json()).get() == VALUE
    assert ResultReference(tmp_path / "records", "k").get() == VALUE  # PathLike


def test_get_reads_once_then_keeps_the_value(local_store: ResultStore) -> None:
    local_store.write("k", VALUE)
    ref = local_store.reference("k")
    assert not ref.is_loaded
    first = ref.get()
    assert ref.is_loaded
    local_store.delete("k")
    assert ref.get() is first  # kept: no second read
    with pytest.raises(RecordNotFound):
        ResultReference.from_json(ref.to_json()).get()


def test_pickle_carries_the_handle_not_the_value(local_store: ResultStore) -> None:
    local_store.write("k", VALUE)
    ref = local_store.reference("k")
    ref.get()
    clone = pickle.loads(pickle.dumps(ref))
    assert clone == ref
    assert not clone.is_loaded
    assert clone.get() == VALUE


def test_reference_loads_in_another_process(local_store: ResultStore) -> None:
    local_store.write("tasks/summary", VALUE)
    ref = local_store.reference("tasks/summary")
    code = (
        "import json, pickle, sys\n"
        "from resultkit.results import ResultReference\n"
        "from_json = ResultReference.from_json(sys.argv[1]).get()\n"
        "from_pickle = pickle.loads(sys.stdin.buffer.read()).get()\n"
        "print(json.dumps([from_json, from_pickle]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, ref.to_json()],
        input=pickle.dumps(ref), capture_output=True, check=True, timeout=60,
    )
    assert json.loads(done.stdout) == [VALUE, VALUE]


def test_memory_storage_cannot_travel_as_json_but_pickles() -> None:
    store = ResultStore(MemoryStorage())
    store.write("k", VALUE)
    ref = store.reference("k")
    with pytest.raises(ConfigurationError, match="cannot be sent as JSON"):
        ref.to_json()
    assert pickle.loads(pickle.dumps(ref)).get() == VALUE  # a snapshot of the memory store


@pytest.mark.parametrize(
    "text",
    ["not json", "[1]", '{"storage_key": "k"}', '{"storage": 5, "storage_key": "k"}',
     '{"storage": {"type": "nope"}, "storage_key": "k"}'],
)
def test_bad_reference_json_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="ResultReference JSON"):
        ResultReference.from_json(text)


def test_bad_reference_arguments_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a Storage, a path"):
        ResultReference(42, "k")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="relative"):
        ResultReference("/tmp/x", "/abs/key")
