"""Hypothesis strategies for nested values of every type the serializers promise to round-trip."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import pathlib
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pydantic
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


class Colour(enum.Enum):
    RED = "red"
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    label: str = ""


@dataclasses.dataclass
class Box:
    items: list[Any]
    corner: Point | None = None


class Reading(pydantic.BaseModel):
    sensor: str
    value: float
    taken: dt.datetime | None = None
    where: Point | None = None


_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
_datetime_zones = st.none() | st.just(dt.timezone.utc) | _offsets | st.timezones()

floats = st.floats(allow_nan=False)
datetimes = st.datetimes(timezones=_datetime_zones)
times = st.times(timezones=st.none() | st.just(dt.timezone.utc) | _offsets)
decimals = st.decimals(allow_nan=False)
points = st.builds(Point, x=st.integers(), y=floats, label=st.text(max_size=5))

# Values usable as set members and dict keys.
hashable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | floats
    | st.text()
    | st.binary()
    | st.dates()
    | datetimes
    | times
    | st.timedeltas()
    | st.uuids()
    | decimals
    | st.sampled_from(Colour)
    | st.sampled_from(Level)
    | points
    | st.builds(pathlib.PurePosixPath, st.text(max_size=10))
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)

_numpy_dtypes = st.sampled_from(
    [np.dtype(name) for name in ("f8", "f4", "i8", "i2", "u1", "?", "c16", "<U4", "S3", "M8[ns]", ">i4")]
)
numpy_arrays = _numpy_dtypes.flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
# Lone surrogates cannot be written as UTF-8 JSON text (JSONSerializer refuses them).
_no_surrogates = st.characters(exclude_categories=["Cs"])
numpy_scalars = _numpy_dtypes.flatmap(
    lambda dtype: hnp.arrays(
        dtype, (), elements=hnp.from_dtype(dtype, alphabet=_no_surrogates) if dtype.kind == "U" else None
    ).map(lambda a: a[()])
)

# Built-in exception types, whose arguments are themselves values (JSON and pickle both keep them).
exceptions = (
    st.builds(ValueError, st.text(max_size=8))
    | st.builds(KeyError, hashables)
    | st.builds(RuntimeError, st.text(max_size=8), st.integers())
    | st.builds(lambda errno, text: OSError(errno, text), st.integers(1, 200), st.text(max_size=8))
)

leaves = (
    hashables
    | exceptions
    | st.builds(bytearray, st.binary(max_size=20))
    | st.builds(pathlib.Path, st.text(max_size=10))
    | numpy_arrays
    | numpy_scalars
    | st.builds(Reading, sensor=st.text(max_size=5), value=floats, taken=st.none() | datetimes, where=st.none() | points)
)

_str_keys = st.text(max_size=6) | st.just("__rk__")


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(_str_keys, inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.builds(Box, items=st.lists(inner, max_size=3), corner=st.none() | points)
    )


values = st.recursive(leaves, _containers, max_leaves=20)


def assert_same(got: Any, want: Any, path: str = "value") -> None:
    """Deep equality that also demands equal types (1 vs 1.0 vs True differ) and equal order."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, np.ndarray):
        assert (got.dtype, got.shape) == (want.dtype, want.shape), path
        if want.dtype.hasobject:
            assert_same(got.tolist(), want.tolist(), path)
        else:
            assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), path
    elif isinstance(want, np.generic):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), path
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, dict):
        assert len(got) == len(want), path
        for (gk, gv), (wk, wv) in zip(got.items(), want.items(), strict=True):
            assert_same(gk, wk, f"{path} key {wk!r}")
            assert_same(gv, wv, f"{path}[{wk!r}]")
    elif isinstance(want, set | frozenset):
        assert got == want, path
        for w in want:
            assert_same(next(g for g in got if g == w), w, f"{path} member {w!r}")
    elif dataclasses.is_dataclass(want):
        for field in dataclasses.fields(want):
            assert_same(getattr(got, field.name), getattr(want, field.name), f"{path}.{field.name}")
    elif isinstance(want, pydantic.BaseModel):
        assert got == want, path
        for name in type(want).model_fields:
            assert_same(getattr(got, name), getattr(want, name), f"{path}.{name}")
    elif isinstance(want, BaseException):  # exceptions compare by identity: compare type and args
        assert_same(got.args, want.args, f"{path}.args")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), path
    elif isinstance(want, Decimal):
        assert str(got) == str(want), path
    elif isinstance(want, dt.datetime | dt.time):
        assert got == want and got.fold == want.fold and got.utcoffset() == want.utcoffset(), path
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


__all__ = ["Box", "Colour", "Level", "Point", "Reading", "assert_same", "hashables", "uuid", "values"]
