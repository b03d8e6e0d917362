"""Property tests: every serializer, with and without compression, returns equal values of equal types."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from resultkit.serializers import CompressedSerializer, JSONSerializer, PickleSerializer, Serializer

from .strategies import assert_same, values

SERIALIZERS = [
    PickleSerializer(),
    PickleSerializer(picklelib="pickle"),
    JSONSerializer("json"),
    JSONSerializer("orjson"),
    JSONSerializer(dumps_kwargs={"indent": 1, "ensure_ascii": True}),  # Prefect's dumps_kwargs: shape only
    JSONSerializer("orjson", dumps_kwargs={"option": orjson.OPT_INDENT_2}),
    CompressedSerializer(PickleSerializer()),
    CompressedSerializer(JSONSerializer("json"), compressionlib="zlib"),
    CompressedSerializer(JSONSerializer("orjson"), compressionlib="lzma"),
    CompressedSerializer("pickle", compressionlib="bz2"),
]
_settings = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=repr)
@_settings
@given(value=values)
def test_round_trip_keeps_values_and_types(serializer: Serializer, value: Any) -> None:
    snapshot = copy.deepcopy(value)
    assert_same(serializer.loads(serializer.dumps(value)), value)
    assert_same(value, snapshot)  # dumping never modifies the value
    # A reader gets its serializer from the record's config, so round-trip through that too.
    reader = Serializer.from_config(serializer.to_config())
    assert_same(reader.loads(bytearray(serializer.dumps(value))), value)


@_settings
@given(value=values)
def test_json_and_orjson_read_each_others_output(value: Any) -> None:
    by_json = JSONSerializer("json").dumps(value)
    by_orjson = JSONSerializer("orjson").dumps(value)
    assert_same(JSONSerializer("orjson").loads(by_json), value)
    assert_same(JSONSerializer("json").loads(by_orjson), value)
    assert_same(JSONSerializer("json").loads(by_json), JSONSerializer("json").loads(by_orjson))
    by_json.decode("utf-8")  # plain UTF-8 text
    by_orjson.decode("utf-8")
