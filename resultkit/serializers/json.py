"""JSON serialization (``json`` or ``orjson``) with the type tags of :mod:`.json_types`.

Both backends write the same tagged tree, so a record written with one reads with
the other. The payload is plain UTF-8 text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..errors import ConfigurationError, SerializationError
from ._json_options import check_dumps_kwargs, check_hook, check_loads_kwargs
from .base import Buffer, Serializer
from .json_types import TAG, decode_object, encode_value

__all__ = ["JSONSerializer"]

_JSON_LIBRARIES = ("json", "orjson")
# A payload without this byte string holds no tagged object (a quote inside a JSON
# string is escaped), so it needs no decoding pass: the fast path for plain data.
_TAG_MARKER = f'"{TAG}"'.encode()


class JSONSerializer(Serializer):
    """Serializes values as type-tagged JSON text that rebuilds equal values.

    Prefect's arguments are accepted: ``object_encoder=None`` and ``object_decoder=None``
    (the type tags are built in; hooks are refused), ``dumps_kwargs`` and
    ``loads_kwargs`` (JSON options that shape the text, e.g. ``{"indent": 2}``).

    >>> from datetime import date
    >>> s = JSONSerializer()
    >>> s.dumps({"day": date(2026, 11, 22)})
    b'{"day":{"__rk__":"date","v":"2026-11-22"}}'
    >>> s.loads(s.dumps({"day": date(2026, 11, 22)}))
    {'day': datetime.date(2026, 11, 22)}
    """

    type: ClassVar[str] = "json"

    def __init__(
        self,
        jsonlib: str = "json",
        object_encoder: None = None,
        object_decoder: None = None,
        dumps_kwargs: Mapping[str, Any] | None = None,
        loads_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if jsonlib not in _JSON_LIBRARIES:
            raise ConfigurationError(f"jsonlib must be 'json' or 'orjson', got {jsonlib!r}")
        if jsonlib == "orjson":
            try:
                import orjson  # noqa: F401
            except ImportError as exc:
                raise ConfigurationError(
                    "jsonlib='orjson' needs the orjson package: pip install orjson"
                ) from exc
        check_hook("object_encoder", object_encoder)
        check_hook("object_decoder", object_decoder)
        self.jsonlib = jsonlib
        #: Always None: kept for Prefect's API (the type tags are built in).
        self.object_encoder: None = None
        self.object_decoder: None = None
        self.dumps_kwargs = check_dumps_kwargs(dumps_kwargs, jsonlib)
        self.loads_kwargs = check_loads_kwargs(loads_kwargs, jsonlib)
        self._dumps_options: dict[str, Any] = {"ensure_ascii": False, "allow_nan": False}
        if "indent" not in self.dumps_kwargs:
            self._dumps_options["separators"] = (",", ":")  # json's compact default otherwise
        self._dumps_options.update(self.dumps_kwargs)

    def to_config(self) -> dict[str, Any]:
        """``{"type": "json", "jsonlib": ...}``, plus ``dumps_kwargs``/``loads_kwargs`` when set."""
        config: dict[str, Any] = {"type": self.type, "jsonlib": self.jsonlib}
        if self.dumps_kwargs:
            config["dumps_kwargs"] = dict(self.dumps_kwargs)
        if self.loads_kwargs:
            config["loads_kwargs"] = dict(self.loads_kwargs)
        return config

    def dumps_chunks(self, obj: Any) -> Sequence[Buffer]:
        """One chunk of UTF-8 JSON text."""
        try:
            tree = encode_value(obj)
        except RecursionError as exc:
            raise SerializationError(
                f"{self!r} cannot serialize a value of type {type(obj).__qualname__}: it nests "
                "too deeply or contains a reference cycle; use PickleSerializer"
            ) from exc
        except SerializationError:
            raise
        except Exception as exc:  # e.g. a registered encode= function failed
            raise SerializationError(
                f"{self!r} failed to encode a value of type {type(obj).__qualname__} "
                f"({type(exc).__name__}: {exc}); use PickleSerializer or fix its registered encoder"
            ) from exc
        try:
            if self.jsonlib == "orjson":
                import orjson

                return [orjson.dumps(tree, **self.dumps_kwargs)]
            text = json.dumps(tree, **self._dumps_options)
            return [text.encode("utf-8")]
        except (TypeError, ValueError) as exc:  # e.g. a lone surrogate in a string
            raise SerializationError(
                f"{self!r} cannot serialize a value of type {type(obj).__qualname__}: {exc}; "
                "use PickleSerializer"
            ) from exc

    def dumps(self, obj: Any) -> bytes:
        """Serialize ``obj`` to UTF-8 JSON bytes."""
        return bytes(self.dumps_chunks(obj)[0])

    def loads(self, data: Buffer) -> Any:
        """Parse JSON text and rebuild the tagged values."""
        if isinstance(data, memoryview):
            data = data.tobytes()  # `in` on a memoryview compares items, not substrings
        needs_decoding = _TAG_MARKER in data
        try:
            if self.jsonlib == "orjson":
                import orjson

                tree = orjson.loads(data)
                return _decode_tree(tree) if needs_decoding else tree
            text = str(data, "utf-8")
            if needs_decoding:
                return json.loads(text, object_hook=decode_object, **self.loads_kwargs)
            return json.loads(text, **self.loads_kwargs)
        except SerializationError:
            raise
        except (ValueError, TypeError, RecursionError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise SerializationError(f"{self!r} cannot parse the payload as JSON: {exc}") from exc


def _decode_tree(node: Any) -> Any:
    """Bottom-up decoding, as ``json``'s object hook does, for orjson (which has no hook)."""
    kind = type(node)
    if kind is dict:
        return decode_object({key: _decode_tree(value) for key, value in node.items()})
    if kind is list:
        return [_decode_tree(item) for item in node]
    return node
