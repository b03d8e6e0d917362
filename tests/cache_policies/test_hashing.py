"""hash_value: equal values give equal keys, different values (or types) give different keys."""

from __future__ import annotations

import array
import collections
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import io
import pathlib
import re
import socket
import threading
import uuid
from typing import Any, NamedTuple

import attrs
import pydantic
import pytest

from resultkit.cache_policies import Hasher, hash_value
from resultkit.errors import HashError, ResultkitError


def test_digest_is_32_lowercase_hex_chars() -> None:
    key = hash_value({"a": [1, 2.5, "x"]})
    assert len(key) == 32
    assert key == key.lower() and int(key, 16) >= 0


@pytest.mark.parametrize(
    "left, right",
    [
        ((1, 2), [1, 2]),
        ({1: "x"}, {"1": "x"}),
        (1, 1.0),
        (1, True),
        (1.0, True),
        (0, False),
        (None, 0),
        (None, ""),
        ("", b""),
        (b"ab", bytearray(b"ab")),
        ({1, 2}, frozenset({1, 2})),
        ({1, 2}, [1, 2]),
        ([], ()),
        ({}, set()),
        ("1", 1),
        (dt.date(2026, 1, 1), dt.datetime(2026, 1, 1)),
        (decimal.Decimal("1"), 1),
        ([1, [2, 3]], [[1, 2], 3]),
        (("ab", "c"), ("a", "bc")),
        (pathlib.PurePosixPath("a/b"), "a/b"),
        (range(3), [0, 1, 2]),
        (1 + 0j, 1.0),
        (Ellipsis, None),
    ],
)
def test_values_of_different_types_or_structure_differ(left: Any, right: Any) -> None:
    assert hash_value(left) != hash_value(right)


def test_dict_and_set_order_never_matter() -> None:
    forward = {str(i): i for i in range(50)}
    backward = {str(i): i for i in reversed(range(50))}
    assert list(forward) != list(backward)
    assert hash_value(forward) == hash_value(backward)
    assert hash_value({"s": set(range(100))}) == hash_value({"s": set(reversed(range(100)))})
    assert hash_value(frozenset("abcdef")) == hash_value(frozenset("fedcba"))


def test_one_changed_element_changes_the_key() -> None:
    base = {"a": [1, 2, {"b": (3, 4)}], "c": "text"}
    changed = {"a": [1, 2, {"b": (3, 5)}], "c": "text"}
    assert hash_value(base) != hash_value(changed)
    assert hash_value({"a": 1, "b": 2}) != hash_value({"a": 2, "b": 1})


def test_swapping_keys_and_values_between_pairs_changes_the_key() -> None:
    # Pairs are hashed as units, so {a: 1, b: 2} and {a: 2, b: 1} cannot cancel out.
    assert hash_value({1: 2, 3: 4}) != hash_value({1: 4, 3: 2})
    assert hash_value({1: 2, 3: 4}) != hash_value({2: 1, 4: 3})


def test_long_homogeneous_lists_take_a_packed_path_that_still_tells_values_apart() -> None:
    floats = [i / 7 for i in range(1000)]
    assert hash_value(floats) == hash_value([i / 7 for i in range(1000)])
    assert hash_value(floats) != hash_value([*floats[:-1], 0.0])
    assert hash_value(floats) != hash_value(tuple(floats))
    ints = list(range(1000))
    assert hash_value(ints) != hash_value([float(i) for i in ints])
    assert hash_value(ints) != hash_value([*ints[:-1], True])  # one bool among ints
    assert hash_value([*ints, 2**70]) == hash_value([*range(1000), 2**70])  # beyond 64 bits
    texts = [f"t{i}" for i in range(100)]
    assert hash_value(texts) == hash_value([f"t{i}" for i in range(100)])
    assert hash_value(["ab", "c"] * 20) != hash_value(["a", "bc"] * 20)
    assert hash_value(["a\x00", "b"] * 20) != hash_value(["a", "\x00b"] * 20)
    # A short and a long list of the same kind differ from their element-wise cousins.
    assert hash_value([1.5] * 16) != hash_value([1.5] * 15 + [1])


def test_scalars_hash_by_value() -> None:
    assert hash_value(10**40) == hash_value(10**40)
    assert hash_value(10**40) != hash_value(10**40 + 1)
    assert hash_value(-1) != hash_value(255)
    assert hash_value(0.1 + 0.2) != hash_value(0.3)
    assert hash_value("é") != hash_value("e")
    assert hash_value("\ud800") == hash_value("\ud800")  # lone surrogate: hashes, no error


def test_standard_library_types() -> None:
    now = dt.datetime(2026, 11, 22, 12, 30, tzinfo=dt.timezone.utc)
    assert hash_value(now) == hash_value(dt.datetime(2026, 11, 22, 12, 30, tzinfo=dt.timezone.utc))
    assert hash_value(now) != hash_value(now.replace(tzinfo=None))
    assert hash_value(dt.timedelta(days=1)) != hash_value(dt.timedelta(seconds=86401))
    assert hash_value(dt.time(1, 2)) != hash_value(dt.time(1, 3))
    u = uuid.UUID(int=5)
    assert hash_value(u) == hash_value(uuid.UUID(int=5)) != hash_value(uuid.UUID(int=6))
    assert hash_value(decimal.Decimal("1.5")) != hash_value(decimal.Decimal("1.6"))
    assert hash_value(pathlib.Path("a/b")) == hash_value(pathlib.PurePosixPath("a/b"))
    assert hash_value(pathlib.Path("a/b")) != hash_value(pathlib.Path("a/c"))
    assert hash_value(slice(1, 5)) != hash_value(slice(1, 6))
    assert hash_value(re.compile("a+")) != hash_value(re.compile("a+", re.I))
    assert hash_value(array.array("i", [1, 2])) != hash_value(array.array("l", [1, 2]))
    assert hash_value(collections.deque([1, 2])) != hash_value(collections.deque([2, 1]))
    assert hash_value(collections.OrderedDict(a=1)) != hash_value({"a": 1})


def test_buffers_hash_by_content_including_strided_memoryviews() -> None:
    data = bytes(range(256)) * 100
    assert hash_value(data) == hash_value(bytes(data))
    assert hash_value(memoryview(data)) == hash_value(memoryview(bytearray(data)))
    strided = memoryview(data)[::2]
    assert hash_value(strided) == hash_value(memoryview(strided.tobytes()))
    assert hash_value(data) != hash_value(data[:-1] + b"\x00")


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class OtherPoint:
    x: int
    y: int


class Pair(NamedTuple):
    first: int
    second: int


class Model(pydantic.BaseModel):
    name: str
    tags: list[str]


@attrs.define
class AttrsBox:
    width: int
    height: int


class Plain:
    def __init__(self, value: Any) -> None:
        self.value = value


class Slotted:
    __slots__ = ("left", "right")

    def __init__(self, left: int, right: int) -> None:
        self.left = left
        self.right = right


def test_records_and_objects_hash_by_class_and_state() -> None:
    assert hash_value(Colour.RED) == hash_value(Colour.RED) != hash_value(Colour.BLUE)
    assert hash_value(Level.LOW) != hash_value(1)
    assert hash_value(Point(1, 2)) == hash_value(Point(1, 2)) != hash_value(Point(2, 1))
    assert hash_value(Point(1, 2)) != hash_value(OtherPoint(1, 2))
    assert hash_value(Pair(1, 2)) != hash_value((1, 2))
    assert hash_value(Pair(1, 2)) != hash_value(Pair(2, 1))
    assert hash_value(Model(name="a", tags=["x"])) == hash_value(Model(name="a", tags=["x"]))
    assert hash_value(Model(name="a", tags=["x"])) != hash_value(Model(name="a", tags=["y"]))
    assert hash_value(AttrsBox(1, 2)) == hash_value(AttrsBox(1, 2)) != hash_value(AttrsBox(2, 1))
    assert hash_value(Plain([1, 2])) == hash_value(Plain([1, 2])) != hash_value(Plain([1, 3]))
    assert hash_value(Slotted(1, 2)) == hash_value(Slotted(1, 2)) != hash_value(Slotted(2, 1))
    assert hash_value(Point) != hash_value(OtherPoint)


class Client:
    """Holds a lock but says, through __getstate__, that its state is the URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}


def test_objects_with_getstate_hash_by_the_state_they_declare() -> None:
    assert hash_value(Client("s3://a")) == hash_value(Client("s3://a"))
    assert hash_value(Client("s3://a")) != hash_value(Client("s3://b"))
    assert hash_value(Client("s3://a")) != hash_value({"url": "s3://a"})


def test_plain_object_key_never_contains_its_address() -> None:
    # Two distinct instances with equal state: a repr-with-address encoding would differ.
    first, second = Plain({"k": 1}), Plain({"k": 1})
    assert repr(first) != repr(second)
    assert hash_value(first) == hash_value(second)


def module_level_function(x: int) -> int:
    return x


def make_adder(n: int) -> Any:
    def add(x: int) -> int:
        return x + n

    return add


def test_functions_hash_by_identity_and_closures_by_captured_values() -> None:
    assert hash_value(module_level_function) == hash_value(module_level_function)
    assert hash_value(module_level_function) != hash_value(make_adder)
    assert hash_value(make_adder(1)) == hash_value(make_adder(1))
    assert hash_value(make_adder(1)) != hash_value(make_adder(2))
    assert hash_value(lambda x: x + 1) != hash_value(lambda x: x + 2)
    assert hash_value(functools.partial(make_adder, 1)) != hash_value(functools.partial(make_adder, 2))
    assert hash_value([1].append) != hash_value([2].append)


def test_cycles_are_encoded_as_back_references() -> None:
    first: list[Any] = [1]
    first.append(first)
    second: list[Any] = [1]
    second.append(second)
    assert hash_value(first) == hash_value(second)
    other: list[Any] = [2]
    other.append(other)
    assert hash_value(first) != hash_value(other)

    node = Plain(None)
    node.value = node
    assert len(hash_value(node)) == 32
    cyclic_dict: dict[str, Any] = {}
    cyclic_dict["self"] = cyclic_dict
    assert len(hash_value(cyclic_dict)) == 32


def test_cycles_through_dataclasses_and_objects() -> None:
    @dataclasses.dataclass
    class Node:
        label: str
        children: list[Any]

    def build(label: str) -> Node:
        root = Node(label, [])
        root.children.append(Node("leaf", [root]))
        return root

    assert hash_value(build("a")) == hash_value(build("a"))
    assert hash_value(build("a")) != hash_value(build("b"))


def test_exceptions_hash_by_class_and_arguments() -> None:
    assert hash_value(ValueError("a")) == hash_value(ValueError("a"))
    assert hash_value(ValueError("a")) != hash_value(ValueError("b"))
    assert hash_value(ValueError("a")) != hash_value(KeyError("a"))


def test_shared_references_hash_like_copies() -> None:
    shared = [1, 2]
    assert hash_value([shared, shared]) == hash_value([[1, 2], [1, 2]])


def _assert_names_fixes(message: str, name: str) -> None:
    assert f"Inputs(exclude=[{name!r}])" in message
    assert f"INPUTS - {name!r}" in message
    assert "cache_key_fn" in message
    assert "NO_CACHE" in message


@pytest.mark.parametrize(
    "factory, type_name",
    [
        (threading.Lock, "_thread.lock"),
        (lambda: io.BytesIO(b"x"), "_io.BytesIO"),
        (lambda: (i for i in range(3)), "generator"),
        (socket.socket, "socket.socket"),
        (object, "object"),
    ],
)
def test_unhashable_values_raise_hash_error_naming_argument_type_and_fixes(
    factory: Any, type_name: str
) -> None:
    value = factory()
    try:
        with pytest.raises(HashError) as info:
            hash_value(value, name="client")
    finally:
        if isinstance(value, socket.socket):
            value.close()
    message = str(info.value)
    assert "'client'" in message
    assert type_name in message
    _assert_names_fixes(message, "client")
    assert isinstance(info.value, ResultkitError)


def test_hash_error_points_into_the_nested_value() -> None:
    holder = Plain({"pool": [1, threading.Lock()]})
    with pytest.raises(HashError) as info:
        hash_value(holder, name="conn")
    message = str(info.value)
    assert "argument 'conn'" in message
    assert "Plain" in message
    assert "_thread.lock" in message
    assert "conn.value['pool'][1]" in message
    _assert_names_fixes(message, "conn")


def test_too_deep_nesting_is_a_hash_error() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(HashError, match="nested too deeply"):
        hash_value(value, name="tree")


def test_hasher_streams_several_values() -> None:
    first, second = Hasher(), Hasher()
    first.update(1)
    first.update("a")
    second.update(1)
    second.update("a")
    assert first.hexdigest() == second.hexdigest()
    assert len(first.digest()) == 16
    third = Hasher()
    third.update("a")
    third.update(1)
    assert third.hexdigest() != first.hexdigest()


@pytest.mark.parametrize(
    "value", ["", "abc", "é" * 5000, "\ud800", 0, -1, 255, 2**61, -(2**62) + 1, 2**62, 2**200, 1.5, -0.0]
)
def test_fast_paths_agree_with_the_streaming_encoder(value: Any) -> None:
    # hash_value short-cuts small str/int/float; nested in a Hasher they take the general path.
    streamed = Hasher()
    streamed.update(value)
    assert hash_value(value) == streamed.hexdigest()
