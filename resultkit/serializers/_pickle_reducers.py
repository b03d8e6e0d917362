"""Faster pickling of the numpy arrays that plain pickle handles slowly.

* An object array holding only ``str`` (pandas string columns) pickles as one UTF-8
  buffer, out-of-band, instead of one memoized pickle opcode per string: about 4x
  less CPU, and no memo table of every string.
* A ``datetime64``/``timedelta64`` array goes out-of-band like other numeric arrays
  (numpy itself pickles these in-band, copying them into the pickle stream).

The rebuild functions are named in stored payloads: keep their names and arguments.
"""

from __future__ import annotations

import operator
import pickle
import sys
from typing import Any

from ._buffers import release_consumed

__all__ = ["fast_pickler_class", "rebuild_datetime_array", "rebuild_str_array"]

# Smaller object arrays gain nothing worth a second code path.
_STR_ARRAY_FROM = 256
_SEPARATOR = "\x00"


def rebuild_str_array(encoded: Any, shape: tuple[int, ...]) -> Any:
    """The object array of ``str`` that :func:`_reduce_array` encoded (NUL-separated UTF-8)."""
    import numpy as np

    text = str(encoded, "utf-8", "surrogatepass")
    release_consumed(encoded)  # copied into ``text``: its pages need not stay resident
    items = text.split(_SEPARATOR)
    del text
    return np.fromiter(items, dtype=object, count=len(items)).reshape(shape)


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
    items = array.reshape(-1).tolist()  # join and the type scan run faster over a list
    # Exact str only: a str subclass (a StrEnum member) must come back as itself.
    if operator.countOf(map(type, items), str) != len(items):
        return NotImplemented
    joined = _SEPARATOR.join(items)
    del items
    if joined.count(_SEPARATOR) != array.size - 1:  # a string holds the separator itself
        return NotImplemented
    encoded = joined.encode("utf-8", "surrogatepass")  # lone surrogates survive the round trip
    return rebuild_str_array, (pickle.PickleBuffer(encoded), array.shape)


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
