"""DataFrames through PickleSerializer: every column kind round-trips, string columns take the
cheap encodings (coded when repeated, missing values out of the stream), records written
before the coded encoding still load, and crafted string buffers are refused."""

from __future__ import annotations

import enum
import math
import pickle
import pickletools
import shutil
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resultkit.errors import SerializationError
from resultkit.results import ResultStore
from resultkit.serializers import PickleSerializer
from resultkit.serializers._pickle_reducers import (
    rebuild_coded_str_array,
    rebuild_str_array,
    rebuild_str_array_with_missing,
)
from resultkit.storage import LocalStorage

N = 3_000  # above the size where string arrays take the fast path
DATA = Path(__file__).parent / "data"


class Size(str, enum.Enum):
    SMALL = "small"


def round_trip(value: object) -> Any:
    serializer = PickleSerializer()
    return serializer.loads(bytearray(serializer.dumps(value)))


def rebuilders(value: object) -> list[str]:
    """The rebuild functions of ours that the pickle stream of ``value`` names."""
    chunks = PickleSerializer().dumps_chunks(value)
    names = []
    for opcode, arg, _ in pickletools.genops(bytes(chunks[1])):
        if opcode.name == "SHORT_BINUNICODE" and str(arg).startswith("rebuild_"):
            names.append(str(arg))
    return names


def user_names(n: int = N, distinct: int = 97) -> list[str]:
    return [f"user-{i % distinct}" for i in range(n)]


def unique_codes(n: int = N) -> list[str]:
    return [f"{i * 2654435761 % 2**32:08x}" for i in range(n)]


def same_items(got: np.ndarray, want: np.ndarray) -> None:
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
    assert [type(x) for x in got.flat] == [type(x) for x in want.flat]
    assert [_comparable(x) for x in got.flat] == [_comparable(x) for x in want.flat]


def _comparable(item: object) -> object:
    """``item``, with NaN (never equal to itself) and pd.NA (no truth value) made comparable."""
    if item is pd.NA:
        return "<NA>"
    return "<NaN>" if isinstance(item, float) and math.isnan(item) else item


# -- every column kind round-trips -------------------------------------------------------------


COLUMNS: dict[str, Callable[[int], Any]] = {
    "int64": lambda n: np.arange(n, dtype=np.int64),
    "float64-with-nan": lambda n: np.where(np.arange(n) % 7 == 0, np.nan, np.arange(n) * 0.5),
    "bool": lambda n: np.arange(n) % 3 == 0,
    "nullable-int": lambda n: pd.array([None if i % 5 == 0 else i for i in range(n)], dtype="Int64"),
    "datetime": lambda n: pd.date_range("2020-01-01", periods=n, freq="s"),
    "datetime-tz-nat": lambda n: pd.Series(pd.date_range("2020-01-01", periods=n, freq="h", tz="Europe/Paris"))
    .where(np.arange(n) % 4 != 0),
    "timedelta": lambda n: pd.to_timedelta(np.arange(n), unit="ms"),
    "category-of-str": lambda n: pd.Categorical(user_names(n, 5)),
    "category-many-str": lambda n: pd.Categorical(unique_codes(n)),
    "category-with-na": lambda n: pd.Categorical([None if i % 9 == 0 else f"k{i % 4}" for i in range(n)]),
    "str-repeated": lambda n: pd.Series(user_names(n), dtype="str"),
    "str-unique": lambda n: pd.Series(unique_codes(n), dtype="str"),
    "str-repeated-na": lambda n: pd.Series([None if i % 10 == 0 else s for i, s in enumerate(user_names(n))], dtype="str"),
    "str-unique-na": lambda n: pd.Series([None if i % 10 == 0 else s for i, s in enumerate(unique_codes(n))], dtype="str"),
    "str-all-na": lambda n: pd.Series([None] * n, dtype="str"),
    "str-unicode-empty": lambda n: pd.Series([["", "żółw", "名前", "🎉 x", "\ud800", " "][i % 6] for i in range(n)], dtype="str"),
    "string-pd-na": lambda n: pd.Series([None if i % 3 == 0 else f"s{i % 11}" for i in range(n)], dtype="string"),
    "object-repeated": lambda n: pd.Series(user_names(n), dtype=object),
    "object-unique-none": lambda n: pd.Series([None if i % 8 == 0 else s for i, s in enumerate(unique_codes(n))], dtype=object),
    "object-mixed": lambda n: pd.Series([i if i % 2 else f"s{i % 5}" for i in range(n)], dtype=object),
}


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_every_column_kind_round_trips(kind: str) -> None:
    frame = pd.DataFrame({kind: COLUMNS[kind](N), "other": np.arange(N)})
    pd.testing.assert_frame_equal(round_trip(frame), frame)


def test_one_frame_of_every_kind_with_a_string_index() -> None:
    frame = pd.DataFrame({kind: make(N) for kind, make in COLUMNS.items()})
    frame.index = pd.Index(unique_codes(N), dtype="str", name="code")
    got = round_trip(frame)
    pd.testing.assert_frame_equal(got, frame)
    assert got._mgr.nblocks == frame._mgr.nblocks  # blocks stay as consolidated as they were


def test_consolidated_object_block_of_several_string_columns() -> None:
    frame = pd.DataFrame({"a": pd.Series(user_names(), dtype=object),
                          "b": pd.Series([None if i % 6 == 0 else s for i, s in enumerate(user_names(N, 5))], dtype=object),
                          "c": pd.Series(unique_codes(), dtype=object)})
    assert frame._mgr.nblocks == 1  # one 2-D object block, encoded as a whole (a third distinct: plain)
    assert rebuilders(frame) == ["rebuild_str_array_with_missing"]
    pd.testing.assert_frame_equal(round_trip(frame), frame)


def test_multiindex_of_strings_and_numbers() -> None:
    index = pd.MultiIndex.from_arrays([user_names(N, 13), np.arange(N) % 17, unique_codes(N)],
                                      names=["user", "bucket", "code"])
    frame = pd.DataFrame({"value": np.arange(N) * 1.5, "name": pd.Series(user_names(N), dtype="str").values},
                         index=index)
    pd.testing.assert_frame_equal(round_trip(frame), frame)


@pytest.mark.parametrize("rows", [0, 1, 255, 256])
def test_empty_and_small_frames(rows: int) -> None:
    frame = pd.DataFrame({kind: make(rows) for kind, make in COLUMNS.items() if kind != "str-all-na"})
    pd.testing.assert_frame_equal(round_trip(frame), frame)
    empty = pd.DataFrame({"s": pd.Series([], dtype="str"), "o": pd.Series([], dtype=object)})
    pd.testing.assert_frame_equal(round_trip(empty), empty)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.one_of(st.text(max_size=6), st.none()), min_size=1, max_size=40),
    size=st.integers(256, 1500),
    nan_missing=st.booleans(),
)
def test_string_arrays_with_missing_values_round_trip(values: list[str | None], size: int, nan_missing: bool) -> None:
    items = [float("nan") if nan_missing and v is None else v for v in (values * size)[:size]]
    array = np.array(items, dtype=object)
    same_items(round_trip(array), array)


# -- which encoding is chosen ----------------------------------------------------------------------


def test_repeated_strings_are_coded_each_distinct_string_once() -> None:
    array = np.array(user_names(100_000, 1_000), dtype=object)  # above the sampled size
    assert rebuilders(array) == ["rebuild_coded_str_array"]
    chunks = PickleSerializer().dumps_chunks(array)
    distinct = "\x00".join(dict.fromkeys(array.tolist())).encode()
    assert any(bytes(chunk) == distinct for chunk in chunks)
    assert sum(memoryview(c).nbytes for c in chunks) < len("\x00".join(array.tolist())) / 3  # int16 codes
    got = round_trip(array)
    same_items(got, array)
    assert got[0] is got[1_000]  # each distinct string is built once and shared


def test_mostly_distinct_strings_keep_the_plain_encoding() -> None:
    assert rebuilders(np.array(unique_codes(100_000), dtype=object)) == ["rebuild_str_array"]
    # A third distinct (above the quarter where coding pays): plain.
    assert rebuilders(np.array(user_names(90_000, 30_000), dtype=object)) == ["rebuild_str_array"]
    assert rebuilders(np.array(user_names(1_000, 500), dtype=object)) == ["rebuild_str_array"]  # counted exactly
    assert rebuilders(np.array(user_names(1_000, 200), dtype=object)) == ["rebuild_coded_str_array"]


def test_missing_values_do_not_count_as_repeats() -> None:
    items = [None if i % 3 == 0 else s for i, s in enumerate(unique_codes(100_000))]
    assert rebuilders(np.array(items, dtype=object)) == ["rebuild_str_array_with_missing"]


@pytest.mark.parametrize("marker", [None, np.nan, pd.NA, Size.SMALL], ids=["None", "nan", "pd.NA", "str-enum"])
def test_the_missing_object_comes_back_as_itself(marker: object) -> None:
    for strings in (user_names(), unique_codes()):
        array = np.array([marker if i % 4 == 0 else s for i, s in enumerate(strings)], dtype=object)
        got = round_trip(array)
        same_items(got, array)
        assert all(got[i] is marker for i in range(0, N, 4)) or marker is np.nan


def test_distinct_nan_objects_and_mixed_markers() -> None:
    nans = np.array([float("nan") if i % 4 == 0 else s for i, s in enumerate(user_names())], dtype=object)
    assert rebuilders(nans) == ["rebuild_coded_str_array"]
    same_items(round_trip(nans), nans)
    mixed = np.array([[None, np.nan][(i // 4) % 2] if i % 4 == 0 else s for i, s in enumerate(user_names())], dtype=object)
    assert rebuilders(mixed) == []  # None and NaN in one array: plain pickle keeps both
    same_items(round_trip(mixed), mixed)


def test_without_pandas_imported_repeats_use_the_plain_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "pandas")
    array = np.array(user_names(), dtype=object)
    assert rebuilders(array) == ["rebuild_str_array"]
    same_items(round_trip(array), array)


def test_encoding_is_deterministic() -> None:
    frame = pd.DataFrame({"user": pd.Series(user_names(200_000, 5_000), dtype="str")})
    assert PickleSerializer().dumps(frame) == PickleSerializer().dumps(frame)


def test_numeric_blocks_stay_views_of_the_payload() -> None:
    frame = pd.DataFrame({"id": np.arange(N), "value": np.arange(N) * 0.5,
                          "when": pd.date_range("2020-01-01", periods=N, freq="s"),
                          "user": pd.Series(user_names(), dtype="str"), "code": pd.Series(unique_codes(), dtype="str")})
    payload = bytearray(PickleSerializer().dumps(frame))
    got = PickleSerializer().loads(payload)
    whole = np.frombuffer(payload, dtype=np.uint8)
    for block in got._mgr.blocks:
        values = np.asarray(getattr(block.values, "_ndarray", block.values))
        if values.dtype.kind in "iufmM":
            assert np.shares_memory(values, whole), block.dtype


# -- compatibility and crafted payloads --------------------------------------------------------


def old_format_frame() -> pd.DataFrame:
    """The frame stored in data/str_columns_0.1.0.record (written before coded strings)."""
    n = 600
    return pd.DataFrame(
        {
            "name": pd.Series([f"user-{i % 7}" for i in range(n)], dtype="str"),
            "code": pd.Series([f"{i * 2654435761 % 2**32:08x}-é" for i in range(n)], dtype="str"),
            "obj": pd.Series([f"o{i % 3}" for i in range(n)], dtype=object),
            "when": pd.date_range("2020-01-01", periods=n, freq="s"),
            "value": np.arange(n) * 0.5,
        },
        index=pd.Index([f"row-{i}" for i in range(n)], dtype="str", name="row"),
    )


def test_a_record_written_before_coded_strings_still_loads(tmp_path: Path) -> None:
    shutil.copy(DATA / "str_columns_0.1.0.record", tmp_path / "frame")
    record = ResultStore(LocalStorage(tmp_path)).read("frame")
    assert record.metadata.resultkit_version == "0.1.0"
    pd.testing.assert_frame_equal(record.result, old_format_frame())


class Crafted:
    """Pickles as a call of ``function(*args)``: a payload as a crafted record would hold it."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.function, self.args


def load_crafted(function: Callable[..., Any], *args: Any) -> Any:
    serializer = PickleSerializer()
    return serializer.loads(bytearray(serializer.dumps(Crafted(function, *args))))


def test_old_encoding_still_decodes() -> None:
    strings = user_names()
    got = load_crafted(rebuild_str_array, pickle.PickleBuffer("\x00".join(strings).encode()), (N,))
    same_items(got, np.array(strings, dtype=object))


@pytest.mark.parametrize(
    ("function", "args"),
    [
        pytest.param(rebuild_str_array, (b"a\x00b", (3,)), id="plain-too-few-strings"),
        pytest.param(rebuild_str_array, (b"\xff\xfe", (1,)), id="plain-not-utf8"),
        pytest.param(rebuild_str_array_with_missing, (b"a\x00b", np.array([0]), None, (3,)), id="missing-count"),
        pytest.param(rebuild_str_array_with_missing, (b"a\x00b", np.array([5]), None, (2,)), id="missing-position"),
        pytest.param(rebuild_str_array_with_missing, (b"a\x00b", np.array([0.5]), None, (2,)),
                     id="missing-float-positions"),
        pytest.param(rebuild_coded_str_array, (b"a\x00b", 3, np.array([0, 1], np.int8), (), (2,)), id="coded-count"),
        pytest.param(rebuild_coded_str_array, (b"a\x00b", 2, np.array([0, 2], np.int8), (), (2,)), id="coded-range"),
        pytest.param(rebuild_coded_str_array, (b"a\x00b", 2, np.array([0, 1], np.int8), (), (3,)), id="coded-shape"),
        pytest.param(rebuild_coded_str_array, (b"a\x00b", 2, np.array([0.0, 1.0]), (), (2,)), id="coded-float"),
        pytest.param(rebuild_coded_str_array, (b"", 0, np.array([0, 0], np.int8), (), (2,)), id="coded-no-strings"),
        pytest.param(rebuild_coded_str_array, (b"a", 1, np.array([0], np.int8), (1, 2), (1,)), id="coded-two-missing"),
    ],
)
def test_crafted_string_buffers_are_refused(function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with pytest.raises(SerializationError, match="cannot unpickle the payload"):
        load_crafted(function, *args)


@pytest.mark.parametrize("function", ["plain", "missing", "coded"])
def test_a_buffer_of_separators_claiming_few_strings_allocates_nothing_of_its_size(function: str) -> None:
    bomb = pickle.PickleBuffer(b"\x00" * (8 << 20))  # 8M empty strings if split: ~64 MiB of pointers
    calls: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
        "plain": (rebuild_str_array, (bomb, (3,))),
        "missing": (rebuild_str_array_with_missing, (bomb, np.array([0]), None, (3,))),
        "coded": (rebuild_coded_str_array, (bomb, 3, np.array([0, 1, 2], np.int8), (), (3,))),
    }
    payload = bytearray(PickleSerializer().dumps(Crafted(calls[function][0], *calls[function][1])))
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError):
            PickleSerializer().loads(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(payload)  # the decoded text and its refused surplus; a list would be 64 MiB


def test_crafted_shapes_claiming_huge_arrays_are_refused_before_allocating() -> None:
    huge = (10**12,)
    for function, args in [
        (rebuild_str_array, (b"a\x00b", huge)),
        (rebuild_str_array_with_missing, (b"a\x00b", np.array([0]), None, huge)),
        (rebuild_coded_str_array, (b"a\x00b", 2, np.array([0, 1], np.int8), (None,), huge)),
    ]:
        with pytest.raises(SerializationError):
            load_crafted(function, *args)
