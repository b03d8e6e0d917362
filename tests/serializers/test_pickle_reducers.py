"""Fast pickling of string and datetime arrays: same values back, fewer copies, safe fallbacks."""

from __future__ import annotations

import enum
import mmap
import pickle

import numpy as np
import pandas as pd
import pytest

from resultkit.serializers import PickleSerializer
from resultkit.serializers._buffers import allocate_payload_buffer, release_consumed

N = 5_000  # above the size where string arrays take the fast path


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


def round_trip(value: object, picklelib: str = "cloudpickle", protocol: int = 5) -> object:
    serializer = PickleSerializer(picklelib=picklelib, protocol=protocol)
    return serializer.loads(bytearray(serializer.dumps(value)))


def strings(n: int = N) -> np.ndarray:
    return np.array([f"s-{i}-{'é' * (i % 3)}" for i in range(n)], dtype=object)


def assert_same_objects(got: np.ndarray, want: np.ndarray) -> None:
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
    assert [type(x) for x in got.flat] == [type(x) for x in want.flat]
    assert list(got.flat) == list(want.flat)


@pytest.mark.parametrize("picklelib", ["cloudpickle", "pickle"])
def test_string_arrays_round_trip_exactly(picklelib: str) -> None:
    tricky = ["", "plain", "ünïcödé", "emoji 🎉", "\ud800 lone surrogate", "tab\tnew\nline", " "]
    array = np.array((tricky * N)[:N], dtype=object)
    assert_same_objects(round_trip(array, picklelib), array)  # type: ignore[arg-type]


def test_string_array_is_one_out_of_band_utf8_buffer() -> None:
    array = strings()
    chunks = PickleSerializer().dumps_chunks(array)
    encoded = "\x00".join(array).encode()
    assert any(memoryview(chunk).nbytes == len(encoded) and bytes(chunk) == encoded for chunk in chunks)
    total = sum(memoryview(chunk).nbytes for chunk in chunks)
    assert total < len(pickle.dumps(array, protocol=5))  # no per-string opcodes and lengths


@pytest.mark.parametrize(
    "items",
    [
        pytest.param(["a\x00b", "c"], id="separator-inside-a-string"),
        pytest.param(["a", None, float("nan")], id="missing-values"),
        pytest.param(["a", 1, b"bytes"], id="mixed-types"),
        pytest.param([Color.RED, "blue"], id="str-subclass"),
    ],
)
def test_arrays_the_fast_path_cannot_encode_fall_back_unchanged(items: list[object]) -> None:
    array = np.array((items * N)[:N], dtype=object)
    got = round_trip(array)
    assert isinstance(got, np.ndarray)
    assert [type(x) for x in got] == [type(x) for x in array]
    assert [x if x == x else "nan" for x in got] == [x if x == x else "nan" for x in array]  # nan != nan
    if isinstance(items[0], Color):
        assert got[0] is Color.RED


def test_multidimensional_and_fortran_ordered_string_arrays() -> None:
    grid = strings(6 * 1000).reshape(6, 1000)
    assert_same_objects(round_trip(grid), grid)  # type: ignore[arg-type]
    fortran = np.asfortranarray(grid)
    got = round_trip(fortran)
    assert isinstance(got, np.ndarray) and (got == fortran).all()


def test_one_array_referenced_twice_stays_one_object() -> None:
    array = strings()
    first, second = round_trip([array, array])  # type: ignore[misc]
    assert first is second


def test_small_and_empty_arrays_round_trip() -> None:
    zero_d = (np.array("NaT", dtype="M8[ns]"), np.array(5, dtype="m8[s]"), np.array("x", dtype=object))
    for array in (np.array(["a", "b"], dtype=object), np.array([], dtype=object), np.array([], dtype="M8[s]"), *zero_d):
        got = round_trip(array)
        assert isinstance(got, np.ndarray) and got.dtype == array.dtype and got.shape == array.shape
        assert got.tolist() == array.tolist() or np.isnat(array).all()


@pytest.mark.parametrize("dtype", ["M8[ns]", "M8[us]", "m8[s]", "M8[D]"])
def test_datetime_arrays_go_out_of_band_and_load_writable(dtype: str) -> None:
    array = (np.arange(N) * 86_400).astype("m8[s]").astype(dtype.replace("M8", "m8"))
    array = array.view(dtype) if dtype.startswith("M8") else array
    chunks = PickleSerializer().dumps_chunks(array)
    assert any(np.shares_memory(np.frombuffer(chunk, dtype="u1"), array) for chunk in chunks)
    got = PickleSerializer().loads(bytearray(b"".join(chunks)))
    assert got.dtype == array.dtype and (got == array).all() and got.flags.writeable


def test_dataframe_with_string_datetime_and_categorical_columns() -> None:
    frame = pd.DataFrame(
        {
            "id": np.arange(N),
            "when": pd.date_range("2020-01-01", periods=N, freq="s"),
            "when_tz": pd.date_range("2020-01-01", periods=N, freq="h", tz="Europe/Paris"),
            "wait": pd.to_timedelta(np.arange(N), unit="ms"),
            "name": pd.Series([f"user-{i % 97}" for i in range(N)], dtype="str"),
            "maybe": pd.Series([None if i % 5 == 0 else f"v{i}" for i in range(N)], dtype="str"),
            "obj": pd.Series([f"o{i}" for i in range(N)], dtype=object),
            "kind": pd.Categorical([f"k{i % 4}" for i in range(N)]),
        }
    )
    for picklelib in ("cloudpickle", "pickle"):
        got = round_trip(frame, picklelib)
        pd.testing.assert_frame_equal(got, frame)  # type: ignore[arg-type]


def test_older_protocols_keep_plain_reductions() -> None:
    array = strings()
    assert_same_objects(round_trip(array, "pickle", protocol=4), array)  # type: ignore[arg-type]
    assert_same_objects(round_trip(np.array(["x"] * N, dtype=object), protocol=2), np.array(["x"] * N, dtype=object))  # type: ignore[arg-type]


def test_str_array_subclasses_keep_their_own_reduction() -> None:
    masked = np.ma.masked_array(strings(), mask=[i % 2 == 0 for i in range(N)])
    got = round_trip(masked)
    assert isinstance(got, np.ma.MaskedArray)
    assert (got.mask == masked.mask).all() and list(got.compressed()) == list(masked.compressed())


def test_release_consumed_gives_back_only_whole_pages_of_payload_mappings() -> None:
    size = 8 << 20
    buffer = allocate_payload_buffer(size)
    view = memoryview(buffer)
    view[:] = b"\x01" * size
    release_consumed(view[100 : size - 100].toreadonly())  # how pickle hands out bytes buffers
    page = mmap.PAGESIZE
    assert bytes(view[: page]) == b"\x01" * page  # the partial first page is shared: kept
    assert bytes(view[-page:]) == b"\x01" * page
    assert not any(view[page : size - page])  # released pages read back as zeros

    for foreign in (bytearray(b"\x01" * size), mmap.mmap(-1, size)):
        foreign_view = memoryview(foreign)
        foreign_view[:] = b"\x01" * size
        release_consumed(foreign_view[100:-100])  # not a payload buffer: never touched
        assert all(foreign_view)


def test_string_pages_are_released_without_touching_neighbouring_arrays() -> None:
    before, after = np.arange(300_001, dtype="f8"), np.arange(200_003, dtype="i8")
    value = [before, strings(200_000), after, strings(3_000)]
    serializer = PickleSerializer()
    payload = serializer.dumps(value)
    buffer = allocate_payload_buffer(len(payload))
    memoryview(buffer)[:] = payload
    got = serializer.loads(buffer)
    np.testing.assert_array_equal(got[0], before)
    np.testing.assert_array_equal(got[2], after)
    assert_same_objects(got[1], value[1])
    assert_same_objects(got[3], value[3])
