"""``ResultStore.verify``: integrity checks that stream the payload and never deserialize it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from resultkit.errors import RecordCorruptError, RecordNotFound
from resultkit.results.store import ResultStore
from resultkit.storage.base import Storage


class _Tripwire:
    """Unpickling this creates a marker file: proof that a payload was deserialized."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.marker, "w"))


def _damage(storage: Storage, key: str, offset_from_end: int = 1) -> None:
    data = bytearray(storage.read(key))
    data[-offset_from_end] ^= 0xFF
    storage.write(key, bytes(data))


def test_intact_records_of_every_kind_verify_on_every_backend(store: ResultStore) -> None:
    store.write("pickle", {"a": [1, 2, 3]})
    store.write("literal", None)
    store.write("expired", "old", expiration=timedelta(seconds=-1))  # integrity, not liveness
    ResultStore(store.storage, serializer="compressed/json").write("json", {"b": 2})
    for key in ("pickle", "literal", "expired", "json"):
        assert store.verify(key) is None
    metadata, size = store.verified_metadata("pickle")
    assert size == len(store.storage.read("pickle"))
    assert metadata.storage_key == "pickle"


def test_a_damaged_payload_names_the_checksum(store: ResultStore) -> None:
    store.write("k", b"x" * 1000)
    _damage(store.storage, "k", 10)
    with pytest.raises(RecordCorruptError, match=r"'k' payload fails its checksum"):
        store.verify("k")


def test_truncated_and_extended_payloads_name_both_sizes(store: ResultStore) -> None:
    store.write("k", b"x" * 1000)
    whole = store.storage.read("k")
    store.storage.write("k", whole[:-5])
    with pytest.raises(RecordCorruptError, match=r"payload is \d+ bytes, header says \d+"):
        store.verify("k")
    store.storage.write("k", whole + b"extra")
    with pytest.raises(RecordCorruptError, match="payload is"):
        store.verify("k")


def test_damaged_header_missing_key_and_non_records(store: ResultStore) -> None:
    store.write("k", [1, 2])
    header_end = store.storage.read("k").index(b"\n")
    _damage(store.storage, "k", len(store.storage.read("k")) - header_end + 20)
    with pytest.raises(RecordCorruptError, match="header"):
        store.verify("k")
    store.storage.write("empty", b"")
    with pytest.raises(RecordCorruptError, match="'empty' is empty"):
        store.verify("empty")
    store.storage.write("text", b"no header line here")
    with pytest.raises(RecordCorruptError, match="no header line"):
        store.verify("text")
    with pytest.raises(RecordNotFound, match="'absent'"):
        store.verify("absent")


def test_payloads_larger_than_one_chunk_are_streamed_and_checked_to_the_end(local_storage: Storage) -> None:
    store = ResultStore(local_storage)
    store.write("big", np.arange(600_000, dtype=np.float64))  # 4.8 MB: several 1 MiB chunks
    store.verify("big")
    _damage(store.storage, "big", 1)  # the very last byte, in the last chunk
    with pytest.raises(RecordCorruptError, match="checksum"):
        store.verify("big")


def test_signing_store_refuses_unsigned_and_foreign_records_without_unpickling(tmp_path: Path) -> None:
    root = tmp_path / "signed"
    marker = tmp_path / "unpickled"
    signed = ResultStore(root, signing_key="team-secret")
    signed.write("good", {"ok": True})
    ResultStore(root).write("unsigned", _Tripwire(str(marker)))
    ResultStore(root, signing_key="other-secret").write("wrong-key", _Tripwire(str(marker)))
    signed.verify("good")
    with pytest.raises(RecordCorruptError, match="unsigned"):
        signed.verify("unsigned")
    with pytest.raises(RecordCorruptError, match="invalid signature"):
        signed.verify("wrong-key")
    ResultStore(root).verify("wrong-key")  # without a key: checksums only, and they hold
    assert not marker.exists()


def test_verify_on_s3_and_gcs(remote_storage: Storage) -> None:
    store = ResultStore(remote_storage)
    store.write("k", b"payload" * 300_000)  # 2.1 MB: streamed in chunks over HTTP
    store.verify("k")
    _damage(remote_storage, "k", 3)
    with pytest.raises(RecordCorruptError, match="checksum"):
        store.verify("k")
