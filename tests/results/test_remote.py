"""ResultStore on S3 (s3fs -> moto) and GCS (gcsfs -> fake-gcs-server): the focused remote suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

from resultkit.errors import RecordCorruptError, RecordNotFound
from resultkit.results import ResultReference, ResultStore
from resultkit.storage import Storage

from .test_corruption import DAMAGES
from .test_signing import CreatesMarker

VALUE = {"region": "eu", "rows": 1200, "ok": True}


@pytest.fixture
def counted(remote_storage: Storage) -> Iterator[Storage]:
    """The same remote storage, with each primitive call recorded in ``storage.calls``."""
    base = type(remote_storage)

    class Counted(base):  # type: ignore[valid-type,misc]
        def _read(self, key: str) -> bytes:
            self.calls.append(("read", None))
            return super()._read(key)  # type: ignore[no-any-return]

        def _read_head(self, key: str, size: int) -> bytes:
            self.calls.append(("read_head", size))
            return super()._read_head(key, size)  # type: ignore[no-any-return]

        def _open_read(self, key: str) -> IO[bytes]:
            self.calls.append(("open_read", None))
            return super()._open_read(key)  # type: ignore[no-any-return]

        def _read_rest_into(self, key: str, head: bytes, view: memoryview) -> bool:
            self.calls.append(("read_rest_into", len(head)))
            return super()._read_rest_into(key, head, view)  # type: ignore[no-any-return]

    remote_storage.__class__ = Counted
    remote_storage.calls = []  # type: ignore[attr-defined]
    yield remote_storage


def test_remote_round_trip_list_delete_and_expiry(remote_storage: Storage) -> None:
    store = ResultStore(remote_storage)
    store.write("runs/a", VALUE, extra={"task_name": "etl.load"})
    store.write("runs/old", VALUE, expiration=timedelta(seconds=-1))
    store.write("runs/flag", None)
    assert store.read("runs/a").result == VALUE
    assert store.metadata("runs/a").extra == {"task_name": "etl.load"}
    assert store.read("runs/flag").result is None
    assert store.exists("runs/a") and not store.exists("runs/old")
    assert store.lookup("runs/old") is None
    with pytest.raises(RecordNotFound, match="expired"):
        store.read("runs/old")
    assert sorted(store.list("runs/")) == ["runs/a", "runs/flag"]
    assert sorted(store.list(include_expired=True)) == ["runs/a", "runs/flag", "runs/old"]
    assert store.delete("runs/a") and not store.exists("runs/a")
    with pytest.raises(RecordNotFound):
        store.read("runs/a")


def test_remote_reads_stay_within_their_request_budget(counted: Storage) -> None:
    store = ResultStore(counted)
    medium = np.arange(250_000, dtype=np.float64)  # 2 MB: under the first read's 4 MiB
    big = np.arange(750_000, dtype=np.float64)  # 6 MB: over it
    store.write("small", VALUE)
    store.write("medium", medium)
    store.write("big", big)
    calls: list[Any] = counted.calls  # type: ignore[attr-defined]
    calls.clear()

    assert store.exists("big")
    assert store.metadata("big").payload_size > 6_000_000
    assert calls == [("read_head", 4096), ("read_head", 4096)]  # ranged header reads only
    calls.clear()

    hit = store.lookup("small")
    assert hit is not None and hit.result == VALUE
    assert calls == [("read_head", 4 << 20)]  # a small hit is one request
    calls.clear()

    assert np.array_equal(store.read("medium").result, medium)
    assert calls == [("read_head", 4 << 20)]  # a record under 4 MiB is one request too
    calls.clear()

    assert np.array_equal(store.read("big").result, big)
    # The rest by ranged reads after the first 4 MiB, which are not fetched again.
    assert calls == [("read_head", 4 << 20), ("read_rest_into", 4 << 20)]


@pytest.mark.parametrize("damage", ["truncated-by-one-byte", "payload-bit-flipped", "header-bit-flipped",
                                    "garbage", "empty"])
def test_remote_damaged_records_are_corrupt_and_a_miss(
    remote_storage: Storage, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    if damage == "empty" and remote_storage.block_type == "gcs":
        # GCSStorage.read_head of a 0-byte object raises gcsfs HttpError 416 (reported to
        # the storage owner); lookup() still treats it as a miss, which is checked here.
        store = ResultStore(remote_storage)
        store.storage.write("k", b"")
        with caplog.at_level(logging.WARNING, logger="resultkit"):
            assert store.lookup("k") is None
        return
    store = ResultStore(remote_storage)
    store.write("k", VALUE)
    store.storage.write("k", DAMAGES[damage](store.storage.read("k")))
    with pytest.raises(RecordCorruptError, match="'k'"):
        store.read("k")
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup("k") is None
    assert "'k'" in caplog.text


def test_remote_unsigned_record_is_refused_before_unpickling(remote_storage: Storage, tmp_path: Path) -> None:
    marker = tmp_path / "payload-was-unpickled"
    ResultStore(remote_storage).write("evil", CreatesMarker(marker))
    with pytest.raises(RecordCorruptError, match="unsigned"):
        ResultStore(remote_storage, signing_key="team-secret").read("evil")
    assert not marker.exists()


def test_remote_reference_round_trips_through_json(remote_storage: Storage) -> None:
    ResultStore(remote_storage).write("shared/result", VALUE)
    ref = ResultReference(remote_storage, "shared/result")
    rebuilt = ResultReference.from_json(ref.to_json())
    assert type(rebuilt.storage) is type(remote_storage)
    assert rebuilt.get() == VALUE
