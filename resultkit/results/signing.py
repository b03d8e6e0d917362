"""HMAC-SHA256 signatures over record headers.

The signature covers the header only; the header holds a blake3 digest of the
payload, so the signature covers the payload too. (xxh3, the unsigned default, is
fast but not collision-resistant against an attacker, hence blake3 when signing.)

Canonical bytes (:func:`canonical_header_bytes`): the header object without its
``header_hash`` and without ``metadata.signature``, serialized by orjson with sorted
keys and no whitespace. The signature is stored in ``metadata.signature`` as
``"hmac-sha256:<hex>"``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from .._env import env_setting
from ..errors import ConfigurationError, RecordCorruptError
from .record import canonical_header_bytes

__all__ = [
    "SIGNATURE_PREFIX",
    "canonical_header_bytes",
    "resolve_signing_key",
    "sign_header",
    "verify_header",
]

SIGNATURE_PREFIX = "hmac-sha256:"


def resolve_signing_key(signing_key: str | bytes | None) -> bytes | None:
    """The key to sign with: ``signing_key`` if given, else ``RESULTKIT_SIGNING_KEY``, else None."""
    if signing_key is None:
        from_env = env_setting("signing_key")
        # An empty variable means "not set", as for the other RESULTKIT_* settings.
        return str(from_env).encode() if from_env else None
    if isinstance(signing_key, str):
        signing_key = signing_key.encode()
    if not isinstance(signing_key, bytes):
        raise ConfigurationError(
            f"signing_key must be str or bytes, got {type(signing_key).__name__}; "
            "pass a secret string or set RESULTKIT_SIGNING_KEY"
        )
    if not signing_key:
        raise ConfigurationError("signing_key is empty; pass a non-empty secret or None for no signing")
    return signing_key


def sign_header(header: dict[str, Any], key: bytes) -> str:
    """The signature string for ``header`` under ``key``."""
    digest = hmac.new(key, canonical_header_bytes(header), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_header(header: dict[str, Any], key: bytes, storage_key: str) -> None:
    """Raise ``RecordCorruptError`` unless ``header`` carries a valid signature under ``key``."""
    signature = header["metadata"].get("signature")
    if not isinstance(signature, str):
        raise RecordCorruptError(
            f"record {storage_key!r} is unsigned, but this store requires signed records "
            "(a signing key is set); refusing to load it"
        )
    expected = sign_header(header, key)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise RecordCorruptError(
            f"record {storage_key!r} has an invalid signature (written with another key, or "
            "tampered with); refusing to load it"
        )
