"""The exceptions resultkit raises.

Everything derives from :class:`ResultkitError`, so ``except ResultkitError``
catches all of them::

    ResultkitError
    ├── ConfigurationError      bad option, unknown slug/serializer, missing extra
    ├── HashError               an input that cannot be turned into a cache key
    ├── SerializationError      a value the serializer cannot write or read back
    ├── StorageError            a storage operation failed (after bounded retries)
    │   └── RecordNotFound      no record at the key (also a ``KeyError``)
    ├── RecordCorruptError      a record failed its size, checksum or signature check
    ├── RunTimeout              a task or flow ran past its ``timeout_seconds`` (a ``TimeoutError``)
    ├── LockTimeout             a lock was not acquired within ``lock_timeout``
    └── TransactionError        a transaction was used out of order
        ├── LockNotHeldError    releasing a lock another holder holds (also a ``ValueError``)
        └── TransactionValueNotFound  ``txn.get`` of an unknown name (also ``KeyError``, ``ValueError``)

Every message names the offending argument, value or type and says how to fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "HashError",
    "LockNotHeldError",
    "LockTimeout",
    "RecordCorruptError",
    "RecordNotFound",
    "ResultkitError",
    "RunTimeout",
    "SerializationError",
    "StorageError",
    "TransactionError",
    "TransactionValueNotFound",
]

_NO_VALUE: Any = object()


class ResultkitError(Exception):
    """Base class of every exception resultkit raises."""


class ConfigurationError(ResultkitError, ValueError):
    """An option, setting, slug, URL or serializer name is invalid or unusable."""


class HashError(ResultkitError, TypeError):
    """An input cannot be hashed into a cache key."""


class _CarriesValue(ResultkitError):
    """An error that may carry the computed value it could not store (``err.value``)."""

    def __init__(self, *args: object, value: Any = _NO_VALUE) -> None:
        super().__init__(*args)
        self.value = None if value is _NO_VALUE else value
        self.has_value = value is not _NO_VALUE

    def attach_value(self, value: Any) -> None:
        """Attach the computed ``value`` this error is about (``err.value``, ``err.has_value``)."""
        self.value = value
        self.has_value = True


class SerializationError(_CarriesValue):
    """A value cannot be serialized, or stored bytes cannot be deserialized.

    Raised while writing a computed value, ``err.value`` holds that value (nothing
    was written), so nothing computed is lost; ``err.has_value`` tells whether one is
    attached.
    """


class StorageError(_CarriesValue, OSError):
    """A storage operation failed.

    When raised while committing a computed value, ``err.value`` holds that value
    so nothing computed is lost (``err.has_value`` tells whether one is attached).
    """


class RecordNotFound(StorageError, KeyError):
    """No (unexpired) record exists at the key."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "record not found"


class RecordCorruptError(ResultkitError):
    """A record is truncated, fails its checksum or signature, or has an unreadable header."""


class RunTimeout(ResultkitError, TimeoutError):
    """A task or flow body ran longer than its ``timeout_seconds``."""


class LockTimeout(ResultkitError, TimeoutError):
    """A lock could not be acquired within the allowed time."""


class TransactionError(ResultkitError, RuntimeError):
    """A transaction was used in a way its state does not allow."""


class LockNotHeldError(TransactionError, ValueError):
    """A lock was released (or used) by a holder that does not hold it; another holder does.

    A ``ValueError`` too, the type Prefect's lock managers raise here.
    """


class TransactionValueNotFound(TransactionError, KeyError, ValueError):
    """``txn.get(name)`` found no value ``name`` here or in a parent (Prefect raises ValueError)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "transaction value not found"
