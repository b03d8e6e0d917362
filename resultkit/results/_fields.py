"""Record header fields, declared once: each metadata field says how it is written and read.

A field of the metadata dataclass carries ``metadata=wire(...)``: its JSON type, codec
(e.g. timestamps), JSON name, value on read when absent, and the header version that
introduced it; the dataclass field itself gives its name, type and default. :class:`HeaderCodec` derives everything else from those declarations: the
``metadata`` object of a header, the header version a record needs, the general decoder
(which explains every refusal) and the fast decoder a cache hit runs.

The fast paths are generated as Python source once, at import, as ``dataclasses`` and
``attrs`` do: a dict literal and straight-line exact type checks cost a fraction of a loop
over the fields, and a header is decoded on every cache hit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..errors import RecordCorruptError

__all__ = ["HeaderCodec", "WireField", "wire"]

T = TypeVar("T")

_NO_DEFAULT: Any = object()  # `missing` not given (None is a value it may take)

# How a refusal names each JSON type.
_JSON_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", list: "an array"}


@dataclasses.dataclass(frozen=True)
class WireField:
    """How one metadata field appears in the header's ``metadata`` object."""

    #: The JSON type of a present, non-null value (``int`` excludes ``true``/``false``).
    kind: type
    #: Attribute value -> JSON value (applied to non-None values); None: kept as it is.
    to_json: Callable[[Any], Any] | None = None
    #: JSON value -> attribute value (applied to non-None values; ``ValueError`` refuses it).
    from_json: Callable[[Any], Any] | None = None
    #: The smallest value an integer may hold, or None.
    minimum: int | None = None
    #: The first header version carrying the field. A field newer than version 1 is written
    #: only when set, so records without it stay byte-identical older-version records.
    since: int = 1
    #: The member name in the header ("": the attribute's name).
    json_name: str = ""
    #: What an absent or null member reads as (default: the dataclass field's default).
    missing: Any = _NO_DEFAULT


def wire(kind: type, *, to_json: Callable[[Any], Any] | None = None,
         from_json: Callable[[Any], Any] | None = None, minimum: int | None = None, since: int = 1,
         json_name: str = "", missing: Any = _NO_DEFAULT) -> dict[str, WireField]:
    """The ``metadata=`` of a ``dataclasses.field`` that declares how the header carries it.

    A field without a default is a required member; ``missing`` (default: the field's
    default, or its ``default_factory`` called for each read) is what a header without the
    member, or with ``null``, reads as.
    """
    return {"wire": WireField(kind, to_json, from_json, minimum, since, json_name, missing)}


@dataclasses.dataclass(frozen=True)
class _Member:
    """A field's declaration, resolved against its dataclass field."""

    name: str
    json_name: str
    wire: WireField
    required: bool
    missing: Any
    missing_factory: Callable[[], Any] | None

    def read_missing(self) -> Any:
        return self.missing if self.missing_factory is None else self.missing_factory()


def _member(field: dataclasses.Field[Any]) -> _Member:
    declared: WireField = field.metadata["wire"]
    factory = None if field.default_factory is dataclasses.MISSING else field.default_factory
    required = field.default is dataclasses.MISSING and factory is None
    missing = None if required else field.default
    if declared.missing is not _NO_DEFAULT:
        missing, factory = declared.missing, None
    return _Member(field.name, declared.json_name or field.name, declared, required, missing, factory)


class HeaderCodec(Generic[T]):
    """The header codec of a dataclass whose fields carry ``metadata=wire(...)``."""

    def __init__(self, cls: type[T]) -> None:
        self.cls = cls
        self.members = tuple(_member(field) for field in dataclasses.fields(cls)  # type: ignore[arg-type]
                             if "wire" in field.metadata)
        self.required = tuple(member.json_name for member in self.members if member.required)
        names: dict[str, Any] = {"new": object.__new__, "cls": cls}
        for index, member in enumerate(self.members):
            names[f"K{index}"], names[f"E{index}"] = member.wire.kind, member.wire.to_json
            names[f"D{index}"] = member.wire.from_json
            names[f"M{index}"] = member.missing if member.missing_factory is None else member.missing_factory
        namespace: dict[str, Any] = {}
        exec(compile(self._source(), f"<header codec of {cls.__qualname__}>", "exec"), names, namespace)
        #: The ``metadata`` object of a header (JSON-safe, in declaration order).
        self.to_dict: Callable[[T], dict[str, Any]] = namespace["to_dict"]
        #: The header version ``metadata`` needs: the newest ``since`` among the fields it sets.
        self.version: Callable[[T], int] = namespace["version"]
        #: An instance from a ``metadata`` object as resultkit writes it (exact JSON types);
        #: None for anything else, which :meth:`from_dict` explains.
        self.from_dict_fast: Callable[[dict[str, Any]], T | None] = namespace["from_dict_fast"]

    def from_dict(self, data: dict[str, Any]) -> T:
        """An instance from any ``metadata`` object; ``RecordCorruptError`` naming a missing or invalid member."""
        fast = self.from_dict_fast(data)
        if fast is not None:
            return fast
        missing = [name for name in self.required if name not in data]
        if missing:
            raise RecordCorruptError(f"record header lacks the field(s) {missing}")
        values = {member.name: self._read(member, data.get(member.json_name)) for member in self.members}
        return self.cls(**values)

    @staticmethod
    def _read(member: _Member, raw: Any) -> Any:
        name, wire = member.json_name, member.wire
        if raw is None and not member.required:
            return member.read_missing()
        if not isinstance(raw, wire.kind) or (wire.kind is int and isinstance(raw, bool)):
            kind = _JSON_NAMES.get(wire.kind, wire.kind.__name__)
            raise RecordCorruptError(
                f"record header has an invalid field: {name} must be {kind}, got {type(raw).__name__} {raw!r}"
            )
        value: Any = raw  # of wire.kind now
        if wire.minimum is not None and value < wire.minimum:
            below = "negative" if wire.minimum == 0 else f"below {wire.minimum}"
            raise RecordCorruptError(f"record header has an invalid field: {name} {value} is {below}")
        if wire.from_json is None:
            return value
        try:
            return wire.from_json(value)
        except (TypeError, ValueError) as exc:
            raise RecordCorruptError(f"record header has an invalid field: {name}: {exc}") from None

    def _source(self) -> str:
        # Names in the generated code: K<i> the JSON type, E<i>/D<i> the codec, M<i> the missing value.
        encoded: list[str] = []
        later: list[str] = []
        checks: list[str] = []
        decodes: list[str] = []
        values: list[str] = []
        versions: dict[int, list[str]] = {}
        lines = ["def from_dict_fast(data):", "    get = data.get", "    try:"]
        for index, member in enumerate(self.members):
            name, wire, required = member.name, member.wire, member.required
            attribute, raw = f"self.{name}", f"v{index}"
            value = attribute if wire.to_json is None else (
                f"E{index}({attribute})" if required else f"(None if {attribute} is None else E{index}({attribute}))")
            if wire.since > 1:
                later.append(f"    if {attribute} is not None:\n        fields[{member.json_name!r}] = {value}")
                versions.setdefault(wire.since, []).append(f"{attribute} is not None")
            else:
                encoded.append(f"{member.json_name!r}: {value}")
            lines.append(f"        {raw} = data[{member.json_name!r}]" if required
                         else f"        {raw} = get({member.json_name!r})")
            check = f"type({raw}) is K{index}" + ("" if wire.minimum is None else f" and {raw} >= {wire.minimum}")
            checks.append(check if required else f"({raw} is None or {check})")
            if wire.from_json is not None:
                decodes.append(f"        {raw} = D{index}({raw})" if required
                               else f"        if {raw} is not None:\n            {raw} = D{index}({raw})")
            if required or (member.missing is None and member.missing_factory is None):
                values.append(f"{name!r}: {raw}")
            else:
                fresh = f"M{index}" if member.missing_factory is None else f"M{index}()"
                values.append(f"{name!r}: {fresh} if {raw} is None else {raw}")
        lines += ["    except KeyError:", "        return None",
                  "    if not (" + "\n            and ".join(checks) + "):", "        return None"]
        if decodes:
            lines += ["    try:", *decodes, "    except ValueError:", "        return None"]
        lines += ["    instance = new(cls)",
                  "    # One dict literal as the instance dict: no keyword dict built and copied.",
                  "    instance.__dict__ = {" + ", ".join(values) + "}", "    return instance", ""]
        lines += ["def to_dict(self):", "    fields = {" + ", ".join(encoded) + "}", *later, "    return fields", ""]
        version = "1"
        for since in sorted(versions):
            version = f"{since} if ({' or '.join(versions[since])}) else {version}"
        lines += ["def version(self):", f"    return {version}", ""]
        return "\n".join(lines)
