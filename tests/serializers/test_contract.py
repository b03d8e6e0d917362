"""The serializer contract (``resultkit.testing``) for pickle, json and compressed/*."""

from __future__ import annotations

import datetime as dt
import decimal
import pathlib
import threading
import uuid
from typing import Any, ClassVar

import pytest

from resultkit.serializers import CompressedSerializer, JSONSerializer, PickleSerializer, Serializer
from resultkit.testing import SafeSerializerContract, SerializerContract

# Beyond JSON's own kinds, what both pickle and resultkit's JSON keep with their types.
RICH = [
    b"\x00bytes\xff", (1, "two", (3.0,)), {1, 2, 3}, frozenset({"a"}),
    dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc), dt.date(2026, 12, 1),
    dt.timedelta(seconds=90), decimal.Decimal("1.10"), uuid.UUID(int=7), pathlib.PurePosixPath("a/b"),
    {"k": (1, 2)},
]


class TestPickle(SerializerContract):
    values: ClassVar[list[Any]] = [*SerializerContract.values, *RICH]

    @pytest.fixture(params=["cloudpickle", "pickle"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return PickleSerializer(picklelib=request.param)


class TestJSON(SafeSerializerContract):
    values: ClassVar[list[Any]] = [*SerializerContract.values, *RICH]
    unserializable: ClassVar[list[Any]] = [threading.Lock(), object()]

    @pytest.fixture(params=["json", "orjson"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return JSONSerializer(request.param)


class TestCompressedPickle(SerializerContract):
    values: ClassVar[list[Any]] = [*SerializerContract.values, *RICH]

    @pytest.fixture(params=["zstandard", "zlib", "bz2", "lzma"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return CompressedSerializer("pickle", compressionlib=request.param)


class TestCompressedJSON(SafeSerializerContract):
    values: ClassVar[list[Any]] = [*SerializerContract.values, *RICH]
    unserializable: ClassVar[list[Any]] = [threading.Lock(), object()]

    @pytest.fixture(params=["zstandard", "zlib"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return CompressedSerializer(JSONSerializer("orjson"), compressionlib=request.param)
