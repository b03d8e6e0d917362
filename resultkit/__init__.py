"""resultkit: make expensive work happen once."""

from __future__ import annotations

from .errors import (
    ConfigurationError,
    HashError,
    LockTimeout,
    RecordCorruptError,
    RecordNotFound,
    ResultkitError,
    SerializationError,
    StorageError,
    TransactionError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "HashError",
    "LockTimeout",
    "RecordCorruptError",
    "RecordNotFound",
    "ResultkitError",
    "SerializationError",
    "StorageError",
    "TransactionError",
    "__version__",
]
