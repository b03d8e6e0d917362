"""Answers Prefect's tests/results/test_result_record.py, test by test (same names).

Prefect serializes a ``ResultRecord`` itself (``record.serialize()``); a resultkit record
is written and read by a ``ResultStore``, so the record's bytes are taken from storage.
"""

from __future__ import annotations

from typing import Any

import pytest

from resultkit.errors import RecordCorruptError, SerializationError
from resultkit.results import ResultStore
from resultkit.serializers import JSONSerializer, PickleSerializer
from resultkit.storage import LocalStorage, MemoryStorage

from ._cite import xfail_differs


class TestResultRecord:
    def test_deserialize_with_full_data(self) -> None:
        """tests/results/test_result_record.py: a record's bytes alone rebuild its value."""
        written = MemoryStorage()
        ResultStore(written, serializer=JSONSerializer()).write(obj="The results are in...", key="my-storage-key")
        elsewhere = MemoryStorage()
        elsewhere.write("my-storage-key", written.read("my-storage-key"))
        # A reader configured for another serializer still reads it: the header names JSON.
        assert ResultStore(elsewhere, serializer=PickleSerializer()).read(key="my-storage-key").result == (
            "The results are in..."
        )

    def test_deserialize_with_result_only(self) -> None:
        """tests/results/test_result_record.py: a bare payload without its header is not a record."""
        storage = MemoryStorage()
        storage.write("raw", JSONSerializer().dumps("The results are in..."))
        store = ResultStore(storage, serializer=JSONSerializer())
        with pytest.raises(RecordCorruptError, match="no header line"):
            store.read(key="raw")
        assert store.lookup("raw") is None  # a miss (with a warning), never a value

    @xfail_differs("No separate metadata storage")
    def test_deserialize_with_result_only_backup_serializer(self) -> None:
        """tests/results/test_result_record.py test_deserialize_with_result_only: backup_serializer reads it."""
        storage = MemoryStorage()
        storage.write("raw", JSONSerializer().dumps("The results are in..."))
        assert ResultStore(storage, serializer=JSONSerializer()).read(key="raw").result == "The results are in..."

    def test_result_record_metadata_tolerates_unknown_serializer_types(self) -> None:
        """tests/results/test_result_record.py: a header naming an unknown serializer still parses."""

        class Custom(JSONSerializer):
            def to_config(self) -> dict[str, Any]:
                return {"type": "compat-custom", "foo": "bar"}

        storage = MemoryStorage()
        ResultStore(storage, serializer=Custom()).write("my-storage-key", 1)
        reader = ResultStore(storage)
        assert reader.metadata("my-storage-key").serializer == {"type": "compat-custom", "foo": "bar"}
        assert reader.exists("my-storage-key")
        with pytest.raises(SerializationError, match="unknown serializer type 'compat-custom'"):
            reader.read("my-storage-key")

    def test_result_record_metadata_surfaces_invalid_known_serializer(self) -> None:
        """tests/results/test_result_record.py [known-type-with-forbidden-extra]: a bad option is an error."""

        class Extra(JSONSerializer):
            def to_config(self) -> dict[str, Any]:
                return {**super().to_config(), "bogus_extra": "bar"}

        storage = MemoryStorage()
        ResultStore(storage, serializer=Extra()).write("my-storage-key", 1)
        with pytest.raises(SerializationError, match="bogus_extra"):
            ResultStore(storage).read("my-storage-key")

    @xfail_differs("A record's `picklelib` is never imported from the record")
    def test_result_record_metadata_surfaces_invalid_known_serializer_picklelib(self) -> None:
        """tests/results/test_result_record.py [known-type-with-invalid-field-value]: an unknown picklelib fails."""

        class Unknown(PickleSerializer):
            def to_config(self) -> dict[str, Any]:
                return {**super().to_config(), "picklelib": "not_a_real_lib"}

        storage = MemoryStorage()
        ResultStore(storage, serializer=Unknown()).write("my-storage-key", 1)
        with pytest.raises(SerializationError):
            ResultStore(storage).read("my-storage-key")

    def test_from_metadata(self, tmp_path: Any) -> None:
        """tests/results/test_result_record.py: the metadata (key and storage) is enough to load the value."""
        store = ResultStore(LocalStorage(tmp_path))
        record = store.persist_result_record(store.create_result_record("The results are in...", "the-key"))
        assert record.reference().get() == "The results are in..."
        assert ResultStore(LocalStorage(tmp_path)).read(record.metadata.storage_key).result == "The results are in..."

    @xfail_differs("No separate metadata storage")
    def test_from_metadata_with_raw_result(self, tmp_path: Any) -> None:
        """tests/results/test_result_record.py: a raw payload written without metadata (NullFileSystem)."""
        store = ResultStore(result_storage=LocalStorage(tmp_path), serializer=JSONSerializer(),
                            metadata_storage="null")  # type: ignore[arg-type]
        store.write(obj="The results are in...", key="the-key")
        assert JSONSerializer().loads((tmp_path / "the-key").read_bytes()) == "The results are in..."

