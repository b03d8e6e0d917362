"""Hashing pandas objects column by column from their buffers (imported only when one is hashed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._builtins import pack_len as _pack_len
from ._encoding import _class_identity
from ._numpy import encode_array, encode_numpy

if TYPE_CHECKING:
    from ._encoding import Encoder as Hasher

__all__ = ["encode_pandas"]

# Scalars whose repr is canonical (no addresses) and carries unit, tz and freq.
_SCALARS: tuple[type, ...] = (
    pd.Timestamp,
    pd.Timedelta,
    pd.Period,
    pd.Interval,
    type(pd.NaT),
    type(pd.NA),
    pd.DateOffset,
)


_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)


def encode_pandas(h: Hasher, obj: Any) -> None:
    """Encode a DataFrame, Series, Index, array or scalar from pandas."""
    if isinstance(obj, pd.DataFrame):
        _encode_frame(h, obj)
    elif isinstance(obj, pd.Series):
        h._write(b"PS", _class_identity(type(obj)))
        h._encode(obj.name)
        _encode_index(h, obj.index)
        _encode_values(h, obj.array)
    elif isinstance(obj, pd.Index):
        _encode_index(h, obj)
    elif isinstance(obj, pd.api.extensions.ExtensionArray):
        h._write(b"PA", _class_identity(type(obj)))
        _encode_values(h, obj)
    elif isinstance(obj, (*_SCALARS, pd.tseries.offsets.BaseOffset)):
        h._write(b"PX", _class_identity(type(obj)) + b"|" + repr(obj).encode())
    elif isinstance(obj, np.generic | np.ndarray):
        encode_numpy(h, obj)
    else:
        h._encode_plain_object(obj)


def _encode_frame(h: Hasher, frame: pd.DataFrame) -> None:
    h._write(b"PD", _class_identity(type(frame)))
    _encode_index(h, frame.columns)
    _encode_index(h, frame.index)
    h._update(_pack_len(frame.shape[1]))
    for position in range(frame.shape[1]):
        # iloc by position: duplicate column names are legal and must not collapse.
        _encode_values(h, frame.iloc[:, position].array)


def _encode_index(h: Hasher, index: pd.Index) -> None:
    h._write(b"PI", _class_identity(type(index)))
    h._encode(list(index.names))
    if isinstance(index, pd.RangeIndex):
        h._encode(range(index.start, index.stop, index.step))
    elif isinstance(index, pd.MultiIndex):
        h._update(_pack_len(index.nlevels))
        for level, codes in zip(index.levels, index.codes, strict=True):
            _encode_index(h, level)
            encode_array(h, np.asarray(codes))
    else:
        _encode_values(h, index.array)


def _encode_values(h: Hasher, values: Any) -> None:
    """One column: its dtype, then its data from buffers wherever pandas exposes them."""
    dtype = values.dtype
    h._write(b"PT", str(dtype).encode())
    if isinstance(dtype, np.dtype) or type(values) is pd.arrays.NumpyExtensionArray:
        # numpy-backed columns (numbers, bools, naive datetimes): the buffer, no copy.
        encode_array(h, values.to_numpy(copy=False))
    elif isinstance(dtype, pd.CategoricalDtype):
        h._encode(dtype.ordered)
        _encode_index(h, dtype.categories)
        encode_array(h, np.asarray(values.codes))
    elif isinstance(dtype, pd.DatetimeTZDtype):
        encode_array(h, np.asarray(values.asi8))
    elif isinstance(values, _MASKED):
        # Nullable numbers and bools: the NA mask, then the data with NAs filled by zero.
        encode_array(h, np.asarray(values.isna()))
        numpy_dtype = dtype.numpy_dtype
        encode_array(h, values.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0)))
    else:
        # Strings and other extension types: their numpy form, object columns element-wise
        # (all-str batches take the fast path in encode_array).
        encode_array(h, np.asarray(values.to_numpy()))
