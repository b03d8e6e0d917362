"""The serializer registry: record types and names resolve through one table, with install hints."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import pytest

from resultkit.errors import ConfigurationError, SerializationError
from resultkit.serializers import (
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    register_serializer_type,
    resolve_serializer,
)


class Reversed(Serializer):
    """Wraps another serializer and reverses its bytes: a wrapper chosen as ``"reversed/<inner>"``."""

    type: ClassVar[str] = "reversed"

    def __init__(self, serializer: Any = "pickle") -> None:
        self.inner = Serializer.from_config(serializer) if isinstance(serializer, dict) else resolve_serializer(serializer)

    @classmethod
    def from_name(cls, inner: str | None = None) -> Serializer:
        return cls(inner or "pickle")

    def dumps_chunks(self, obj: Any) -> list[bytes]:
        return [self.inner.dumps(obj)[::-1]]

    def loads(self, data: Any) -> Any:
        return self.inner.loads(bytes(data)[::-1])

    def to_config(self) -> dict[str, Any]:
        return {"type": self.type, "serializer": self.inner.to_config()}


def test_a_registered_type_is_chosen_by_name_and_read_from_records() -> None:
    register_serializer_type("reversed", Reversed)
    chosen = resolve_serializer("reversed/json")
    assert isinstance(chosen, Reversed) and chosen.inner == JSONSerializer()
    assert resolve_serializer("Reversed") == Reversed("pickle")
    assert Serializer.from_config(chosen.to_config()).loads(chosen.dumps({"a": 1})) == {"a": 1}
    assert resolve_serializer("compressed/reversed/json") == CompressedSerializer(Reversed("json"))


def test_builtin_names_resolve_through_the_same_table() -> None:
    assert resolve_serializer("compressed") == CompressedSerializer(PickleSerializer())
    assert resolve_serializer("compressed/json") == CompressedSerializer(JSONSerializer())
    with pytest.raises(ConfigurationError, match="wraps none"):
        resolve_serializer("json/pickle")
    with pytest.raises(ConfigurationError, match="names no inner serializer"):
        resolve_serializer("compressed/")


def test_a_missing_package_names_what_to_install() -> None:
    register_serializer_type("fancy", "rk_no_such_package.fancy:FancySerializer", extra="fancy-package")
    with pytest.raises(ConfigurationError, match=re.escape("pip install 'fancy-package'")):
        resolve_serializer("fancy")
    with pytest.raises(SerializationError, match=re.escape("pip install 'fancy-package'")):
        Serializer.from_config({"type": "fancy"})


def test_a_target_that_is_no_serializer_is_refused() -> None:
    register_serializer_type("notone", "collections:OrderedDict")
    with pytest.raises(ConfigurationError, match="not a Serializer"):
        resolve_serializer("notone")


@pytest.mark.parametrize(("args", "kwargs", "named"), [
    (("", Reversed), {}, "type_name"),
    (("a/b", Reversed), {}, "type_name"),
    (("Upper", Reversed), {}, "type_name"),
    (("ok", "no colon"), {}, "target"),
    (("ok", Reversed), {"extra": ""}, "extra"),
])
def test_bad_registrations_name_the_argument(args: tuple[Any, ...], kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        register_serializer_type(*args, **kwargs)
