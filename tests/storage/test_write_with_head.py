"""Storage.write_with_head: a head computed while the body is written, atomically, on every backend."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xxhash

from resultkit.errors import StorageError
from resultkit.results import ResultStore
from resultkit.storage import CachedStorage, LocalStorage, MemoryStorage, Storage

BODY = np.arange(3 << 17, dtype=np.float64)  # 3 MiB: above the size written from a thread


def body_views() -> list[memoryview]:
    view = memoryview(BODY).cast("B")
    return [view[:1000], view[1000:]]


def digest_head() -> bytes:
    return xxhash.xxh3_128_hexdigest(memoryview(BODY).cast("B")).encode() + b"\n"


@pytest.fixture(params=["local", "memory", "cached"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "local")
    if request.param == "memory":
        return MemoryStorage()
    return CachedStorage(LocalStorage(tmp_path / "remote"), directory=tmp_path / "cache")


def test_the_head_lands_in_front_of_the_body(storage: Storage) -> None:
    storage.write_with_head("k", body_views(), 33, digest_head)
    assert storage.read("k") == digest_head() + BODY.tobytes()


def test_a_small_body_is_written_the_same_way(storage: Storage) -> None:
    storage.write_with_head("k", [memoryview(b"body")], 5, lambda: b"head\n")
    assert storage.read("k") == b"head\nbody"


def temp_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(".rk-tmp-")]


def test_a_failing_head_leaves_the_old_object_and_no_temporary_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("k", b"old")

    def broken() -> bytes:
        raise RuntimeError("checksum failed")

    with pytest.raises(RuntimeError, match="checksum failed"):
        storage.write_with_head("k", body_views(), 33, broken)
    assert storage.read("k") == b"old" and temp_files(tmp_path) == []


def test_a_head_of_the_wrong_size_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(StorageError, match="gave 33 bytes, not the 40 announced"):
        storage.write_with_head("k", body_views(), 40, digest_head)
    assert not storage.exists("k") and temp_files(tmp_path) == []


def test_a_large_record_is_what_a_sequential_writer_makes(tmp_path: Path) -> None:
    """The header is sealed after the payload is written: its hash, padding and signature hold."""
    for signing_key in (None, "team-secret"):
        store = ResultStore(LocalStorage(tmp_path / str(signing_key)), signing_key=signing_key)
        record = store.write("big", BODY)
        store.verify("big")  # header hash, size, checksum and (signed) signature
        raw = store.storage.read("big")
        line = raw[: raw.index(b"\n") + 1]
        assert len(line) % 64 == 0 and record.metadata.payload_hash.encode() in line
        assert b"0" * 32 not in line  # no placeholder digits left
        assert store.metadata("big") == record.metadata
        assert np.array_equal(store.read("big").result, BODY)


def test_overwriting_a_large_record_frees_the_old_file_and_keeps_it_readable_until_then(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    store.write("big", BODY)
    with open(storage.path_of("big"), "rb") as held:  # a reader that opened the old version
        store.write("big", BODY + 1)
        assert held.read(1) == b"{" and held.seek(0, os.SEEK_END) > BODY.nbytes
    assert np.array_equal(store.read("big").result, BODY + 1)
    assert sorted(os.listdir(tmp_path)) == ["big"]
