"""Hashing numpy arrays and scalars from their buffers (imported only when one is hashed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._builtins import pack_len as _pack_len
from ._encoding import _COPY_CHUNK_BYTES, _TEXT_BATCH, _class_identity, _Unhashable

if TYPE_CHECKING:
    from ._encoding import Encoder as Hasher

__all__ = ["encode_numpy", "encode_array", "encode_object_values"]


def encode_numpy(h: Hasher, obj: Any) -> None:
    """Encode a numpy array, scalar or dtype."""
    if isinstance(obj, np.ma.MaskedArray):
        h._write(b"G", _class_identity(type(obj)))
        encode_array(h, np.ma.getdata(obj))
        encode_array(h, np.ma.getmaskarray(obj))
    elif isinstance(obj, np.ndarray):
        if type(obj) is not np.ndarray:
            h._write(b"X", _class_identity(type(obj)))
        encode_array(h, obj)
    elif isinstance(obj, np.generic):
        h._write(b"g", _dtype_text(obj.dtype))
        if obj.dtype.kind == "O":
            h._encode(obj.item())
        else:
            h._update(np.asarray(obj).reshape(1).view(np.uint8))
    elif isinstance(obj, np.dtype):
        h._write(b"k", _dtype_text(obj))
    else:
        h._encode_plain_object(obj)


def _dtype_text(dtype: np.dtype[Any]) -> bytes:
    # dtype.str ('<f8', '<M8[ns]') is canonical for plain dtypes; structured ones need their fields.
    if dtype.fields is not None or dtype.subdtype is not None:
        return repr(dtype.descr).encode()
    return dtype.str.encode()


def encode_array(h: Hasher, array: np.ndarray[Any, Any]) -> None:
    """dtype, shape, then the elements in C order, read in place when contiguous."""
    if not array.dtype.isnative:
        # Equal values must hash alike whatever their byte order.
        array = array.astype(array.dtype.newbyteorder("="))
    h._write(b"A", _dtype_text(array.dtype))
    h._update(_pack_len(array.ndim))
    for extent in array.shape:
        h._update(_pack_len(extent))
    if array.dtype.hasobject:
        if array.dtype.kind != "O":
            raise _Unhashable(array, "structured arrays holding Python objects are not supported")
        encode_object_values(h, array.reshape(-1))
    elif array.flags.c_contiguous:
        h._update(array.reshape(-1).view(np.uint8))
    else:
        _encode_strided(h, array)


def _encode_strided(h: Hasher, array: np.ndarray[Any, Any]) -> None:
    # Copy bounded blocks of leading-axis slices: never a full copy of a large view.
    if array.ndim == 0 or array.nbytes <= _COPY_CHUNK_BYTES:
        h._update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
        return
    row_bytes = array[0].nbytes if array.shape[0] else 0
    if row_bytes > _COPY_CHUNK_BYTES:
        for row in array:
            _encode_strided(h, row)
        return
    rows_per_chunk = max(1, _COPY_CHUNK_BYTES // max(row_bytes, 1))
    for start in range(0, array.shape[0], rows_per_chunk):
        block = np.ascontiguousarray(array[start : start + rows_per_chunk])
        h._update(block.reshape(-1).view(np.uint8))
        del block  # free it before the next one is made: at most one block alive


def encode_object_values(h: Hasher, values: np.ndarray[Any, Any]) -> None:
    """Encode a 1-d object array; all-str batches take a fast path with no per-element Python code."""
    h._update(_pack_len(len(values)))
    for start in range(0, len(values), _TEXT_BATCH):
        batch = values[start : start + _TEXT_BATCH]
        if _encode_text_batch(h, batch):
            continue
        h._update(b"E")
        for offset, item in enumerate(batch):
            try:
                h._encode(item)
            except _Unhashable as err:
                err.path.append(f"[{start + offset}]")
                raise


def _encode_text_batch(h: Hasher, batch: np.ndarray[Any, Any]) -> bool:
    """Hash a batch of str in a few C-level passes; False when it holds anything but str.

    str subclasses join like str, so they hash as their text here: a deliberate trade
    for speed, since a str column holding subclass instances is vanishingly rare.
    """
    items = batch.tolist()  # join would build this list anyway, more slowly, from the array
    try:
        text = "\x00".join(items)  # TypeError unless every element is a str
    except TypeError:
        return False
    encoded = text.encode("utf-8", "surrogatepass")
    # UTF-8 has a zero byte only for U+0000; count them with numpy (str.count is slower).
    zero_bytes = len(encoded) - int(np.count_nonzero(np.frombuffer(encoded, dtype=np.uint8)))
    if zero_bytes == len(items) - 1:
        # No element contains NUL, so the separators alone delimit the strings exactly.
        h._update(b"S")
    else:
        # Some element holds a NUL: code-point lengths delimit the strings instead.
        lengths = np.fromiter(map(len, items), dtype="<i8", count=len(items))
        h._update(b"L")
        h._update(lengths.view(np.uint8))
        encoded = "".join(items).encode("utf-8", "surrogatepass")
    h._update(encoded)
    return True
