"""Faster pickling of the numpy arrays that plain pickle handles slowly.

* An object array of ``str`` (pandas string columns) pickles out-of-band instead of
  as one memoized pickle opcode per string:

  - mostly distinct strings: one NUL-separated UTF-8 buffer (:func:`rebuild_str_array`);
  - many repeats (at most a quarter distinct, judged from a sample): each distinct
    string once, plus one small integer code per element (:func:`rebuild_coded_str_array`),
    so a load builds each distinct string once and the rest is one ``take``. Used
    when pandas is imported (its hash table factorizes in C).

  Missing values (``None``, ``NaN``, ``pd.NA``: any one object filling every non-``str``
  slot, or NaNs) ride along as code -1 or a list of positions.
* A ``datetime64``/``timedelta64`` array goes out-of-band like other numeric arrays
  (numpy itself pickles these in-band, copying them into the pickle stream).

The rebuild functions are named in stored payloads: keep their names and arguments
(records written by earlier versions name :func:`rebuild_str_array`).
"""

from __future__ import annotations

import math
import operator
import pickle
import sys
from typing import Any

from ._buffers import release_consumed

__all__ = [
    "fast_pickler_class",
    "rebuild_coded_str_array",
    "rebuild_datetime_array",
    "rebuild_str_array",
    "rebuild_str_array_with_missing",
]

# Smaller object arrays gain nothing worth a second code path.
_STR_ARRAY_FROM = 256
_SEPARATOR = "\x00"
# Strings are coded when at most this share of them is distinct: the load then builds a
# quarter of the strings or fewer, and the factorizing pass at persist time stays cheap.
_DISTINCT_SHARE = 0.25
# Elements drawn (with replacement, fixed seed) to judge how many are distinct; above
# twice this the whole array is not scanned. At 2M elements, all distinct gives ~67
# repeats in the sample and a quarter distinct ~250: well apart.
_SAMPLE = 1 << 14


def _decode(encoded: Any, count: int, what: str) -> list[str]:
    """The ``count`` strings NUL-joined in UTF-8 ``encoded``; ``ValueError`` if it holds another number."""
    text = str(encoded, "utf-8", "surrogatepass")
    release_consumed(encoded)  # copied into ``text``: its pages need not stay resident
    # At most ``count`` pieces: a crafted buffer of separators makes no list of its own size
    # (the surplus stays in the last piece, and is refused).
    items = text.split(_SEPARATOR, count - 1) if count > 0 else []
    if len(items) != count or (count and _SEPARATOR in items[-1]):
        raise ValueError(f"{what}: the string buffer does not hold {count} strings")
    return items


def _object_scalar(value: Any) -> Any:
    """A 0-d object array holding ``value``, so numpy assigns it whole (never as a sequence)."""
    import numpy as np

    scalar = np.empty((), dtype=object)
    scalar[()] = value
    return scalar


def rebuild_str_array(encoded: Any, shape: tuple[int, ...]) -> Any:
    """The object array of ``str`` that :func:`_reduce_array` encoded (NUL-separated UTF-8)."""
    import numpy as np

    items = _decode(encoded, math.prod(shape), "rebuild_str_array")
    return np.fromiter(items, dtype=object, count=len(items)).reshape(shape)


def rebuild_str_array_with_missing(encoded: Any, positions: Any, missing: Any, shape: tuple[int, ...]) -> Any:
    """Mostly distinct strings (NUL-separated UTF-8) with ``missing`` at flat ``positions``."""
    import numpy as np

    items = _decode(encoded, math.prod(shape), "rebuild_str_array_with_missing")
    array = np.fromiter(items, dtype=object, count=len(items))
    del items
    array[_positions(positions)] = _object_scalar(missing)
    return array.reshape(shape)


def rebuild_coded_str_array(
    encoded: Any, count: int, codes: Any, missing: tuple[Any, ...], shape: tuple[int, ...]
) -> Any:
    """``count`` distinct strings (NUL-separated UTF-8) taken by ``codes``; code -1 is ``missing[0]``."""
    import numpy as np

    size = math.prod(shape)
    codes = _positions(codes)
    if codes.size != size or len(missing) > 1 or count < 0:
        raise ValueError(f"rebuild_coded_str_array: {codes.size} codes for shape {shape}")
    table = np.empty(count + len(missing), dtype=object)
    if count:
        table[:count] = _decode(encoded, count, "rebuild_coded_str_array")
    if missing:
        table[count] = missing[0]  # one element: stored as it is, even a sequence
    if not table.size and size:
        raise ValueError("rebuild_coded_str_array: codes but no strings")
    return table.take(codes).reshape(shape)  # out-of-range codes raise IndexError


def _positions(indices: Any) -> Any:
    """``indices`` if it is a flat array of signed integers, else ``ValueError``."""
    import numpy as np

    if type(indices) is not np.ndarray or indices.ndim != 1 or indices.dtype.kind != "i":
        raise ValueError(f"expected a flat array of integer indices, got {type(indices).__name__}")
    return indices


def rebuild_datetime_array(data: Any, dtype: str, shape: tuple[int, ...]) -> Any:
    """A ``datetime64``/``timedelta64`` array viewing ``data`` (writable if ``data`` is)."""
    import numpy as np

    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)


def _reduce_array(array: Any) -> Any:
    """A reduction for the arrays this module speeds up, else ``NotImplemented``."""
    if not array.flags.c_contiguous or array.size == 0:
        return NotImplemented
    kind = array.dtype.kind
    if kind in "mM":
        raw = pickle.PickleBuffer(array.reshape(-1).view("u1"))
        return rebuild_datetime_array, (raw, array.dtype.str, array.shape)
    if kind != "O" or array.size < _STR_ARRAY_FROM:
        return NotImplemented
    return _reduce_str_array(array)


def _reduce_str_array(array: Any) -> Any:
    flat = array.reshape(-1)
    items = flat.tolist()  # join and the type scan run faster over a list
    positions: Any = None
    missing: tuple[Any, ...] = ()
    # Exact str only: a str subclass (a StrEnum member) must come back as itself.
    if operator.countOf(map(type, items), str) != len(items):
        found = _find_missing(items)
        if found is None:
            return NotImplemented
        positions, marker = found
        missing = (marker,)
    pandas = sys.modules.get("pandas")
    if pandas is not None and _mostly_repeated(items, 0 if positions is None else positions.size):
        coded = _reduce_coded(pandas, flat, positions, missing, array.shape)
        if coded is not NotImplemented:
            return coded
    if positions is not None:
        for position in positions.tolist():
            items[position] = ""
    joined = _SEPARATOR.join(items)
    del items
    if joined.count(_SEPARATOR) != array.size - 1:  # a string holds the separator itself
        return NotImplemented
    encoded = pickle.PickleBuffer(joined.encode("utf-8", "surrogatepass"))  # lone surrogates survive
    if positions is None:
        return rebuild_str_array, (encoded, array.shape)
    return rebuild_str_array_with_missing, (encoded, positions, missing[0], array.shape)


def _find_missing(items: list[Any]) -> tuple[Any, Any] | None:
    """(flat positions, the object) when every non-``str`` item is one object, or all are NaN."""
    import numpy as np

    types = np.fromiter(map(type, items), dtype=object, count=len(items))
    positions = np.flatnonzero(np.not_equal(types, _object_scalar(str)))  # elementwise over the types
    others = [items[position] for position in positions.tolist()]
    marker = others[0]
    if all(other is marker for other in others):
        return positions, marker
    if all(type(other) is float and other != other for other in others):
        return positions, marker  # distinct NaN objects: one NaN stands for all
    return None


def _mostly_repeated(items: list[Any], missing_count: int) -> bool:
    """Whether at most :data:`_DISTINCT_SHARE` of the strings in ``items`` are distinct.

    Judged from a sample of the strings (missing values are coded apart either way).
    """
    import numpy as np

    count = len(items) - missing_count
    if len(items) <= 2 * _SAMPLE:
        sample = items
    else:
        drawn = np.sort(np.random.default_rng(0).integers(0, len(items), _SAMPLE)).tolist()  # in memory order
        sample = list(operator.itemgetter(*drawn)(items))
    strings = [item for item in sample if type(item) is str] if missing_count else sample
    distinct = len(set(strings))
    if sample is items or not strings:
        return distinct <= count * _DISTINCT_SHARE
    # Distinct strings expected in the sample if exactly the threshold share were distinct.
    threshold = count * _DISTINCT_SHARE
    return distinct <= threshold * -math.expm1(-len(strings) / threshold)


def _reduce_coded(pandas: Any, flat: Any, positions: Any, missing: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    import numpy as np

    if positions is not None:
        flat = flat.copy()
        flat[positions] = ""
    try:
        codes, uniques = pandas.factorize(flat)
    except Exception:  # anything pandas' hash table refuses: the plain encoding decides
        return NotImplemented
    distinct = uniques.tolist()
    joined = _SEPARATOR.join(distinct)
    if joined.count(_SEPARATOR) != len(distinct) - 1:  # a string holds the separator itself
        return NotImplemented
    if positions is not None:
        codes[positions] = -1
    code_type = next(t for t in (np.int8, np.int16, np.int32, np.int64) if len(distinct) <= np.iinfo(t).max)
    encoded = pickle.PickleBuffer(joined.encode("utf-8", "surrogatepass"))
    return rebuild_coded_str_array, (encoded, len(distinct), codes.astype(code_type), missing, shape)


_CLASSES: dict[type, type] = {}


def fast_pickler_class(base: type[pickle.Pickler]) -> type[pickle.Pickler]:
    """A subclass of ``base`` (``pickle.Pickler`` or cloudpickle's) with the fast array reductions.

    Use it only with protocol 5 and a ``buffer_callback``: the reductions emit ``PickleBuffer``.
    """
    cls = _CLASSES.get(base)
    if cls is not None:
        return cls
    parent_override = getattr(base, "reducer_override", None)

    class FastArrayPickler(base):  # type: ignore[valid-type,misc]
        def reducer_override(self, obj: Any) -> Any:
            numpy = sys.modules.get("numpy")
            # Exact ndarray only: subclasses (masked arrays, matrices) keep their own reduce.
            if numpy is not None and type(obj) is numpy.ndarray:
                reduced = _reduce_array(obj)
                if reduced is not NotImplemented:
                    return reduced
            if parent_override is None:
                return NotImplemented
            return parent_override(self, obj)

    FastArrayPickler.__qualname__ = f"FastArrayPickler[{base.__module__}.{base.__qualname__}]"
    _CLASSES[base] = FastArrayPickler
    return FastArrayPickler
