"""The serializer contract: values <-> bytes, described by a JSON-safe config.

Every record stores its serializer's ``to_config()``, so a reader rebuilds the
serializer with :meth:`Serializer.from_config` and needs no configuration.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

from .._types import Buffer
from ..errors import ConfigurationError, SerializationError

__all__ = ["Buffer", "Serializer", "dumps_value", "register_serializer_type", "resolve_serializer"]


# type name -> "module:Class", imported on first use (fsspec-registry style).
_TYPES: dict[str, str] = {
    "pickle": "resultkit.serializers.pickle:PickleSerializer",
    "json": "resultkit.serializers.json:JSONSerializer",
    "compressed": "resultkit.serializers.compressed:CompressedSerializer",
}


class Serializer(abc.ABC):
    """Turns values into bytes and back.

    >>> from resultkit.serializers import PickleSerializer
    >>> s = PickleSerializer()
    >>> s.loads(s.dumps({"a": 1}))
    {'a': 1}
    """

    #: The type name stored in records, e.g. ``"pickle"``.
    type: ClassVar[str] = ""

    @abc.abstractmethod
    def dumps_chunks(self, obj: Any) -> Sequence[Buffer]:
        """Serialize ``obj`` as a sequence of buffers to be written back to back.

        Large buffers (numpy arrays, bytes) are returned as views, not copied.
        """

    @abc.abstractmethod
    def loads(self, data: Buffer) -> Any:
        """Rebuild a value from bytes produced by :meth:`dumps_chunks`.

        The result may keep zero-copy views into ``data`` (e.g. numpy arrays).
        """

    @abc.abstractmethod
    def to_config(self) -> dict[str, Any]:
        """A JSON-safe description, ``{"type": ..., **options}``, that rebuilds this serializer."""

    def dumps(self, obj: Any) -> bytes:
        """Serialize ``obj`` to one ``bytes`` object."""
        chunks = self.dumps_chunks(obj)
        return bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)

    @classmethod
    def _from_options(cls, options: dict[str, Any]) -> Serializer:
        """Build from a config without its ``type`` key; subclasses may override."""
        return cls(**options)

    @staticmethod
    def from_config(config: dict[str, Any]) -> Serializer:
        """Rebuild a serializer from :meth:`to_config` output."""
        if not isinstance(config, dict) or not isinstance(config.get("type"), str):
            raise SerializationError(
                f"serializer config must be a dict with a 'type' string, got {config!r}"
            )
        options = dict(config)
        type_name = options.pop("type")
        cls = _serializer_class(type_name)
        try:
            return cls._from_options(options)
        except (TypeError, ConfigurationError) as exc:  # a record's config is data: a read error
            raise SerializationError(f"serializer config {config!r} is not valid for {cls.__name__}: {exc}") from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Serializer) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_config().items())))

    def __repr__(self) -> str:
        options = {k: v for k, v in self.to_config().items() if k != "type"}
        args = ", ".join(f"{k}={v!r}" for k, v in options.items())
        return f"{type(self).__name__}({args})"


def dumps_value(serializer: Serializer, value: Any) -> Sequence[Buffer]:
    """``serializer.dumps_chunks(value)``; any failure is a ``SerializationError`` carrying ``value``.

    What a writer calls, so ``err.value`` always holds the value that could not be stored.
    """
    try:
        return serializer.dumps_chunks(value)
    except SerializationError as exc:
        exc.attach_value(value)
        raise
    except Exception as exc:  # a third-party serializer raising its own error types
        raise SerializationError(
            f"{serializer!r} failed to serialize a value of type {type(value).__qualname__} "
            f"({type(exc).__name__}: {exc}); fix the serializer or choose another result_serializer",
            value=value,
        ) from exc


def register_serializer_type(type_name: str, target: type[Serializer] | str) -> None:
    """Make ``type_name`` loadable from records, as a class or a ``"module:Class"`` path."""
    _TYPES[type_name] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def _serializer_class(type_name: str) -> type[Serializer]:
    target = _TYPES.get(type_name)
    if target is None:
        raise SerializationError(
            f"unknown serializer type {type_name!r}; known types: {sorted(_TYPES)}. "
            "Register custom serializers with resultkit.serializers.register_serializer_type()"
        )
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def resolve_serializer(value: str | Serializer | None, default: str = "pickle") -> Serializer:
    """A serializer from an instance, a name (``"json"``, ``"compressed/pickle"``) or None.

    >>> resolve_serializer("compressed/json").to_config()["type"]
    'compressed'
    """
    if value is None:
        value = default
    if isinstance(value, Serializer):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            f"result_serializer must be a Serializer or a name such as 'pickle', 'json' or "
            f"'compressed/pickle', got {type(value).__name__} {value!r}"
        )
    name = value.strip().lower()
    if name.startswith("compressed/"):
        inner = resolve_serializer(name.split("/", 1)[1])
        return _serializer_class("compressed")._from_options({"serializer": inner.to_config()})
    if name == "compressed":
        return _serializer_class("compressed")._from_options({"serializer": {"type": "pickle"}})
    if name in _TYPES:  # built in, or registered with register_serializer_type (its defaults)
        return _serializer_class(name)._from_options({})
    raise ConfigurationError(
        f"unknown serializer name {value!r}; use 'pickle', 'json', 'compressed/pickle', "
        "'compressed/json', a type registered with register_serializer_type() "
        f"(registered: {sorted(_TYPES)}) or a Serializer instance"
    )
