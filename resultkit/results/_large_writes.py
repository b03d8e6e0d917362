"""Writing a large record: its payload goes to storage while its checksum is computed.

A header's length does not depend on the digits of its payload hash or signature, so
the header is measured with placeholders, the storage starts writing the payload behind
that many bytes, and the header is sealed (checksum, signature) and written in front once
the checksum pass is done (``Storage.write_with_head``; local storage overlaps the two).
The record is byte-for-byte what a sequential writer produces.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..storage.base import Storage
from .checksum import checksum
from .record import ResultRecordMetadata, encode_header, header_dict
from .signing import SIGNATURE_PREFIX, sign_header

__all__ = ["PAYLOAD_ALIGNMENT", "placeholder_hash", "write_large_record"]

#: Where a large payload starts in its record file: pickle's out-of-band buffers are
#: 64-byte aligned relative to the payload start, so arrays loaded as views into the
#: mapped file are 64-byte aligned in memory (SIMD loads, ``flags.aligned``).
PAYLOAD_ALIGNMENT = 64

_HEX_DIGITS = {"xxh3_128": 32, "blake3": 64}
_SIGNATURE_DIGITS = 64  # hmac-sha256


def placeholder_hash(algorithm: str) -> str:
    """A payload hash of ``algorithm`` with the length of a real one and all-zero digits."""
    return f"{algorithm}:{'0' * _HEX_DIGITS[algorithm]}"


def write_large_record(storage: Storage, metadata: ResultRecordMetadata, views: Sequence[memoryview],
                       signing_key: bytes | None) -> None:
    """Write the record of ``metadata`` (placeholder hash, no signature) and ``views``; seals ``metadata``."""
    algorithm = metadata.payload_hash.partition(":")[0]
    if signing_key is not None:
        metadata.signature = SIGNATURE_PREFIX + "0" * _SIGNATURE_DIGITS
    head_size = len(encode_header(metadata, PAYLOAD_ALIGNMENT))

    def make_head() -> bytes:
        metadata.payload_hash = checksum(views, algorithm, metadata.payload_size)
        if signing_key is not None:  # the signature covers the header without its signature
            metadata.signature = sign_header(header_dict(metadata), signing_key)
        return encode_header(metadata, PAYLOAD_ALIGNMENT)

    storage.write_with_head(metadata.storage_key, views, head_size, make_head)
