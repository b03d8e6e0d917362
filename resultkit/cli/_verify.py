"""``resultkit verify``: check every record's size, checksum and signature.

Payloads are streamed through the checksum in fixed-size chunks and never
deserialized, so verifying a store of pickles runs no code from it and needs
no more memory than one chunk per worker.
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..errors import RecordCorruptError, ResultkitError
from ..results.checksum import BLAKE3, checksum
from ..results.record import ResultRecordMetadata, decode_header
from ..results.signing import resolve_signing_key, verify_header
from ..storage.base import Storage
from ._output import (
    EXIT_FAILURE,
    EXIT_OK,
    format_size,
    print_json,
    print_table,
    say,
    with_progress,
)
from ._scan import parallel_map
from ._target import open_storage

__all__ = ["VerifyOutcome", "cmd_verify", "verify_record"]

# Also the longest header accepted: the header line must end inside the first chunk.
_CHUNK = 1 << 20
_buffers = threading.local()

SignatureState = Literal["valid", "unchecked", "unsigned", "-"]


class _ReadIntoStream(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True)
class VerifyOutcome:
    """The verdict on one record: ``problem`` is None when it is intact."""

    key: str
    size: int | None
    problem: str | None
    signature: SignatureState = "-"

    @property
    def ok(self) -> bool:
        """Whether the record passed every check."""
        return self.problem is None


def _fill(stream: _ReadIntoStream, view: memoryview) -> int:
    """Read into ``view`` until it is full or the stream ends; the number of bytes read."""
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled


def _payload_chunks(stream: _ReadIntoStream, view: memoryview, start: int, filled: int,
                    counter: list[int]) -> Iterator[memoryview]:
    """The payload from ``view[start:filled]`` on, refilling ``view`` (so each chunk is used at once)."""
    while True:
        if filled > start:
            counter[0] += filled - start
            yield view[start:filled]
        if filled < len(view):  # the stream ended inside this chunk
            return
        filled, start = _fill(stream, view), 0
        if not filled:
            return


def _check_signed(header: dict[str, Any], metadata: ResultRecordMetadata, signing_key: bytes,
                  key: str) -> None:
    """Refuse what a signing ``ResultStore`` refuses: bad signatures, moved records, weak hashes."""
    verify_header(header, signing_key, key)
    if metadata.storage_key != key:
        raise RecordCorruptError(f"signed for key {metadata.storage_key!r}, found at {key!r}")
    if not metadata.payload_hash.startswith(BLAKE3 + ":"):
        raise RecordCorruptError("signed record without a blake3 payload hash")


def _chunk_buffer() -> bytearray:
    # One buffer per thread, reused: allocating (and zeroing) it per record would dominate.
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = bytearray(_CHUNK)
    return buffer


def verify_record(storage: Storage, key: str, signing_key: bytes | None) -> VerifyOutcome | None:
    """Check the record at ``key`` (None if it vanished since it was listed)."""
    buffer = _chunk_buffer()
    view = memoryview(buffer)
    counter = [0]
    try:
        with storage.open_read(key) as raw:
            stream: _ReadIntoStream = raw  # type: ignore[assignment]  # IO[bytes] omits readinto
            filled = _fill(stream, view)
            end = buffer.find(b"\n", 0, filled)
            if end < 0:
                raise RecordCorruptError(
                    f"truncated or not a record: no header line in its first {filled} bytes"
                )
            header, metadata = decode_header(view[:end])
            signature: SignatureState = "unsigned" if metadata.signature is None else "unchecked"
            if signing_key is not None:
                _check_signed(header, metadata, signing_key, key)
                signature = "valid"
            algorithm, sep, _ = metadata.payload_hash.partition(":")
            if not sep:
                raise RecordCorruptError(f"malformed payload_hash {metadata.payload_hash!r}")
            chunks = _payload_chunks(stream, view, end + 1, filled, counter)
            actual = checksum(chunks, algorithm, metadata.payload_size)
    except FileNotFoundError:
        return None
    except RecordCorruptError as exc:
        return VerifyOutcome(key, None, f"corrupt: {exc}")
    except (ResultkitError, OSError) as exc:
        return VerifyOutcome(key, None, f"cannot read: {exc}")
    payload_size = counter[0]
    size = end + 1 + payload_size
    if payload_size != metadata.payload_size:
        return VerifyOutcome(key, size, f"corrupt: payload is {payload_size} bytes, header says "
                             f"{metadata.payload_size}", signature)
    if actual != metadata.payload_hash:
        return VerifyOutcome(key, size, f"corrupt: payload fails its checksum (stored "
                             f"{metadata.payload_hash}, computed {actual})", signature)
    if metadata.is_literal and payload_size:
        return VerifyOutcome(key, size, "corrupt: a literal record with a payload", signature)
    return VerifyOutcome(key, size, None, signature)


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify every record; exit 1 listing the corrupt ones."""
    storage = open_storage(args.storage, args.option)
    signing_key = resolve_signing_key(None)
    keys = sorted(storage.list(""))
    outcomes = [
        outcome
        for outcome in with_progress(
            parallel_map(storage, lambda key: verify_record(storage, key, signing_key), keys),
            len(keys), "verifying records",
        )
        if outcome is not None
    ]
    bad = [o for o in outcomes if not o.ok]
    if args.json:
        print_json({
            "storage": storage.describe(),
            "checked": len(outcomes),
            "ok": len(outcomes) - len(bad),
            "signatures_checked": signing_key is not None,
            # Of the intact records: "valid" (key set), "unchecked" (signed, no key), "unsigned".
            "signatures": dict(Counter(o.signature for o in outcomes if o.ok)),
            "problems": [{"key": o.key, "size": o.size, "problem": o.problem} for o in bad],
        })
    else:
        if bad:
            print_table("problems", ("key", "size", "problem"),
                        [(o.key, format_size(o.size), o.problem or "") for o in bad],
                        right_aligned=("size",))
        note = "" if signing_key is not None else " (signatures not checked: RESULTKIT_SIGNING_KEY is unset)"
        say(
            f"checked {len(outcomes)} record(s) in {storage.describe()}: "
            f"{len(outcomes) - len(bad)} ok, {len(bad)} with problems{note}"
        )
    return EXIT_FAILURE if bad else EXIT_OK
