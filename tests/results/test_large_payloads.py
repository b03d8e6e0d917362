"""Large payloads: streamed into one buffer, loaded as writable views, damage still detected."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from resultkit.errors import RecordCorruptError
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage

MIB = 1 << 20


@pytest.mark.parametrize("nbytes", [MIB - 8, MIB, 3 * MIB + 8])
def test_arrays_around_the_mapped_buffer_size_round_trip(store: ResultStore, nbytes: int) -> None:
    array = np.random.default_rng(nbytes).standard_normal(nbytes // 8)
    store.write("big", array)
    loaded = store.read("big").result
    assert np.array_equal(loaded, array)
    assert loaded.flags.writeable and loaded.flags.c_contiguous
    assert loaded.ctypes.data % 64 == 0  # aligned for SIMD, as the pickle frame promises


def test_large_bytes_and_mixed_values_round_trip(store: ResultStore) -> None:
    value = {"blob": bytes(range(256)) * 20_000, "array": np.arange(500_000), "name": "x" * 2_000_000}
    store.write("mixed", value)
    loaded = store.read("mixed").result
    assert loaded["blob"] == value["blob"] and loaded["name"] == value["name"]
    assert np.array_equal(loaded["array"], value["array"])


def test_loaded_array_outlives_the_store_and_record(local_storage: LocalStorage) -> None:
    array = np.arange(2 * MIB // 8, dtype=np.float64)
    ResultStore(local_storage).write("big", array)
    loaded = ResultStore(local_storage).read("big").result
    gc.collect()  # nothing but the array holds the buffer it views
    loaded[:] += 1
    assert loaded[-1] == array[-1] + 1
    assert np.array_equal(loaded - 1, array)


def test_two_reads_of_one_record_do_not_share_memory(local_storage: LocalStorage) -> None:
    store = ResultStore(local_storage)
    store.write("big", np.zeros(MIB // 4))
    first, second = store.read("big").result, store.read("big").result
    first[0] = 7.0
    assert second[0] == 0.0


@pytest.mark.parametrize("damage", ["flip-payload-end", "truncate", "append"])
def test_damaged_large_records_are_corrupt(local_storage: LocalStorage, damage: str) -> None:
    store = ResultStore(local_storage)
    store.write("big", np.arange(3 * MIB // 8, dtype=np.float64))
    path = local_storage.path_of("big")
    data = bytearray(path.read_bytes())
    if damage == "flip-payload-end":
        data[-3] ^= 0x01
    elif damage == "truncate":
        del data[-MIB:]
    else:
        data += b"\0"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordCorruptError, match="'big'"):
        store.read("big")
    assert store.lookup("big") is None


def test_signed_large_records_round_trip_and_refuse_tampering(local_storage: LocalStorage) -> None:
    store = ResultStore(local_storage, signing_key="k" * 32)
    array = np.arange(3 * MIB // 8, dtype=np.float64)
    store.write("big", array)
    assert np.array_equal(store.read("big").result, array)
    path = local_storage.path_of("big")
    data = bytearray(path.read_bytes())
    data[-MIB] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(RecordCorruptError):
        store.read("big")
