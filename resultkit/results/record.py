"""Result records: a one-line JSON header, ``\\n``, then the raw payload bytes.

The header says everything a reader needs (serializer config, payload size and
hash, expiry), so a record can be loaded with no configuration. The exact format
is documented in ``docs/record-format.md``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
import xxhash

from ..errors import ConfigurationError, RecordCorruptError, ResultkitError

if TYPE_CHECKING:
    from ..storage.base import Storage
    from .reference import ResultReference

__all__ = [
    "MAX_HEADER_SIZE",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "canonical_header_bytes",
    "ResultRecord",
    "ResultRecordMetadata",
    "decode_header",
    "encode_header",
    "format_timestamp",
    "header_dict",
    "parse_timestamp",
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

_REQUIRED_FIELDS = ("storage_key", "serializer", "created", "payload_size", "payload_hash")


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
    ``is_literal`` is set; such records have an empty payload.
    """

    storage_key: str
    serializer: dict[str, Any]
    created: datetime
    payload_size: int
    payload_hash: str
    expiration: datetime | None = None
    resultkit_version: str = ""
    python_version: str = PYTHON_VERSION
    is_literal: bool = False
    literal: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    signature: str | None = None
    #: The id of the group commit that wrote this record (see ``journal.py``), or None.
    commit: str | None = None

    def is_expired(self, now: datetime | None = None) -> bool:
        """Whether the record's expiration has passed (a record without one never expires)."""
        if self.expiration is None:
            return False
        return self.expiration <= (now or datetime.now(timezone.utc))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe ``metadata`` object of the header (timestamps as ISO strings)."""
        fields = {
            "storage_key": self.storage_key,
            "serializer": self.serializer,
            "created": format_timestamp(self.created),
            "expiration": None if self.expiration is None else format_timestamp(self.expiration),
            "payload_size": self.payload_size,
            "payload_hash": self.payload_hash,
            "resultkit_version": self.resultkit_version,
            "python_version": self.python_version,
            "is_literal": self.is_literal,
            "literal": self.literal,
            "extra": self.extra,
            "signature": self.signature,
        }
        if self.commit is not None:  # absent otherwise: version-1 headers stay byte-identical
            fields["commit"] = self.commit
        return fields

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecordMetadata:
        """Rebuild from :meth:`to_dict` output; ``RecordCorruptError`` if a field is missing or mistyped."""
        if cls is ResultRecordMetadata:
            try:
                fast = _from_dict_fast(data)
            except KeyError:  # a required field is missing: explained below
                fast = None
            if fast is not None:
                return fast
        missing = [name for name in _REQUIRED_FIELDS if name not in data]
        if missing:
            raise RecordCorruptError(f"record header lacks the field(s) {missing}")
        try:
            expiration = data.get("expiration")
            literal = data.get("literal")
            metadata = cls(
                storage_key=_typed(data, "storage_key", str),
                serializer=_typed(data, "serializer", dict),
                created=parse_timestamp(_typed(data, "created", str)),
                payload_size=_typed(data, "payload_size", int),
                payload_hash=_typed(data, "payload_hash", str),
                expiration=None if expiration is None else parse_timestamp(expiration),
                resultkit_version=str(data.get("resultkit_version", "")),
                python_version=str(data.get("python_version", "")),
                is_literal=data.get("is_literal") is True,
                literal=literal if literal is None or isinstance(literal, bool) else _bad("literal", literal),
                extra=_typed(data, "extra", dict) if data.get("extra") is not None else {},
                signature=_typed(data, "signature", str) if data.get("signature") is not None else None,
                commit=_typed(data, "commit", str) if data.get("commit") is not None else None,
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise RecordCorruptError(f"record header has an invalid field: {exc}") from None
        if metadata.payload_size < 0:
            raise RecordCorruptError(f"record header has a negative payload_size {metadata.payload_size}")
        return metadata


def _from_dict_fast(data: dict[str, Any]) -> ResultRecordMetadata | None:
    """``from_dict`` for a header as resultkit writes it (exact JSON types); None otherwise.

    The cache-hit path decodes one header per read: exact type checks and filling the
    instance dict directly cost a fraction of the general path, which handles (and
    explains) everything else.
    """
    get = data.get
    storage_key, serializer, created = data["storage_key"], data["serializer"], data["created"]
    payload_size, payload_hash = data["payload_size"], data["payload_hash"]
    expiration, literal = get("expiration"), get("literal")
    extra, signature, commit = get("extra"), get("signature"), get("commit")
    resultkit_version, python_version = get("resultkit_version", ""), get("python_version", "")
    if not (type(storage_key) is str and type(serializer) is dict and type(created) is str
            and type(payload_size) is int and payload_size >= 0 and type(payload_hash) is str
            and (expiration is None or type(expiration) is str)
            and (literal is None or type(literal) is bool)
            and (extra is None or type(extra) is dict)
            and (signature is None or type(signature) is str)
            and (commit is None or type(commit) is str)
            and type(resultkit_version) is str and type(python_version) is str):
        return None
    try:
        created_at = parse_timestamp(created)
        expires_at = None if expiration is None else parse_timestamp(expiration)
    except ValueError:
        return None  # the general path raises the explained error
    metadata = _new_metadata(ResultRecordMetadata)
    # One dict literal as the instance dict: no keyword dict built and copied.
    metadata.__dict__ = {
        "storage_key": storage_key, "serializer": serializer, "created": created_at,
        "payload_size": payload_size, "payload_hash": payload_hash, "expiration": expires_at,
        "resultkit_version": resultkit_version, "python_version": python_version,
        "is_literal": get("is_literal") is True, "literal": literal,
        "extra": extra if extra is not None else {}, "signature": signature, "commit": commit,
    }
    return metadata


_new_metadata = object.__new__


def _typed(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data[name]
    # bool is an int subclass; a payload_size of true is not a size.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} must be {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _bad(name: str, value: object) -> Any:
    raise TypeError(f"{name} must be true, false or null, got {value!r}")


def header_dict(metadata: ResultRecordMetadata) -> dict[str, Any]:
    """The header object without its ``header_hash``: format name, version and metadata."""
    version = 1 if metadata.commit is None else 2
    return {"format": RECORD_FORMAT, "version": version, "metadata": metadata.to_dict()}


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


def _check_header_hash(line: bytes) -> None:
    hashed_size = len(line) - _TRAILER_SIZE
    if hashed_size < 0 or not (line.startswith(_HASH_MEMBER, hashed_size) and line.endswith(b'"}')):
        raise RecordCorruptError("record header does not end with its 'header_hash'")
    stored = line[hashed_size + _HASH_MEMBER_SIZE : -2]
    if xxhash.xxh3_128_hexdigest(memoryview(line)[:hashed_size]).encode() != stored:
        raise RecordCorruptError("record header fails its checksum (header_hash); it was damaged")


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
    _check_header_hash(data[:-1] if data[-1:] == b"\n" else data)
    try:  # the hit path: a header as resultkit writes it, without from_dict's checks
        fast = _from_dict_fast(metadata)
    except KeyError:
        fast = None
    return header, fast if fast is not None else ResultRecordMetadata.from_dict(metadata)


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
