"""CompressedSerializer: libraries, nested configs, streaming without joins, corrupt payloads."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import zstandard

from resultkit.errors import ConfigurationError, SerializationError
from resultkit.serializers import CompressedSerializer, JSONSerializer, PickleSerializer, Serializer

LIBRARIES = ["zstandard", "zlib", "bz2", "lzma"]


@pytest.mark.parametrize("compressionlib", LIBRARIES)
@pytest.mark.parametrize("inner", ["pickle", "json"])
def test_round_trip_and_config(compressionlib: str, inner: str) -> None:
    s = CompressedSerializer(inner, compressionlib=compressionlib, level=1)
    value = {"rows": [{"i": i, "s": "x" * (i % 7)} for i in range(500)], "t": (1, 2)}
    payload = s.dumps(value)
    assert len(payload) < len(s.serializer.dumps(value))
    assert s.loads(payload) == value
    config = s.to_config()
    assert config["serializer"] == s.serializer.to_config()
    assert Serializer.from_config(config) == s


def test_defaults_are_zstandard_over_cloudpickle() -> None:
    assert CompressedSerializer().to_config() == {
        "type": "compressed",
        "serializer": {"type": "pickle", "picklelib": "cloudpickle", "protocol": 5},
        "compressionlib": "zstandard",
        "level": None,
    }


def test_inner_serializer_as_instance_name_or_config() -> None:
    by_instance = CompressedSerializer(JSONSerializer("orjson"))
    by_config = CompressedSerializer({"type": "json", "jsonlib": "orjson"})
    assert by_instance == by_config
    assert CompressedSerializer("json") == CompressedSerializer(JSONSerializer())


def test_zstd_frame_records_content_size() -> None:
    s = CompressedSerializer()
    array = np.arange(100_000, dtype="f8")
    payload = s.dumps(array)
    assert zstandard.get_frame_parameters(payload).content_size == len(PickleSerializer().dumps(array))


def test_large_array_round_trips_writable_through_the_threaded_path() -> None:
    array = np.random.default_rng(0).integers(0, 50, size=2_000_000, dtype="i8")  # 16 MB
    s = CompressedSerializer()
    got = s.loads(s.dumps(array))
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable  # a view into the decompressed bytearray, not a read-only copy


@pytest.mark.parametrize("compressionlib", ["zstandard", "zlib"])
def test_dumping_streams_over_chunks_without_joining_them(compressionlib: str) -> None:
    # Incompressible data, so the compressed output is itself ~1x: joining the inner chunks
    # first would push the peak to ~2x.
    array = np.random.default_rng(1).bytes(8 << 20)
    s = CompressedSerializer(compressionlib=compressionlib, level=1)
    tracemalloc.start()
    try:
        payload_pieces = s.dumps_chunks(np.frombuffer(array, dtype="u1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(len(p) for p in payload_pieces) > len(array)  # really incompressible
    assert peak < 1.5 * len(array)


@pytest.mark.parametrize("compressionlib", LIBRARIES)
def test_corrupt_payloads_raise_serialization_error(compressionlib: str) -> None:
    s = CompressedSerializer(compressionlib=compressionlib)
    payload = s.dumps(list(range(1000)))
    for bad in (payload[: len(payload) // 2], payload + b"trailing", b"", b"garbage" * 10):
        with pytest.raises(SerializationError):
            s.loads(bad)


def test_payload_of_another_library_is_refused() -> None:
    payload = CompressedSerializer(compressionlib="zlib").dumps([1, 2])
    with pytest.raises(SerializationError, match="compressionlib"):
        CompressedSerializer(compressionlib="lzma").loads(payload)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"compressionlib": "snappy"}, "compressionlib"),
        ({"compressionlib": "zlib", "level": 10}, "level"),
        ({"level": "high"}, "level"),
        ({"serializer": "yaml"}, "serializer name"),
        ({"serializer": 3}, "result_serializer"),
    ],
)
def test_bad_options_raise_configuration_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CompressedSerializer(**kwargs)  # type: ignore[arg-type]


def test_unknown_inner_type_in_a_record_config_is_a_serialization_error() -> None:
    config = {"type": "compressed", "serializer": {"type": "msgpack"}, "compressionlib": "zstandard"}
    with pytest.raises(SerializationError, match="msgpack"):
        Serializer.from_config(config)


def test_zstd_loads_decompresses_into_one_buffer() -> None:
    array = np.random.default_rng(2).integers(0, 1 << 62, size=1 << 20, dtype="i8")  # 8 MB
    s = CompressedSerializer()
    payload = s.dumps(array)
    tracemalloc.start()
    try:
        got = s.loads(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, array)
    assert peak < 1.25 * array.nbytes  # the buffer the array views, and no second copy
