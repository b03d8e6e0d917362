"""Prefect's spellings of :class:`~resultkit.results.ResultStore` options and calls.

``ResultStore(result_storage=..., cache_result_in_memory=..., storage_key_fn=...)``,
``write(obj=..., key=...)`` (``key`` optional), ``result_storage``,
``create_result_record`` and ``persist_result_record``: so code written against
``prefect.results.ResultStore`` runs once its import changes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..storage.base import Storage, validate_key
from ._async import in_thread
from .record import ResultRecord, ResultRecordMetadata

__all__ = ["MISSING", "PrefectStoreCalls", "chosen_storage", "chosen_value", "default_storage_key"]

class _Missing:
    """The type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "<required>"


#: Marks an argument not given (None is a value a record can hold).
MISSING: Any = _Missing()

StorageValue = Storage | str | os.PathLike[str] | None


def default_storage_key() -> str:
    """A fresh random key (32 hex characters) for a record written without one, as Prefect's."""
    return uuid.uuid4().hex


def chosen_storage(storage: StorageValue, result_storage: StorageValue, metadata_storage: object) -> StorageValue:
    """The storage a ``ResultStore`` was given under our name or Prefect's ``result_storage``."""
    if metadata_storage is not None:
        raise ConfigurationError(
            f"ResultStore(metadata_storage={metadata_storage!r}) is not supported: a resultkit "
            "record keeps its header and payload in one object (one read per hit); drop "
            "metadata_storage and pass the storage as result_storage="
        )
    if result_storage is None:
        return storage
    if storage is not None:
        raise ConfigurationError(
            f"ResultStore got both storage={storage!r} and result_storage={result_storage!r}; "
            "they are the same option (result_storage is Prefect's name): pass one"
        )
    return result_storage


def check_store_options(cache_result_in_memory: object, storage_key_fn: object) -> None:
    """``ConfigurationError`` for a mistyped Prefect-named ``ResultStore`` option."""
    if not isinstance(cache_result_in_memory, bool):
        raise ConfigurationError(f"cache_result_in_memory must be True or False, got {cache_result_in_memory!r}")
    if not callable(storage_key_fn):
        raise ConfigurationError(
            f"storage_key_fn must be a function of no arguments returning a key, got {storage_key_fn!r}"
        )


def chosen_value(value: Any, obj: Any) -> Any:
    """The value to write, given positionally (ours) or as ``obj=`` (Prefect's name)."""
    if value is MISSING and obj is MISSING:
        raise ConfigurationError(
            "ResultStore.write needs the value to store: write(key, value) or write(obj=value, key=key)"
        )
    if value is not MISSING and obj is not MISSING:
        raise ConfigurationError(
            "ResultStore.write got the value twice (value and obj=, Prefect's name for it); pass one"
        )
    return value if obj is MISSING else obj


class PrefectStoreCalls:
    """The calls of Prefect's ``ResultStore`` that have no resultkit name of their own."""

    storage: Storage
    storage_key_fn: Callable[[], str]

    if TYPE_CHECKING:

        def write(
            self,
            key: str | None = None,
            value: Any = MISSING,
            expiration: datetime | timedelta | None = None,
            extra: Mapping[str, Any] | None = None,
            commit: str | None = None,
            holder: str | None = None,
            *,
            obj: Any = MISSING,
        ) -> ResultRecord[Any]: ...

        def _build_record(
            self, key: str, value: Any, expiration: datetime | timedelta | None, extra: Mapping[str, Any] | None,
            commit: str | None = None,
        ) -> tuple[ResultRecordMetadata, list[memoryview]]: ...

    @property
    def result_storage(self) -> Storage:
        """The store's storage, under Prefect's name."""
        return self.storage

    def _key_to_write(self, key: str | None) -> str:
        """``key``, validated, or a fresh one from ``storage_key_fn`` when it is None."""
        if key is None:
            key = self.storage_key_fn()
            if not isinstance(key, str):
                raise ConfigurationError(
                    f"storage_key_fn {self.storage_key_fn!r} returned {type(key).__name__} {key!r}; "
                    "it must return a string key"
                )
        return validate_key(key)

    def create_result_record(
        self, obj: Any, key: str | None = None, expiration: datetime | timedelta | None = None
    ) -> ResultRecord[Any]:
        """The record ``write`` would store for ``obj``, without writing it (Prefect's name).

        The value is serialized here, so the metadata is complete and a value that cannot
        be serialized fails now; :meth:`persist_result_record` writes it.
        """
        metadata, _ = self._build_record(self._key_to_write(key), obj, expiration, None)
        return ResultRecord(metadata, obj, storage=self.storage)

    def persist_result_record(self, result_record: ResultRecord[Any]) -> ResultRecord[Any]:
        """Write a record made by :meth:`create_result_record`; returns the record stored.

        The value is serialized again as it is written, so what is stored is the value now.
        """
        metadata = result_record.metadata
        return self.write(metadata.storage_key, result_record.result,
                          expiration=metadata.expiration, extra=metadata.extra or None)

    apersist_result_record = in_thread(persist_result_record)
