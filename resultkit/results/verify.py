"""Verifying a record without deserializing it: header, size, checksum and signature.

``ResultStore.verify`` and the ``resultkit verify`` command use this; no code from the
payload runs, so verifying an untrusted pickle is safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import IO

from ..errors import RecordCorruptError, RecordNotFound, ResultkitError, StorageError
from ..storage.base import Storage, validate_key
from ..storage.retry import is_replaced, is_storage_fault
from ._streams import read_into
from .checksum import checksum
from .record import MAX_HEADER_SIZE, ResultRecordMetadata, split_frame

__all__ = ["verify_record"]

#: Payloads stream through the checksum in chunks of this size; the header line must end
#: inside the first chunk, so it is the longest header a reader accepts.
_VERIFY_CHUNK = MAX_HEADER_SIZE
_verify_buffers = threading.local()

#: ``ResultStore._parse``: (header size, metadata, head, requested) from a record's first bytes.
HeaderParser = Callable[[str, bytes, int], tuple[int, ResultRecordMetadata, bytes, int]]


def verify_record(storage: Storage, key: str, parse: HeaderParser) -> tuple[ResultRecordMetadata, int]:
    """Check the record at ``key``; its metadata and size on storage, or ``RecordCorruptError``."""
    validate_key(key)
    buffer = _verify_buffer()
    view = memoryview(buffer)
    try:
        with storage.open_read(key) as stream:
            filled = read_into(stream, view)
            line, header_size = split_frame(buffer, key, filled)
            _, metadata, _, _ = parse(key, line + b"\n", header_size)
            payload_size = filled - header_size
            received = [payload_size]
            actual = checksum(
                _streamed_chunks(stream, view, view[header_size:filled], filled == len(view), received),
                _hash_algorithm(key, metadata.payload_hash),
                metadata.payload_size,
            )
    except FileNotFoundError:
        raise RecordNotFound(f"no record at key {key!r} in {storage.describe()}") from None
    except ResultkitError:
        raise
    except Exception as exc:  # no backend exception escapes a verification
        if not is_storage_fault(exc):
            raise
        changed = "it was replaced while it was verified; verify it again" if is_replaced(exc) else \
            "check the storage is reachable and retry"
        raise StorageError(
            f"{storage.describe()}: could not verify record {key!r}: {type(exc).__name__}: {exc}; {changed}"
        ) from exc
    payload_size = received[0]
    if payload_size != metadata.payload_size:
        raise RecordCorruptError(
            f"record {key!r}: payload is {payload_size} bytes, header says {metadata.payload_size}"
        )
    if actual != metadata.payload_hash:
        raise RecordCorruptError(
            f"record {key!r} payload fails its checksum (stored {metadata.payload_hash}, "
            f"computed {actual}); it was damaged after writing"
        )
    if metadata.is_literal and payload_size:
        raise RecordCorruptError(f"literal record {key!r} has a non-empty payload")
    return metadata, header_size + payload_size


def _verify_buffer() -> bytearray:
    # One buffer per thread, reused: allocating (and zeroing) 1 MiB per record would
    # dominate verifying many small records.
    buffer: bytearray | None = getattr(_verify_buffers, "buffer", None)
    if buffer is None:
        buffer = _verify_buffers.buffer = bytearray(_VERIFY_CHUNK)
    return buffer


def _hash_algorithm(key: str, payload_hash: str) -> str:
    algorithm, sep, _ = payload_hash.partition(":")
    if not sep:
        raise RecordCorruptError(f"record {key!r} has a malformed payload_hash {payload_hash!r}")
    return algorithm


def _streamed_chunks(stream: IO[bytes], view: memoryview, first: memoryview, more: bool,
                     received: list[int]) -> Iterator[memoryview]:
    """``first``, then (if ``more``) the rest of ``stream`` read into ``view``, chunk by chunk.

    Each chunk overwrites the last, so the consumer must use it before asking for the next.
    """
    if len(first):
        yield first
    while more:
        count = read_into(stream, view)
        received[0] += count
        if count:
            yield view[:count]
        more = count == len(view)
