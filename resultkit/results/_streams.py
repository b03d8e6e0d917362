"""Reading from binary streams into caller-owned buffers (shared by reads and verification)."""

from __future__ import annotations

from typing import IO

__all__ = ["read_exactly", "read_into"]


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
