"""``ResultReference``: a small handle to a stored record that another process can load.

It holds where the record is (storage configuration, never a live object, when sent
as JSON) and its key; :meth:`ResultReference.get` reads and deserializes the record
once, then keeps the value.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ConfigurationError, ResultkitError
from ..serializers.base import Serializer
from ..storage.base import Storage, validate_key

if TYPE_CHECKING:
    from .record import ResultRecord

__all__ = ["ResultReference"]

_NOT_LOADED: Any = object()


def _storage_to_json(storage: Storage | str) -> Any:
    if isinstance(storage, str):
        return storage
    try:
        block = storage.to_block()
    except ResultkitError as exc:
        raise ConfigurationError(
            f"a ResultReference to {storage!r} cannot be sent as JSON: {exc}; use storage that "
            "other processes can reach (a local path, s3://, gs://, or a saved block)"
        ) from None
    return {"type": storage.block_type, **block}


def _storage_from_json(value: Any) -> Storage | str:
    if isinstance(value, str):
        return value
    from ..storage.blocks import storage_from_config

    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return storage_from_config(value, where="ResultReference JSON storage")
    raise ConfigurationError(
        f"ResultReference JSON has an invalid 'storage' {value!r}; expected a path, URL, slug "
        "or a block configuration with a 'type' (a registered storage block type)"
    )


class ResultReference:
    """Where a result is stored; ``get()`` loads it once.

    >>> ref = ResultReference("/tmp/results", "task/abc")     # doctest: +SKIP
    >>> ResultReference.from_json(ref.to_json()) == ref        # doctest: +SKIP
    True
    """

    def __init__(
        self,
        storage: Storage | str | os.PathLike[str],
        storage_key: str,
        serializer: Serializer | str | dict[str, Any] | None = None,
    ) -> None:
        if isinstance(storage, os.PathLike):
            storage = os.fspath(storage)
        if not isinstance(storage, (Storage, str)):
            raise ConfigurationError(
                f"ResultReference storage must be a Storage, a path, a URL or a slug, got "
                f"{type(storage).__name__} {storage!r}"
            )
        self.storage: Storage | str = storage
        self.storage_key = validate_key(storage_key)
        # The record names its own serializer; this one is only informational unless
        # the reference must describe it (e.g. before the record is written).
        if isinstance(serializer, Serializer):
            serializer = serializer.to_config()
        self.serializer: str | dict[str, Any] | None = serializer
        self._value: Any = _NOT_LOADED

    def __repr__(self) -> str:
        return f"ResultReference({self.storage!r}, {self.storage_key!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResultReference):
            return NotImplemented
        return (self.storage_key, self.serializer) == (other.storage_key, other.serializer) and (
            _storage_identity(self.storage) == _storage_identity(other.storage)
        )

    def __hash__(self) -> int:
        return hash(self.storage_key)

    def __getstate__(self) -> dict[str, Any]:
        # A reference travels as a handle; the loaded value stays where it was loaded.
        state = self.__dict__.copy()
        del state["_value"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._value = _NOT_LOADED

    @property
    def is_loaded(self) -> bool:
        """Whether ``get()`` has already loaded the value into this object."""
        return self._value is not _NOT_LOADED

    def read(self) -> ResultRecord[Any]:
        """Read the record (header and value) from storage, every time."""
        from .store import ResultStore

        return ResultStore(self.storage).read(self.storage_key)

    def get(self) -> Any:
        """The stored value: read and deserialized on the first call, then kept."""
        if self._value is _NOT_LOADED:
            self._value = self.read().result
        return self._value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: storage (path, URL, slug or block configuration), key, serializer."""
        return {
            "storage": _storage_to_json(self.storage),
            "storage_key": self.storage_key,
            "serializer": self.serializer,
        }

    def to_json(self) -> str:
        """This reference as a JSON string, for ``ResultReference.from_json``."""
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> ResultReference:
        """Rebuild a reference from :meth:`to_json` output (a string or the parsed dict)."""
        try:
            parsed = orjson.loads(data) if isinstance(data, (str, bytes)) else data
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(f"ResultReference JSON is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict) or "storage" not in parsed or "storage_key" not in parsed:
            raise ConfigurationError(
                f"ResultReference JSON must be an object with 'storage' and 'storage_key', got {data!r}"
            )
        return cls(_storage_from_json(parsed["storage"]), parsed["storage_key"], parsed.get("serializer"))


def _storage_identity(storage: Storage | str) -> Any:
    if isinstance(storage, str):
        return storage
    try:
        return (storage.block_type, orjson.dumps(storage.to_block(), option=orjson.OPT_SORT_KEYS))
    except ResultkitError:
        return id(storage)
