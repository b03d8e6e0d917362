"""Encoders for builtin and standard-library value types: the hasher's exact-type table."""

from __future__ import annotations

import array
import collections
import datetime as dt
import decimal
import pathlib
import re
import struct
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._encoding import Encoder as Hasher

__all__ = ["BUILTIN_BASES", "EXACT_ENCODERS", "pack_complex", "pack_float", "pack_len"]

pack_len = struct.Struct("<Q").pack
pack_float = struct.Struct("<d").pack
pack_complex = struct.Struct("<dd").pack


def _encode_float(h: Hasher, number: float) -> None:
    h._update(b"f")
    h._update(pack_float(number))


def _encode_complex(h: Hasher, number: complex) -> None:
    h._update(b"c")
    h._update(pack_complex(number.real, number.imag))


def _encode_datetime(h: Hasher, value: dt.datetime) -> None:
    zone = value.tzinfo
    h._write(b"D", f"{value.isoformat()}|{value.fold}|{zone!s}".encode())


def _encode_time(h: Hasher, value: dt.time) -> None:
    h._write(b"t", f"{value.isoformat()}|{value.fold}|{value.tzinfo!s}".encode())


def _encode_timedelta(h: Hasher, value: dt.timedelta) -> None:
    h._write(b"q", f"{value.days},{value.seconds},{value.microseconds}".encode())


def _encode_range(h: Hasher, value: range) -> None:
    h._update(b"r")
    for part in (value.start, value.stop, value.step):
        h._encode_int(part)


def _encode_slice(h: Hasher, value: slice) -> None:
    h._update(b"/")
    for part in (value.start, value.stop, value.step):
        h._encode(part)


def _encode_pattern(h: Hasher, value: re.Pattern[Any]) -> None:
    h._update(b"x")
    h._encode(value.pattern)
    h._encode_int(value.flags)


def _encode_typed_array(h: Hasher, value: array.array[Any]) -> None:
    h._write(b"w", value.typecode.encode())
    h._encode_buffer(b"a", value)


def _encode_deque(h: Hasher, value: collections.deque[Any]) -> None:
    h._update(b"Y")
    h._encode(value.maxlen)
    h._encode_sequence(b"[", value)


EXACT_ENCODERS: dict[type, Callable[[Hasher, Any], None]] = {
    type(None): lambda h, _: h._update(b"N"),
    type(Ellipsis): lambda h, _: h._update(b"."),
    bool: lambda h, v: h._update(b"T" if v else b"F"),
    int: lambda h, v: h._encode_int(v),
    float: _encode_float,
    complex: _encode_complex,
    str: lambda h, v: h._encode_str(v),
    bytes: lambda h, v: h._encode_buffer(b"b", v),
    bytearray: lambda h, v: h._encode_buffer(b"a", v),
    memoryview: lambda h, v: h._encode_buffer(b"v", v),
    tuple: lambda h, v: h._encode_sequence(b"(", v),
    list: lambda h, v: h._encode_sequence(b"[", v),
    dict: lambda h, v: h._encode_mapping(b"{", v),
    set: lambda h, v: h._encode_unordered(b"<", v, len(v), v),
    frozenset: lambda h, v: h._encode_unordered(b">", v, len(v), v),
    dt.datetime: _encode_datetime,
    dt.date: lambda h, v: h._write(b"y", v.isoformat().encode()),
    dt.time: _encode_time,
    dt.timedelta: _encode_timedelta,
    uuid.UUID: lambda h, v: h._write(b"u", v.bytes),
    decimal.Decimal: lambda h, v: h._write(b"$", str(v).encode()),
    range: _encode_range,
    slice: _encode_slice,
    re.Pattern: _encode_pattern,
    array.array: _encode_typed_array,
    collections.deque: _encode_deque,
    dt.timezone: lambda h, v: h._write(b"z", str(v).encode()),
}
for _path_type in (pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath, pathlib.WindowsPath):
    # Concrete and pure paths hash alike; the text is normalised to "/" separators.
    EXACT_ENCODERS[_path_type] = lambda h, v: h._write(b"~", v.as_posix().encode())

# Subclasses of these hash as the base value plus the class identity (and any __dict__).
BUILTIN_BASES = tuple(t for t in EXACT_ENCODERS if t not in (type(None), type(Ellipsis), bool))
