"""Reading from binary streams into caller-owned buffers (shared by reads and verification)."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from typing import IO

__all__ = ["read_exactly", "read_growing", "read_into", "stream_size"]


def stream_size(stream: IO[bytes]) -> int | None:
    """The total size of the object behind ``stream``, or None when it cannot be known cheaply.

    fsspec files carry ``size`` (from the listing or HEAD that opened them), local files
    answer ``fstat``, and seekable streams (``BytesIO``, diskcache files) seek to their end.
    """
    size = getattr(stream, "size", None)
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        st = os.fstat(stream.fileno())
        if stat.S_ISREG(st.st_mode):
            return st.st_size
    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        if stream.seekable():
            position = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(position)
            return end
    return None


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes from ``stream`` (fewer only at end of stream)."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def read_growing(stream: IO[bytes], size: int, step: int = 8 << 20) -> bytearray:
    """Up to ``size`` bytes from a stream of unknown length, allocating only as data arrives."""
    buffer = bytearray()
    while len(buffer) < size:
        part = stream.read(min(step, size - len(buffer)))
        if not part:
            break
        buffer += part
    return buffer


def read_into(stream: IO[bytes], view: memoryview) -> int:
    """Fill ``view`` from ``stream``; returns how many bytes arrived (less at end of stream)."""
    filled, total = 0, len(view)
    readinto = getattr(stream, "readinto", None)
    while filled < total:
        if readinto is not None:
            count = readinto(view[filled:])
        else:  # streams without readinto: one bounded copy per read
            part = stream.read(min(total - filled, 8 << 20))
            count = len(part)
            view[filled : filled + count] = part
        if not count:
            break
        filled += count
    return filled
