"""numpy and pandas inputs hash from their buffers: equal copies agree, any change differs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from resultkit.cache_policies import _numpy, hash_value
from resultkit.errors import HashError


def test_equal_array_copies_share_a_key_and_one_changed_element_differs() -> None:
    array = np.arange(10_000, dtype=np.float64)
    assert hash_value(array) == hash_value(array.copy())
    changed = array.copy()
    changed[5_000] += 1e-9
    assert hash_value(array) != hash_value(changed)


def test_same_bytes_with_another_shape_or_dtype_differs() -> None:
    array = np.arange(24, dtype=np.int64)
    assert hash_value(array) != hash_value(array.reshape(4, 6))
    assert hash_value(array.reshape(4, 6)) != hash_value(array.reshape(6, 4))
    assert hash_value(array) != hash_value(array.view(np.float64))
    assert hash_value(array) != hash_value(array.view(np.uint64))
    assert hash_value(array) != hash_value(array.tobytes())


@pytest.mark.parametrize(
    "make_view",
    [
        lambda a: a[::3],
        lambda a: a.reshape(60, 50).T,
        lambda a: a.reshape(60, 50)[:, 10:20],
        lambda a: np.asfortranarray(a.reshape(60, 50)),
        lambda a: a[::-1],
    ],
)
def test_non_contiguous_views_hash_like_their_contiguous_copies(make_view) -> None:
    view = make_view(np.arange(3_000, dtype=np.int32))
    assert hash_value(view) == hash_value(np.ascontiguousarray(view))


def test_large_strided_view_is_hashed_in_chunks_like_its_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the chunked path with a small chunk size (rows larger and smaller than a chunk).
    monkeypatch.setattr(_numpy, "_COPY_CHUNK_BYTES", 256)
    for shape in [(400, 30), (8, 1000)]:
        base = np.arange(np.prod(shape) * 2, dtype=np.float64).reshape(shape[0], shape[1] * 2)
        view = base[:, ::2]
        assert not view.flags.c_contiguous
        assert hash_value(view) == hash_value(view.copy())
        changed = view.copy()
        changed[-1, -1] = -1
        assert hash_value(view) != hash_value(changed)


def test_byte_order_does_not_change_the_key_of_equal_values() -> None:
    little = np.arange(100, dtype="<f8")
    big = little.astype(">f8")
    assert hash_value(little) == hash_value(big)


def test_numpy_scalars_datetimes_and_structured_arrays() -> None:
    assert hash_value(np.int64(1)) != hash_value(np.int32(1))
    assert hash_value(np.int64(1)) != hash_value(1)
    assert hash_value(np.float64(1.5)) == hash_value(np.float64(1.5))
    dates = np.array(["2026-01-01", "2026-01-02"], dtype="datetime64[ns]")
    assert hash_value(dates) == hash_value(dates.copy())
    assert hash_value(dates) != hash_value(dates.astype("datetime64[us]"))
    structured = np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")])
    renamed = np.array([(1, 2.0)], dtype=[("x", "<i4"), ("b", "<f8")])
    assert hash_value(structured) != hash_value(renamed)
    masked = np.ma.array([1, 2, 3], mask=[0, 1, 0])
    assert hash_value(masked) != hash_value(np.ma.array([1, 2, 3], mask=[0, 0, 0]))


def test_object_arrays_of_strings_are_delimited_exactly() -> None:
    def obj(*items: object) -> np.ndarray:
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out

    assert hash_value(obj("ab", "c")) != hash_value(obj("a", "bc"))
    assert hash_value(obj("a\x00", "b")) != hash_value(obj("a", "\x00b"))
    assert hash_value(obj("a", 1)) != hash_value(obj("a", "1"))
    assert hash_value(obj("x", None)) != hash_value(obj("x", "None"))
    many = obj(*[f"s{i}" for i in range(200_000)])  # several batches
    assert hash_value(many) == hash_value(many.copy())
    changed = many.copy()
    changed[150_000] = "other"
    assert hash_value(many) != hash_value(changed)


def test_object_array_holding_a_lock_names_the_element() -> None:
    import threading

    values = np.empty(3, dtype=object)
    values[:] = [1, 2, threading.Lock()]
    with pytest.raises(HashError, match=r"arr\[2\]"):
        hash_value(values, name="arr")


def _frame(rows: int = 1_000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "i": rng.integers(0, 100, rows),
            "f": rng.random(rows),
            "d": pd.date_range("2026-01-01", periods=rows, freq="min"),
            "tz": pd.date_range("2026-01-01", periods=rows, freq="min", tz="Europe/Paris"),
            "b": rng.random(rows) > 0.5,
            "c": pd.Categorical(rng.choice(["red", "green"], rows)),
            "s": [f"name-{i}" for i in range(rows)],
            "n": pd.array([None if i % 7 == 0 else i for i in range(rows)], dtype="Int64"),
            "o": [(i, "x") for i in range(rows)],
        }
    )


def test_equal_dataframes_share_a_key() -> None:
    frame = _frame()
    assert hash_value(frame) == hash_value(frame.copy(deep=True))
    assert hash_value(frame) == hash_value(_frame())


@pytest.mark.parametrize("column", ["i", "f", "d", "tz", "b", "c", "s", "n", "o"])
def test_one_changed_cell_in_any_column_changes_the_key(column: str) -> None:
    frame = _frame()
    changed = frame.copy(deep=True)
    replacement = {
        "i": 1_000,
        "f": 2.0,
        "d": pd.Timestamp("2000-01-01"),
        "tz": pd.Timestamp("2000-01-01", tz="Europe/Paris"),
        "b": not frame.at[3, "b"],
        "c": "green" if frame.at[3, "c"] == "red" else "red",
        "s": "changed",
        "n": None if frame.at[3, "n"] is not pd.NA else 5,
        "o": (-1, "x"),
    }[column]
    changed.at[3, column] = replacement
    assert hash_value(frame) != hash_value(changed)


def test_frame_structure_matters_names_index_and_dtypes() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    assert hash_value(frame) != hash_value(frame.rename(columns={"a": "z"}))
    assert hash_value(frame) != hash_value(frame.set_axis([10, 11]))
    assert hash_value(frame) != hash_value(frame.astype({"a": "int32"}))
    assert hash_value(frame) != hash_value(frame[["b", "a"]])
    assert hash_value(frame) != hash_value(frame.to_numpy())


def test_series_and_index() -> None:
    series = pd.Series([1.0, 2.0], index=["x", "y"], name="s")
    assert hash_value(series) == hash_value(series.copy())
    assert hash_value(series) != hash_value(series.rename("t"))
    assert hash_value(series) != hash_value(pd.Series([1.0, 2.0], index=["x", "z"], name="s"))
    assert hash_value(pd.Index([1, 2])) != hash_value(pd.Index([1, 3]))
    multi = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])
    assert hash_value(multi) == hash_value(pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))
    assert hash_value(multi) != hash_value(pd.MultiIndex.from_tuples([("a", 1), ("b", 3)]))
    assert hash_value(pd.Timestamp("2026-01-01")) != hash_value(pd.Timestamp("2026-01-02"))


def test_column_view_of_a_frame_hashes_like_the_standalone_series() -> None:
    frame = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) * 2})
    assert hash_value(frame["b"]) == hash_value(pd.Series(np.arange(100.0) * 2, name="b"))


# Run in a fresh interpreter: tracemalloc's peak counts every allocation in the process,
# so any other thread of the test run (a fixture's server, a leftover pool) that allocates
# during the window would be blamed on the hasher. The warm-up keeps the lazy first-use
# imports of the numpy/pandas encoders out of the measured window too.
_PEAKS_SCRIPT = """
import json, tracemalloc
import numpy as np, pandas as pd
from resultkit.cache_policies import hash_value

hash_value(np.ones((4, 4))[:, ::2])
hash_value(pd.DataFrame({"a": [1.0], "b": [1]}))

def peak(value):
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        hash_value(value)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

array = np.ones(8 << 20)  # 64 MiB
frame = pd.DataFrame({"a": np.ones(4 << 20), "b": np.arange(4 << 20)})  # 64 MiB
wide = np.ones((2, 8 << 20))[:, ::2]  # a 64 MiB view of 128 MiB
print(json.dumps({"array": peak(array), "memoryview": peak(memoryview(array).cast("B")),
                  "frame": peak(frame), "strided": peak(wide)}))
"""


def test_large_buffers_are_hashed_without_a_full_copy() -> None:
    # numpy reports its allocations to tracemalloc, so a copy of the data would show here.
    result = subprocess.run([sys.executable, "-c", _PEAKS_SCRIPT], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    peaks = json.loads(result.stdout)
    assert peaks["array"] < 1 << 20
    assert peaks["memoryview"] < 1 << 20
    assert peaks["frame"] < 1 << 20
    # A strided view is compacted in bounded blocks, never copied whole.
    assert peaks["strided"] <= _numpy._COPY_CHUNK_BYTES + (1 << 20)


def test_string_columns_with_missing_values() -> None:
    with_missing = pd.Series(["a", None, "b"] * 10)
    assert hash_value(with_missing) == hash_value(pd.Series(["a", None, "b"] * 10))
    assert hash_value(with_missing) != hash_value(pd.Series(["a", "None", "b"] * 10))
    assert hash_value(with_missing) != hash_value(pd.Series(["a", "", "b"] * 10))
