"""Reading from binary streams into caller-owned buffers (shared by reads and verification),
and streaming a large record's payload with its bounds checked before anything is allocated.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from typing import IO

from .._types import Buffer
from ..errors import RecordCorruptError, ResultkitError, StorageError
from ..serializers._buffers import allocate_payload_buffer
from ..storage.base import Storage
from ..storage.parallel import ObjectHead
from ..storage.retry import is_replaced, is_storage_fault

__all__ = ["MAP_FROM", "RecordReplaced", "read_exactly", "read_growing", "read_into", "read_payload",
           "stream_size"]

#: Payloads from this size are mapped from a local file instead of read (``Storage.map_read``).
#: Measured on a page-cache-hot 2-core VM: from 64 to 512 KiB a read and a mapping cost the
#: same; at 1 MiB mapping (and hashing) the file is 2.6x faster, at 256 MiB 5x.
MAP_FROM = 1 << 20


class RecordReplaced(Exception):
    """The record changed between two reads of one load; the load is retried."""


def read_payload(storage: Storage, key: str, head: bytes, header_size: int, payload_size: int) -> Buffer:
    """The payload of the record at ``key``, of which ``head`` (``header_size`` bytes of header
    line, then the payload's start) was read already, into one buffer.

    No backend exception escapes: an object replaced while it streams (s3fs's
    ``FileExpired``, or a header that changed) is :class:`RecordReplaced` (read it again),
    other faults ``StorageError``. The object's real size is checked against
    ``payload_size`` before the buffer is allocated.
    """
    try:
        if isinstance(head, ObjectHead):
            buffer = _read_remote_payload(storage, key, head, header_size, payload_size)
            if buffer is not None:
                return buffer
        header = head[:header_size]
        if payload_size >= MAP_FROM:
            mapped = _map_payload(storage, key, header, payload_size)
            if mapped is not None:
                return mapped
        return _stream_payload(storage, key, header, payload_size)
    except (ResultkitError, RecordReplaced, FileNotFoundError):
        raise
    except Exception as exc:
        if is_replaced(exc):
            raise RecordReplaced from exc
        if not is_storage_fault(exc):
            raise  # a bug, with its traceback
        raise StorageError(
            f"{storage.describe()}: could not stream the payload of record {key!r}: "
            f"{type(exc).__name__}: {exc}; retry, or check the storage is reachable"
        ) from exc


def _read_remote_payload(storage: Storage, key: str, head: ObjectHead, header_size: int,
                         payload_size: int) -> Buffer | None:
    """The payload by the storage's parallel ranged reads, the part in ``head`` copied, not fetched again."""
    if head.size != header_size + payload_size:
        raise RecordCorruptError(
            f"record {key!r} is {head.size} bytes but its header says {header_size} + {payload_size} "
            "(payload_size); it is truncated or damaged"
        )
    buffer = allocate_payload_buffer(payload_size)
    view = memoryview(buffer)
    have = len(head) - header_size
    view[:have] = memoryview(head)[header_size:]
    if not storage.read_rest_into(key, head, view[have:]):
        return None
    return buffer


def _map_payload(storage: Storage, key: str, header: bytes, payload_size: int) -> memoryview | None:
    """The payload as a copy-on-write view into the mapped record file, or None if it cannot map.

    The storage maps only a file of exactly header + ``payload_size`` bytes (checked with
    ``fstat`` first), so no access past its end can fault; anything else is left to the
    streamed read, which reports it.
    """
    mapped = storage.map_read(key, len(header) + payload_size)
    if mapped is None:
        return None
    if mapped[: len(header)] != header:
        raise RecordReplaced
    return mapped[len(header) :]


def _stream_payload(storage: Storage, key: str, header: bytes, payload_size: int) -> Buffer:
    with storage.open_read(key) as stream:
        if read_exactly(stream, len(header)) != header:
            raise RecordReplaced
        # The header's payload_size is checked against the object's real size before
        # anything is allocated, so a header claiming 2**40 bytes costs nothing.
        real_size = stream_size(stream)
        buffer: Buffer
        if real_size is None:  # unknown: allocate only as bytes arrive
            buffer = read_growing(stream, payload_size)
            received = len(buffer)
        else:
            if real_size != len(header) + payload_size:
                raise RecordCorruptError(
                    f"record {key!r} is {real_size} bytes but its header says "
                    f"{len(header)} + {payload_size} (payload_size); it is truncated or damaged"
                )
            # Untouched pages, filled once by readinto (see allocate_payload_buffer).
            buffer = allocate_payload_buffer(payload_size)
            received = read_into(stream, memoryview(buffer))
        if received < payload_size:
            raise RecordCorruptError(
                f"record {key!r} is truncated: payload has {received} of {payload_size} bytes"
            )
        if stream.read(1):
            raise RecordCorruptError(f"record {key!r} is longer than its header says")
    return buffer


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
