"""Result records: a one-line JSON header, ``\\n``, then the raw payload bytes.

The header says everything a reader needs (serializer config, payload size and
hash, expiry), so a record can be loaded with no configuration. The exact format
is documented in ``docs/record-format.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
import xxhash

from ..errors import ConfigurationError, RecordCorruptError, ResultkitError
from ._fields import HeaderCodec, wire

if TYPE_CHECKING:
    from ..storage.base import Storage
    from .reference import ResultReference

__all__ = [
    "MAX_HEADER_SIZE",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "HeadReader",
    "canonical_header_bytes",
    "ResultRecord",
    "ResultRecordMetadata",
    "decode_header",
    "encode_header",
    "format_timestamp",
    "header_dict",
    "parse_timestamp",
    "read_header",
    "split_frame",
]

#: The ``format`` name every record header starts with.
RECORD_FORMAT = "resultkit-record"
#: The newest header version this code reads. Version 2 adds ``metadata.commit`` (the
#: record belongs to a group commit): records without it are still written as version 1,
#: so older readers keep reading them, and refuse (as a miss) the records they cannot judge.
RECORD_VERSION = 2

PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
#: The longest header line a reader accepts (bytes, newline included).
MAX_HEADER_SIZE = 1 << 20

T = TypeVar("T")


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, e.g. ``2026-11-22T16:34:16.123456Z``."""
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    # isoformat is C and several times faster than strftime; "+00:00" becomes "Z".
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from :func:`format_timestamp` output (or any ISO 8601 with offset)."""
    # datetime.fromisoformat only learned "Z" in Python 3.11; we support 3.10.
    if not _FROMISO_Z and text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = _fromisoformat(text)
    zone = moment.tzinfo
    if zone is timezone.utc:  # what every record written by resultkit holds: nothing to convert
        return moment
    if zone is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.astimezone(timezone.utc)


_FROMISO_Z = sys.version_info >= (3, 11)
_fromisoformat = datetime.fromisoformat


@dataclass
class ResultRecordMetadata:
    """What a record's header says about its payload.

    ``literal`` holds the value of a ``True``/``False``/``None`` record when
    ``is_literal`` is set; such records have an empty payload. Each field is declared
    once, with how the header writes and reads it (``metadata=wire(...)``, see
    ``_fields.py``); the declaration order is the order of the header's members, and the
    fields with a default are keyword-only so they may sit anywhere in it.
    """

    storage_key: str = field(metadata=wire(str))
    serializer: dict[str, Any] = field(metadata=wire(dict))
    created: datetime = field(metadata=wire(str, to_json=format_timestamp, from_json=parse_timestamp))
    expiration: datetime | None = field(
        default=None, kw_only=True, metadata=wire(str, to_json=format_timestamp, from_json=parse_timestamp))
    payload_size: int = field(metadata=wire(int, minimum=0))
    payload_hash: str = field(metadata=wire(str))
    resultkit_version: str = field(default="", kw_only=True, metadata=wire(str))
    python_version: str = field(default=PYTHON_VERSION, kw_only=True, metadata=wire(str, missing=""))
    is_literal: bool = field(default=False, kw_only=True, metadata=wire(bool))
    literal: bool | None = field(default=None, kw_only=True, metadata=wire(bool))
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, metadata=wire(dict))
    signature: str | None = field(default=None, kw_only=True, metadata=wire(str))
    #: The id of the group commit that wrote this record (see ``journal.py``), or None.
    commit: str | None = field(default=None, kw_only=True, metadata=wire(str, since=2))

    def is_expired(self, now: datetime | None = None) -> bool:
        """Whether the record's expiration has passed (a record without one never expires)."""
        if self.expiration is None:
            return False
        return self.expiration <= (now or datetime.now(timezone.utc))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe ``metadata`` object of the header (timestamps as ISO strings)."""
        return _CODEC.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecordMetadata:
        """Rebuild from :meth:`to_dict` output; ``RecordCorruptError`` if a field is missing or mistyped."""
        if cls is not ResultRecordMetadata:
            return _codec_of(cls).from_dict(data)
        fast = _from_dict_fast(data)  # a header as resultkit writes it: no further checks
        return fast if fast is not None else _CODEC.from_dict(data)


_CODEC = HeaderCodec(ResultRecordMetadata)


_subclass_codecs: dict[type[ResultRecordMetadata], HeaderCodec[ResultRecordMetadata]] = {}


def _codec_of(cls: type[ResultRecordMetadata]) -> HeaderCodec[ResultRecordMetadata]:
    codec = _subclass_codecs.get(cls)  # a subclass: built once, so from_dict makes instances of it
    if codec is None:
        codec = _subclass_codecs[cls] = HeaderCodec(cls)
    return codec

#: ``from_dict`` for a header as resultkit writes it (exact JSON types); None otherwise.
_from_dict_fast = _CODEC.from_dict_fast


def header_dict(metadata: ResultRecordMetadata) -> dict[str, Any]:
    """The header object without its ``header_hash``: format name, version and metadata."""
    return {"format": RECORD_FORMAT, "version": _CODEC.version(metadata), "metadata": _CODEC.to_dict(metadata)}


def canonical_header_bytes(header: dict[str, Any]) -> bytes:
    """The bytes the signature covers (whatever the key order or formatting of the line).

    ``header`` without its top-level ``header_hash`` and without ``metadata.signature``,
    serialized by orjson with sorted keys and no whitespace.
    """
    metadata = {k: v for k, v in header["metadata"].items() if k != "signature"}
    unsigned = {k: v for k, v in header.items() if k != "header_hash"}
    unsigned["metadata"] = metadata
    return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)


# The header line ends with this member, 32 hex digits and '"}'. The hash covers every
# byte of the line before the member, as written, so checking it needs no re-serialization.
_HASH_MEMBER = b',"header_hash":"xxh3_128:'
_HEX_SIZE = 32
_HASH_MEMBER_SIZE = len(_HASH_MEMBER)
_TRAILER_SIZE = _HASH_MEMBER_SIZE + _HEX_SIZE + 2


def encode_header(metadata: ResultRecordMetadata, align: int = 1) -> bytes:
    """The header line, newline included: compact UTF-8 JSON with no newline inside.

    Its last member is ``header_hash``: the xxh3_128 of every byte of the line before
    ``,"header_hash"``, so damage to the header is detected, not only damage to the payload.
    With ``align`` > 1, spaces before ``,"header_hash"`` (hashed like the rest, and plain
    JSON whitespace to every reader) make the line a multiple of ``align`` bytes long, so
    the payload starts aligned in a file mapped from offset 0.
    """
    try:
        body = orjson.dumps(header_dict(metadata))
    except TypeError as exc:
        raise ConfigurationError(
            f"record metadata for {metadata.storage_key!r} is not JSON-safe ({exc}); "
            "pass only str/int/float/bool/None, lists and str-keyed dicts in extra"
        ) from None
    hashed = body[:-1]  # up to, not including, the closing brace
    if align > 1:
        hashed += b" " * (-(len(hashed) + _TRAILER_SIZE + 1) % align)
    return hashed + _HASH_MEMBER + xxhash.xxh3_128_hexdigest(hashed).encode() + b'"}\n'


# -- the frame: header line, b"\n", payload ------------------------------------------

#: ``Storage.read_head``: at most the first ``size`` bytes of the object at ``key``.
HeadReader = Callable[[str, int], bytes]


def split_frame(head: bytes | bytearray, key: str, end: int | None = None) -> tuple[bytes, int]:
    """(header line without its newline, payload offset) from all of a record's first bytes.

    ``head[:end]`` is taken as everything there is (the whole record, or as much of it as
    one read returned); ``RecordCorruptError`` when it holds no complete header line.
    """
    size = len(head) if end is None else end
    newline = head.find(b"\n", 0, size)
    if newline < 0:
        raise _no_header_line(key, size, whole=size < MAX_HEADER_SIZE)
    return bytes(head[:newline]), newline + 1


def read_header(read_head: HeadReader, key: str, size: int,
                head: bytes | None = None) -> tuple[bytes, int, int]:
    """(head, payload offset, bytes asked for): a record's first bytes, read until they hold the header.

    ``head`` is a first read of ``size`` bytes already made (else one is made here). A read
    shorter than asked for is the whole record; a longer header grows the read up to
    ``MAX_HEADER_SIZE``, so ``RecordCorruptError`` names an empty, truncated or headerless record.
    """
    if head is None:
        head = read_head(key, size)
    newline = head.find(b"\n")
    if newline >= 0:  # every cache hit: the first read holds the header line
        return head, newline + 1, size
    while True:
        if len(head) < size or size >= MAX_HEADER_SIZE:
            raise _no_header_line(key, len(head), whole=len(head) < size)
        size = min(size * 16, MAX_HEADER_SIZE)
        head = read_head(key, size)
        newline = head.find(b"\n")
        if newline >= 0:
            return head, newline + 1, size


def _no_header_line(key: str, size: int, whole: bool) -> RecordCorruptError:
    if not size:
        return RecordCorruptError(f"record {key!r} is empty")
    if whole:
        return RecordCorruptError(f"record {key!r} has no header line (truncated or not a record)")
    return RecordCorruptError(f"record {key!r} has no header line in its first {size} bytes")


def decode_header(line: bytes | bytearray | memoryview) -> tuple[dict[str, Any], ResultRecordMetadata]:
    """Parse a header line (without or with its newline) into (raw header dict, metadata).

    Raises ``RecordCorruptError`` for anything that is not an intact header this
    version can read. The signature, if any, is checked separately (``signing.py``).
    """
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordCorruptError(f"record header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise RecordCorruptError(f"record header is a JSON {type(header).__name__}, not an object")
    if header.get("format") != RECORD_FORMAT:
        raise RecordCorruptError(
            f"record header has format {header.get('format')!r}, expected {RECORD_FORMAT!r}; "
            "this is not a resultkit record"
        )
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordCorruptError(f"record header has an invalid version {version!r}")
    if version > RECORD_VERSION:
        raise RecordCorruptError(
            f"record format version {version} is newer than this resultkit reads ({RECORD_VERSION}); "
            "upgrade resultkit to read it"
        )
    metadata = header.get("metadata")
    if not isinstance(metadata, dict):
        raise RecordCorruptError("record header has no 'metadata' object")
    # A header line is a few hundred bytes: one copy is cheaper than slicing views of it.
    data = line if type(line) is bytes else bytes(line)
    if data[-1:] == b"\n":
        data = data[:-1]
    # The header hash, checked inline: this runs on every cache hit.
    hashed_size = len(data) - _TRAILER_SIZE
    if hashed_size < 0 or not (data.startswith(_HASH_MEMBER, hashed_size) and data.endswith(b'"}')):
        raise RecordCorruptError("record header does not end with its 'header_hash'")
    if xxhash.xxh3_128_hexdigest(memoryview(data)[:hashed_size]).encode() != data[hashed_size + _HASH_MEMBER_SIZE : -2]:
        raise RecordCorruptError("record header fails its checksum (header_hash); it was damaged")
    # The hit path: a header as resultkit writes it, without from_dict's explanations.
    fast = _from_dict_fast(metadata)
    return header, fast if fast is not None else _CODEC.from_dict(metadata)


@dataclass
class ResultRecord(Generic[T]):
    """A stored value and its metadata.

    ``storage`` is where the record lives (set by :class:`ResultStore`), so
    :meth:`reference` can make a handle to it.
    """

    metadata: ResultRecordMetadata
    result: T
    storage: Storage | None = field(default=None, compare=False, repr=False, kw_only=True)

    def reference(self) -> ResultReference:
        """A :class:`ResultReference` to this record, for another process to load."""
        from .reference import ResultReference

        if self.storage is None:
            raise ResultkitError(
                f"record {self.metadata.storage_key!r} does not know its storage; "
                "use ResultStore.reference(key) or ResultReference(storage, key)"
            )
        return ResultReference(self.storage, self.metadata.storage_key, self.metadata.serializer)
