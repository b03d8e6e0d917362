"""The type-tagged JSON encoding: Python values <-> JSON-native trees.

A value JSON cannot hold becomes ``{"__rk__": TAG, ...}``; a dict whose keys are
not all strings, or that has a ``"__rk__"`` key of its own, becomes
``{"__rk__": "dict", "v": [[key, value], ...]}``. Lists, str-keyed dicts, strings,
bools, None, int64 ints and finite floats stay as they are.

Decoding never imports or runs code named by the data: dataclasses, pydantic models,
enums and exception classes are rebuilt only from a class registered with
:func:`register_json_type` or found in an already-imported module; otherwise they come
back as plain values (exceptions: as their nearest built-in base) with a ``UserWarning``.
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import datetime as dt
import enum
import io
import pathlib
import sys
import uuid
import warnings
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError, SerializationError
from ._hints import can_pickle
from ._json_lookup import class_origin, imported_object, warn_missing_class
from ._json_lookup import qualified_name as _qualified_name
from .json_exceptions import decode_exception, encode_exception

__all__ = ["TAG", "decode_object", "encode_value", "register_json_type"]

#: The key marking a tagged object.
TAG = "__rk__"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_PATH_TYPES: dict[str, type[pathlib.PurePath]] = {
    cls.__name__: cls
    for cls in (pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath, pathlib.WindowsPath)
}


@dataclasses.dataclass(frozen=True)
class _Registration:
    cls: type
    tag: str
    encode: Callable[[Any], Any] | None
    decode: Callable[[Any], Any] | None


_BY_CLASS: dict[type, _Registration] = {}
_BY_TAG: dict[str, _Registration] = {}


def register_json_type(
    cls: type,
    *,
    tag: str | None = None,
    encode: Callable[[Any], Any] | None = None,
    decode: Callable[[Any], Any] | None = None,
) -> None:
    """Let :class:`JSONSerializer` write and rebuild instances of ``cls``.

    Dataclasses, pydantic models and enums need no functions: registering them lets a
    reader rebuild them even when their module is not imported. Other classes need
    ``encode`` (instance -> JSON-able value) and ``decode`` (that value -> instance).

    >>> class Money:
    ...     def __init__(self, cents: int) -> None: self.cents = cents
    >>> register_json_type(Money, tag="money", encode=lambda m: m.cents, decode=Money)
    """
    if not isinstance(cls, type):
        raise ConfigurationError(f"register_json_type needs a class, got {type(cls).__name__} {cls!r}")
    if (encode is None) != (decode is None):
        raise ConfigurationError(
            f"register_json_type({cls.__qualname__}): pass both encode= and decode=, or neither"
        )
    if encode is None and _structured_kind(cls) is None:
        raise ConfigurationError(
            f"register_json_type({cls.__qualname__}): only dataclasses, pydantic models, enums and "
            "exception classes can be registered without encode= and decode= functions"
        )
    tag = _qualified_name(cls) if tag is None else tag
    if not isinstance(tag, str) or not tag:
        raise ConfigurationError(f"register_json_type tag must be a non-empty string, got {tag!r}")
    previous = _BY_TAG.get(tag)
    # A class redefined under the same name (a reloaded module, a notebook cell) takes over its tag.
    if previous is not None and _qualified_name(previous.cls) != _qualified_name(cls):
        raise ConfigurationError(
            f"JSON type tag {tag!r} is already registered for {previous.cls.__qualname__}; "
            "choose another tag="
        )
    if previous is not None:
        _BY_CLASS.pop(previous.cls, None)
    old = _BY_CLASS.pop(cls, None)
    if old is not None:
        _BY_TAG.pop(old.tag, None)
    registration = _Registration(cls, tag, encode, decode)
    _BY_CLASS[cls] = registration
    _BY_TAG[tag] = registration


def _structured_kind(cls: type) -> str | None:
    if issubclass(cls, BaseException):  # first: a dataclass exception is still an exception
        return "exception"
    if issubclass(cls, enum.Enum):
        return "enum"
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        return "pydantic"
    return None


# ---------------------------------------------------------------- encoding


def encode_value(obj: Any) -> Any:
    """A JSON-native tree (dicts with str keys, lists, str, int64, finite floats) for ``obj``.

    Containers that need no tags are returned as they are, not copied.
    """
    kind = type(obj)
    if kind is str or kind is bool or obj is None:
        return obj
    if kind is int:
        return obj if _INT64_MIN <= obj <= _INT64_MAX else {TAG: "int", "v": str(obj)}
    if kind is float:
        return obj if obj - obj == 0.0 else {TAG: "float", "v": repr(obj)}
    if kind is list:
        return _encode_list(obj)
    if kind is dict:
        return _encode_dict(obj)
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return encoder(obj)
    return _encode_other(obj)


# The two functions below are the hot path for large plain data, so they repeat the scalar
# checks of encode_value inline and copy a container only once a member needs a tag.
_TEXT_TYPES = frozenset({str, bool, type(None)})


def _encode_list(obj: list[Any]) -> list[Any]:
    if set(map(type, obj)) <= _TEXT_TYPES:  # set and map run in C
        return obj
    encoded_list: list[Any] | None = None
    for index, value in enumerate(obj):
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is float and value - value == 0.0:  # finite
            continue
        if kind is int and _INT64_MIN <= value <= _INT64_MAX:
            continue
        encoded = _encode_dict(value) if kind is dict else encode_value(value)
        if encoded is value:
            continue
        if encoded_list is None:
            encoded_list = list(obj)
        encoded_list[index] = encoded
    return obj if encoded_list is None else encoded_list


def _encode_dict(obj: dict[Any, Any]) -> dict[str, Any]:
    if TAG in obj or not set(map(type, obj)) <= {str}:
        return {TAG: "dict", "v": [[encode_value(k), encode_value(v)] for k, v in obj.items()]}
    encoded_dict: dict[str, Any] | None = None
    for key, value in obj.items():
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is float and value - value == 0.0:
            continue
        if kind is int and _INT64_MIN <= value <= _INT64_MAX:
            continue
        encoded = _encode_list(value) if kind is list else encode_value(value)
        if encoded is value:
            continue
        if encoded_dict is None:
            encoded_dict = dict(obj)
        encoded_dict[key] = encoded
    return obj if encoded_dict is None else encoded_dict


def _b64(data: Any) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _encode_datetime(obj: dt.datetime) -> dict[str, Any]:
    tagged: dict[str, Any] = {TAG: "datetime", "v": obj.isoformat()}
    zone = getattr(obj.tzinfo, "key", None)
    if isinstance(obj.tzinfo, zoneinfo.ZoneInfo) and zone:
        tagged["zone"] = zone
    if obj.fold:
        tagged["fold"] = 1
    return tagged


def _encode_time(obj: dt.time) -> dict[str, Any]:
    tagged: dict[str, Any] = {TAG: "time", "v": obj.isoformat()}
    if obj.fold:
        tagged["fold"] = 1
    return tagged


def _encode_path(obj: pathlib.PurePath) -> dict[str, Any]:
    return {TAG: "path", "kind": type(obj).__name__, "v": str(obj)}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    tuple: lambda obj: {TAG: "tuple", "v": [encode_value(item) for item in obj]},
    set: lambda obj: {TAG: "set", "v": [encode_value(item) for item in obj]},
    frozenset: lambda obj: {TAG: "frozenset", "v": [encode_value(item) for item in obj]},
    bytes: lambda obj: {TAG: "bytes", "v": _b64(obj)},
    bytearray: lambda obj: {TAG: "bytearray", "v": _b64(obj)},
    dt.datetime: _encode_datetime,
    dt.date: lambda obj: {TAG: "date", "v": obj.isoformat()},
    dt.time: _encode_time,
    dt.timedelta: lambda obj: {TAG: "timedelta", "v": [obj.days, obj.seconds, obj.microseconds]},
    uuid.UUID: lambda obj: {TAG: "uuid", "v": str(obj)},
    Decimal: lambda obj: {TAG: "decimal", "v": str(obj)},
    **{cls: _encode_path for cls in _PATH_TYPES.values()},
}


def _class_tag(cls: type) -> str:
    registration = _BY_CLASS.get(cls)
    if registration is not None:
        return registration.tag
    origin = class_origin(cls)  # Result[str] is tagged, and rebuilt, as Result
    return _class_tag(origin) if origin is not cls else _qualified_name(cls)


def _encode_other(obj: Any) -> Any:
    cls = type(obj)
    for base in cls.__mro__:
        registration = _BY_CLASS.get(base)
        if registration is not None and registration.encode is not None:
            return {TAG: "custom", "tag": registration.tag, "v": encode_value(registration.encode(obj))}
    kind = _structured_kind(cls)
    if kind == "exception":
        return encode_exception(obj, _class_tag(cls), encode_value, TAG)
    if kind == "enum":
        return {TAG: "enum", "cls": _class_tag(cls), "v": encode_value(obj.value)}
    if kind == "dataclass":
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {TAG: "dataclass", "cls": _class_tag(cls), "v": _encode_dict(fields)}
    if kind == "pydantic":
        fields = {name: getattr(obj, name) for name in cls.model_fields}
        tagged = {TAG: "pydantic", "cls": _class_tag(cls), "v": _encode_dict(fields)}
        if obj.__pydantic_extra__:
            tagged["extra"] = _encode_dict(obj.__pydantic_extra__)
        tagged["set"] = sorted(obj.model_fields_set)
        return tagged
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ndarray | numpy.generic):
        return _encode_numpy(numpy, obj)
    if isinstance(obj, io.IOBase):
        raise SerializationError(
            f"JSONSerializer does not serialize file-like objects ({cls.__module__}.{cls.__qualname__}); "
            "it was not read. Store its contents (e.g. .read() or .getvalue()) or its path instead"
        )
    raise SerializationError(
        f"JSONSerializer cannot serialize a value of type {cls.__module__}.{cls.__qualname__}: "
        "register it with resultkit.serializers.register_json_type(cls, encode=..., decode=...)"
        + (", or use PickleSerializer" if can_pickle(obj) else "; pickle cannot hold it either, so "
           "return plain data instead (leave open files, locks, sockets and clients out of the result)")
    )


def _encode_numpy(numpy: Any, obj: Any) -> dict[str, Any]:
    dtype = obj.dtype
    if dtype.hasobject:
        if isinstance(obj, numpy.generic):
            raise SerializationError("JSONSerializer cannot serialize numpy object scalars; use PickleSerializer")
        return {TAG: "ndarray", "dtype": "object", "shape": list(obj.shape), "v": encode_value(obj.ravel().tolist())}
    descr: Any = dtype.str if dtype.fields is None else numpy.lib.format.dtype_to_descr(dtype)
    if isinstance(obj, numpy.generic):
        if dtype.kind in "US":  # their dtype follows the value's length; rebuild from the value
            return {TAG: "npscalar", "dtype": dtype.kind, "item": encode_value(obj.item())}
        return {TAG: "npscalar", "dtype": descr, "v": _b64(obj.tobytes())}
    # Viewed as bytes because buffers of some dtypes (datetime64) cannot be exported directly.
    raw = numpy.ascontiguousarray(obj).reshape(-1).view(numpy.uint8)
    return {TAG: "ndarray", "dtype": descr, "shape": list(obj.shape), "v": _b64(raw.data)}


# ---------------------------------------------------------------- decoding


def decode_object(obj: dict[str, Any]) -> Any:
    """Rebuild one JSON object whose children are already decoded (a ``json`` object hook)."""
    tag = obj.get(TAG)
    if tag is None:
        return obj
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise SerializationError(
            f"unknown JSON type tag {tag!r}; the record was written by a newer resultkit or is corrupt"
        )
    try:
        return decoder(obj)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"malformed JSON-encoded {tag!r} value {obj!r}: {exc}") from exc


def _decode_datetime(obj: dict[str, Any]) -> dt.datetime:
    value = dt.datetime.fromisoformat(obj["v"])
    zone = obj.get("zone")
    if isinstance(zone, str):
        # Same wall time and fold in the named zone. ZoneInfo reads tz data files only
        # (it rejects path-like keys); an unknown key keeps the fixed offset.
        with contextlib.suppress(ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
            value = value.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    return value.replace(fold=obj.get("fold", 0))


def _decode_path(obj: dict[str, Any]) -> pathlib.PurePath:
    cls = _PATH_TYPES[obj["kind"]]
    if cls is pathlib.WindowsPath or cls is pathlib.PosixPath:
        cls = pathlib.Path  # the concrete path of the reading platform
    return cls(obj["v"])


def _decode_dict(obj: dict[str, Any]) -> dict[Any, Any]:
    return {key: value for key, value in obj["v"]}


def _decode_int(obj: dict[str, Any]) -> int:
    return int(obj["v"])


def _decode_float(obj: dict[str, Any]) -> float:
    text = obj["v"]
    if text not in ("nan", "inf", "-inf"):
        raise ValueError(f"not a non-finite float: {text!r}")
    return float(text)


def _find_class(tag: str, kind: str) -> type | None:
    """The registered or already-imported class of ``kind`` for ``tag``; never imports anything."""
    registration = _BY_TAG.get(tag)
    target: Any = registration.cls if registration is not None else imported_object(tag)
    if isinstance(target, type) and _structured_kind(target) == kind:
        return target
    return None


def _missing_class(kind: str, tag: str, fallback: str) -> None:
    warn_missing_class(kind, tag, fallback, stacklevel=5)


def _decode_enum(obj: dict[str, Any]) -> Any:
    cls = _find_class(obj["cls"], "enum")
    if cls is None:
        _missing_class("enum", obj["cls"], "its value")
        return obj["v"]
    return cls(obj["v"])


def _decode_dataclass(obj: dict[str, Any]) -> Any:
    fields = obj["v"]
    cls = _find_class(obj["cls"], "dataclass")
    if cls is None:
        _missing_class("dataclass", obj["cls"], "a dict of its fields")
        return fields
    # Set fields directly, as pickle does: __init__/__post_init__ already ran when it was made.
    # Only declared fields are set, so the data cannot reach other attributes (__class__...).
    instance: Any = object.__new__(cls)
    for field in dataclasses.fields(cls):
        if field.name in fields:
            value = fields[field.name]
        elif field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            raise SerializationError(
                f"the stored {obj['cls']} has no field {field.name!r}, which the class now requires"
            )
        object.__setattr__(instance, field.name, value)
    unknown = set(fields) - {field.name for field in dataclasses.fields(cls)}
    if unknown:
        warnings.warn(
            f"JSONSerializer: dropped stored fields {sorted(unknown)} that {obj['cls']} no longer has",
            UserWarning,
            stacklevel=4,
        )
    return instance


def _decode_pydantic(obj: dict[str, Any]) -> Any:
    fields = dict(obj["v"])
    cls = _find_class(obj["cls"], "pydantic")
    if cls is None:
        _missing_class("pydantic model", obj["cls"], "a dict of its fields")
        return {**fields, **obj.get("extra", {})}
    return cls.model_construct(_fields_set=set(obj["set"]), **fields, **obj.get("extra", {}))  # type: ignore[attr-defined]


def _decode_custom(obj: dict[str, Any]) -> Any:
    registration = _BY_TAG.get(obj["tag"])
    if registration is None or registration.decode is None:
        _missing_class("custom type", obj["tag"], "its encoded value")
        return obj["v"]
    return registration.decode(obj["v"])


def _decode_ndarray(obj: dict[str, Any]) -> Any:
    import numpy  # a fixed dependency of this tag, never a name from the data

    shape = tuple(obj["shape"])
    if not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"shape must be a list of non-negative ints, got {obj['shape']!r}")
    if obj["dtype"] == "object":
        items = obj["v"]
        # The shape is checked against the items present before anything is allocated:
        # a few bytes declaring a huge array must not make the reader allocate it.
        count = 1
        for n in shape:
            count *= n
        if not isinstance(items, list) or count != len(items):
            raise ValueError(
                f"shape {list(shape)} holds {count} items but the payload has "
                f"{len(items) if isinstance(items, list) else 'no list of'} items"
            )
        array = numpy.empty(shape, dtype=object)
        flat = array.reshape(-1)  # a view: the array is fresh and contiguous
        for index, item in enumerate(items):
            flat[index] = item
        return array
    dtype = _numpy_dtype(numpy, obj["dtype"])
    data = bytearray(binascii.a2b_base64(obj["v"]))
    return numpy.frombuffer(data, dtype=dtype).reshape(shape)


def _decode_npscalar(obj: dict[str, Any]) -> Any:
    import numpy

    if "item" in obj:
        scalar_type = {"U": numpy.str_, "S": numpy.bytes_}[obj["dtype"]]
        return scalar_type(obj["item"])
    return numpy.frombuffer(binascii.a2b_base64(obj["v"]), dtype=_numpy_dtype(numpy, obj["dtype"]))[0]


def _numpy_dtype(numpy: Any, descr: Any) -> Any:
    if isinstance(descr, str):
        dtype = numpy.dtype(descr)
    else:  # structured: JSON turned the descr's tuples into lists
        dtype = numpy.lib.format.descr_to_dtype(_descr_from_json(descr))
    if dtype.hasobject:
        raise ValueError("object fields cannot be decoded from raw bytes")
    return dtype


def _descr_from_json(descr: list[Any]) -> list[tuple[Any, ...]]:
    fields = []
    for name, field_format, *shape in descr:
        fields.append(
            (
                tuple(name) if isinstance(name, list) else name,
                _descr_from_json(field_format) if isinstance(field_format, list) else field_format,
                *(tuple(s) for s in shape),
            )
        )
    return fields


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dict": _decode_dict,
    "int": _decode_int,
    "float": _decode_float,
    "tuple": lambda obj: tuple(obj["v"]),
    "set": lambda obj: set(obj["v"]),
    "frozenset": lambda obj: frozenset(obj["v"]),
    "bytes": lambda obj: binascii.a2b_base64(obj["v"]),
    "bytearray": lambda obj: bytearray(binascii.a2b_base64(obj["v"])),
    "datetime": _decode_datetime,
    "date": lambda obj: dt.date.fromisoformat(obj["v"]),
    "time": lambda obj: dt.time.fromisoformat(obj["v"]).replace(fold=obj.get("fold", 0)),
    "timedelta": lambda obj: dt.timedelta(*obj["v"]),
    "uuid": lambda obj: uuid.UUID(obj["v"]),
    "decimal": lambda obj: Decimal(obj["v"]),
    "path": _decode_path,
    "enum": _decode_enum,
    "dataclass": _decode_dataclass,
    "pydantic": _decode_pydantic,
    "custom": _decode_custom,
    "exception": lambda obj: decode_exception(obj, lambda tag: _find_class(tag, "exception")),
    "ndarray": _decode_ndarray,
    "npscalar": _decode_npscalar,
}
