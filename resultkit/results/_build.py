"""The write path's first half: a value's record (metadata and payload views), nothing written yet.

``ResultStore.write`` and Prefect's ``create_result_record`` build a record here; the
store then hands the header and the payload views to storage as they are, with no join.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from importlib import metadata as _importlib_metadata
from typing import Any

from .._types import Buffer, as_byte_view
from ..errors import ConfigurationError
from ..serializers.base import Serializer, dumps_value
from ._large_writes import placeholder_hash
from .checksum import BLAKE3, XXH3_128, checksum
from .literal import ResultLiteral
from .record import ResultRecordMetadata, header_dict
from .signing import sign_header

__all__ = ["RESULTKIT_VERSION", "build_record", "expiration_moment"]

try:
    #: The version every header records as its writer's.
    RESULTKIT_VERSION = _importlib_metadata.version("resultkit")
except _importlib_metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    RESULTKIT_VERSION = "0+unknown"


def expiration_moment(expiration: datetime | timedelta | None) -> datetime | None:
    """The aware UTC moment ``expiration`` names (a timedelta counts from now), or None."""
    if expiration is None:
        return None
    if isinstance(expiration, timedelta):
        return datetime.now(timezone.utc) + expiration
    if isinstance(expiration, datetime):
        if expiration.tzinfo is None:
            raise ConfigurationError(
                f"expiration {expiration!r} is a naive datetime; pass an aware one "
                "(e.g. datetime.now(timezone.utc) + timedelta(days=1)) or a timedelta"
            )
        return expiration.astimezone(timezone.utc)
    raise ConfigurationError(
        f"expiration must be a datetime, a timedelta or None, got {type(expiration).__name__} "
        f"{expiration!r}"
    )


def build_record(
    serializer: Serializer, serializer_config: dict[str, Any], signing_key: bytes | None, key: str,
    value: Any, expiration: datetime | timedelta | None, extra: Mapping[str, Any] | None,
    commit: str | None = None, large_from: int | None = None,
) -> tuple[ResultRecordMetadata, list[memoryview]]:
    """The metadata of a record of ``value`` at ``key`` and its payload views (signed with ``signing_key``).

    A payload of ``large_from`` bytes or more gets a placeholder hash and no signature:
    ``write_large_record`` seals them while the payload is written.
    """
    expires = expiration_moment(expiration)
    if extra is not None and not isinstance(extra, Mapping):
        raise ConfigurationError(
            f"extra must be a dict of JSON-safe values, got {type(extra).__name__} {extra!r}"
        )
    is_literal = ResultLiteral.supports(value)
    chunks: Sequence[Buffer] = () if is_literal else dumps_value(serializer, value)
    views = [as_byte_view(chunk) for chunk in chunks]
    payload_size = sum(view.nbytes for view in views)
    algorithm = BLAKE3 if signing_key else XXH3_128
    seal_later = large_from is not None and payload_size >= large_from
    metadata = ResultRecordMetadata(
        storage_key=key,
        serializer=serializer_config,
        created=datetime.now(timezone.utc),
        expiration=expires,
        payload_size=payload_size,
        payload_hash=placeholder_hash(algorithm) if seal_later else checksum(views, algorithm, payload_size),
        resultkit_version=RESULTKIT_VERSION,
        is_literal=is_literal,
        literal=value if is_literal else None,
        extra=dict(extra) if extra else {},
        commit=commit,
    )
    if signing_key is not None and not seal_later:
        metadata.signature = sign_header(header_dict(metadata), signing_key)
    return metadata, views
