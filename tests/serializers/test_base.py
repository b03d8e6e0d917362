"""The serializer contract: names, configs, the registry of types and the public surface."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

import resultkit.serializers
from resultkit.errors import ConfigurationError, SerializationError
from resultkit.serializers import (
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    register_serializer_type,
    resolve_serializer,
)
from resultkit.serializers.base import Buffer

ALL = [
    PickleSerializer(),
    PickleSerializer(picklelib="pickle", protocol=4),
    JSONSerializer(),
    JSONSerializer("orjson"),
    CompressedSerializer(),
    CompressedSerializer("json", compressionlib="lzma", level=9),
    CompressedSerializer(CompressedSerializer("json"), compressionlib="zlib"),
]


def test_public_names() -> None:
    assert sorted(resultkit.serializers.__all__) == [
        "CompressedSerializer",
        "JSONSerializer",
        "PickleSerializer",
        "Serializer",
        "register_json_type",
        "register_serializer_type",
        "resolve_serializer",
    ]
    assert PickleSerializer.__module__ == "resultkit.serializers"


@pytest.mark.parametrize("serializer", ALL, ids=repr)
def test_config_is_json_safe_and_rebuilds_an_equal_serializer(serializer: Serializer) -> None:
    config = json.loads(json.dumps(serializer.to_config()))
    rebuilt = Serializer.from_config(config)
    assert rebuilt == serializer and hash(rebuilt) == hash(serializer)
    assert rebuilt.loads(serializer.dumps({"k": [1, "two"]})) == {"k": [1, "two"]}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pickle", PickleSerializer()),
        ("json", JSONSerializer()),
        (" JSON ", JSONSerializer()),
        ("compressed", CompressedSerializer()),
        ("compressed/pickle", CompressedSerializer(PickleSerializer())),
        ("compressed/json", CompressedSerializer(JSONSerializer())),
        (None, PickleSerializer()),
    ],
)
def test_resolve_serializer_names(name: str | None, expected: Serializer) -> None:
    assert resolve_serializer(name) == expected


def test_resolve_serializer_passes_instances_through() -> None:
    s = JSONSerializer("orjson")
    assert resolve_serializer(s) is s


@pytest.mark.parametrize("bad", ["yaml", "compressed/yaml", 3, b"json"])
def test_resolve_serializer_rejects_unknown_names(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="serializer"):
        resolve_serializer(bad)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"type": "msgpack"}, "unknown serializer type 'msgpack'.*register_serializer_type"),
        ({"jsonlib": "json"}, "'type'"),
        ("json", "'type'"),
        ({"type": "json", "indent": 2}, "not valid for JSONSerializer"),
    ],
)
def test_bad_configs_raise_serialization_error(config: Any, match: str) -> None:
    with pytest.raises(SerializationError, match=match):
        Serializer.from_config(config)


class ReversedBytes(Serializer):
    """A toy serializer to show that custom types plug into records."""

    type: ClassVar[str] = "tests-reversed"

    def dumps_chunks(self, obj: Any) -> Sequence[Buffer]:
        return [obj[::-1]]

    def loads(self, data: Buffer) -> Any:
        return bytes(data)[::-1]

    def to_config(self) -> dict[str, Any]:
        return {"type": self.type}


def test_registered_serializer_type_loads_from_config() -> None:
    register_serializer_type("tests-reversed", ReversedBytes)
    s = Serializer.from_config({"type": "tests-reversed"})
    assert isinstance(s, ReversedBytes)
    assert s.loads(s.dumps(b"abc")) == b"abc"
    nested = Serializer.from_config(CompressedSerializer(ReversedBytes()).to_config())
    assert nested.loads(nested.dumps(b"xyz")) == b"xyz"


@pytest.mark.parametrize(
    "config",
    [
        {"type": "json", "jsonlib": "ujson"},
        {"type": "pickle", "picklelib": "pickle", "protocol": 99},
        {"type": "compressed", "serializer": {"type": "pickle"}, "compressionlib": "brotli"},
    ],
)
def test_invalid_options_in_a_record_config_raise_serialization_error(config: dict[str, Any]) -> None:
    with pytest.raises(SerializationError, match="not valid"):
        Serializer.from_config(config)


@pytest.mark.parametrize("serializer", ALL, ids=repr)
def test_serializers_pickle_for_workers(serializer: Serializer) -> None:
    import pickle

    import cloudpickle

    for dumps in (pickle.dumps, cloudpickle.dumps):
        copy = pickle.loads(dumps(serializer))
        assert copy == serializer
        assert copy.loads(copy.dumps({"k": (1, 2)})) == {"k": (1, 2)}
