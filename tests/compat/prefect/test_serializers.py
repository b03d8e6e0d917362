"""Answers Prefect's tests/test_serializers.py: each test is named after the Prefect test it answers.

Prefect's serializers are pydantic models built with ``Serializer(type=...)``; ours are
plain classes built with ``resolve_serializer(name)`` or ``Serializer.from_config(config)``,
so the same behaviours are checked through those doors.
"""

from __future__ import annotations

import io
import json
import lzma
import pickle
import uuid
import warnings
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

import orjson
import pytest
from pydantic import BaseModel

from resultkit.errors import ConfigurationError, SerializationError
from resultkit.serializers import (
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    register_serializer_type,
    resolve_serializer,
)
from resultkit.serializers import base as serializer_base

from ._cite import xfail_differs

TEST_UUID = uuid.UUID("a53e3495-d681-4a53-84b8-9d9542f7237c")


class MyModel(BaseModel):
    x: int
    y: uuid.UUID


T = TypeVar("T")


class GenericResult(BaseModel, Generic[T]):
    data: T | None = None
    message: str = ""


@dataclass
class MyDataclass:
    x: int
    y: str


@dataclass
class GenericDataclass(Generic[T]):
    data: T


@dataclass
class MyDataclassBytes:
    x: int
    y: bytes


ROUNDTRIP_VALUES = [
    1,
    "test",
    {"foo": "bar"},
    ["x", "y"],
    TEST_UUID,
    MyModel(x=1, y=TEST_UUID),
    MyDataclass(x=1, y="test"),
    b"test string",
    "test string".encode("ascii"),
    MyDataclassBytes(x=1, y=b"test"),
]
EXCEPTIONS = [Exception("foo"), ValueError("bar")]
COMPLEX_TEXT = """
def dog(some_param: str) -> int:
    print('woof!' + some_param)
    print('These are complex chars: !@#$%^&*()_+-')
"""


def same_exception(a: BaseException, b: BaseException) -> bool:
    return type(a) is type(b) and a.args == b.args


class _Bar(Serializer):
    """A minimal custom serializer registered under the type name ``compat-bar``."""

    type: ClassVar[str] = "compat-bar"

    def dumps_chunks(self, obj: Any) -> list[bytes]:
        return [repr(obj).encode()]

    def loads(self, data: Any) -> Any:
        return bytes(data).decode()

    def to_config(self) -> dict[str, Any]:
        return {"type": self.type}


@pytest.fixture
def bar_registered() -> Any:
    before = dict(serializer_base._TYPES)
    register_serializer_type("compat-bar", _Bar)
    yield
    serializer_base._TYPES.clear()
    serializer_base._TYPES.update(before)


class TestBaseSerializer:
    def test_serializers_do_not_allow_extra_fields(self) -> None:
        """tests/test_serializers.py: an unknown option in a serializer config is refused."""
        with pytest.raises(SerializationError, match="x"):
            Serializer.from_config({"type": "json", "jsonlib": "json", "x": "test"})

    def test_serializers_can_be_created_by_dict(self, bar_registered: None) -> None:
        """tests/test_serializers.py: a config dict naming a registered type builds that type."""
        assert isinstance(Serializer.from_config({"type": "compat-bar"}), _Bar)

    def test_serializers_can_be_created_by_object(self) -> None:
        """tests/test_serializers.py: an instance is used as it is."""
        given = JSONSerializer()
        assert resolve_serializer(given) is given

    def test_serializers_can_be_created_by_type_string(self, bar_registered: None) -> None:
        """tests/test_serializers.py: a registered type name builds that type."""
        assert isinstance(resolve_serializer("compat-bar"), _Bar)

    def test_unknown_serializers_raise_validation_error(self) -> None:
        """tests/test_serializers.py: an unknown type is an error naming it."""
        with pytest.raises(SerializationError, match="a-custom-serializer"):
            Serializer.from_config({"type": "a-custom-serializer", "foo": "bar"})
        with pytest.raises(ConfigurationError, match="a-custom-serializer"):
            resolve_serializer("a-custom-serializer")


class TestPickleSerializer:
    @pytest.mark.parametrize("data", ROUNDTRIP_VALUES)
    def test_simple_roundtrip(self, data: Any) -> None:
        """tests/test_serializers.py: the value comes back equal."""
        serializer = PickleSerializer()
        assert serializer.loads(serializer.dumps(data)) == data

    @pytest.mark.parametrize("data", EXCEPTIONS)
    def test_exception_roundtrip(self, data: BaseException) -> None:
        """tests/test_serializers.py: the value comes back equal."""
        serializer = PickleSerializer()
        assert same_exception(serializer.loads(serializer.dumps(data)), data)

    @pytest.mark.parametrize("data", ROUNDTRIP_VALUES)
    def test_simple_roundtrip_with_builtin_pickle(self, data: Any) -> None:
        """tests/test_serializers.py: picklelib="pickle" round-trips the same values."""
        serializer = PickleSerializer(picklelib="pickle")
        assert serializer.loads(serializer.dumps(data)) == data

    def test_picklelib_must_be_string(self) -> None:
        """tests/test_serializers.py: a module object is refused (ConfigurationError is a ValueError)."""
        with pytest.raises(ValueError, match="picklelib must be a module name"):
            PickleSerializer(picklelib=pickle)  # type: ignore[arg-type]

    def test_picklelib_is_used(self) -> None:
        """tests/test_serializers.py: the named library does the pickling (the stdlib refuses a lambda)."""
        with pytest.raises(SerializationError, match="lambda"):
            PickleSerializer(picklelib="pickle").dumps(lambda x: x)
        assert PickleSerializer(picklelib="cloudpickle").loads(PickleSerializer().dumps(lambda x: x + 1))(1) == 2
        assert PickleSerializer(picklelib="pickle").to_config()["picklelib"] == "pickle"

    def test_picklelib_must_implement_dumps(self) -> None:
        """tests/test_serializers.py: a module without dumps() is refused, naming it."""
        with pytest.raises(ConfigurationError, match=r"'math' has no dumps\(\)"):
            PickleSerializer(picklelib="math")

    def test_picklelib_must_implement_loads(self) -> None:
        """tests/test_serializers.py: a module with dumps() but no loads() is refused, naming it."""
        with pytest.raises(ConfigurationError, match=r"'zlib' has no dumps\(\)/loads\(\)"):
            PickleSerializer(picklelib="zlib")  # zlib has neither; the check needs both


class TestJSONSerializer:
    @pytest.mark.parametrize("data", ROUNDTRIP_VALUES)
    def test_simple_roundtrip(self, data: Any) -> None:
        """tests/test_serializers.py: the value comes back equal."""
        serializer = JSONSerializer()
        assert serializer.loads(serializer.dumps(data)) == data

    @pytest.mark.parametrize("data", [*EXCEPTIONS, KeyError("k"), FileNotFoundError(2, "No such file", "a.txt")])
    def test_exception_roundtrip(self, data: BaseException) -> None:
        """tests/test_serializers.py: the value comes back equal."""
        serializer = JSONSerializer()
        loaded = serializer.loads(serializer.dumps(data))
        assert same_exception(loaded, data) and str(loaded) == str(data)

    @pytest.mark.parametrize(
        "data",
        [
            COMPLEX_TEXT.encode("utf-8"),
            COMPLEX_TEXT.encode("ascii"),
            COMPLEX_TEXT.encode("latin_1"),
            [COMPLEX_TEXT.encode("utf-8")],
            {"key": COMPLEX_TEXT.encode("ascii")},
        ],
    )
    def test_simple_roundtrip_with_complex_bytes(self, data: Any) -> None:
        """tests/test_serializers.py: bytes of any text round-trip."""
        serializer = JSONSerializer()
        assert serializer.loads(serializer.dumps(data)) == data

    def test_allows_orjson(self) -> None:
        """tests/test_serializers.py: Prefect's orjson spelling, hooks None, works."""
        serializer = JSONSerializer(jsonlib="orjson", object_encoder=None, object_decoder=None)
        assert serializer.loads(serializer.dumps("test")) == "test"
        assert serializer.loads(serializer.dumps(TEST_UUID)) == TEST_UUID  # the tags still work

    def test_uses_alternative_json_library(self) -> None:
        """tests/test_serializers.py: jsonlib="orjson" writes with orjson (its options shape the text)."""
        serializer = JSONSerializer(jsonlib="orjson", dumps_kwargs={"option": orjson.OPT_INDENT_2})
        value = {"a": [1, 2]}
        assert serializer.dumps(value) == orjson.dumps(value, option=orjson.OPT_INDENT_2)
        assert serializer.loads(serializer.dumps(value)) == value
        assert serializer.to_config()["jsonlib"] == "orjson"

    def test_json_serializer_does_not_consume_iobase_objects(self) -> None:
        """tests/test_serializers.py: a stream in the value is left where it was, unread."""
        stream = io.StringIO("hello world from unit test")
        with pytest.raises(SerializationError, match="file-like"):
            JSONSerializer().dumps({"my_stream": stream, "other_data": 123})
        assert stream.tell() == 0
        assert stream.read() == "hello world from unit test"

    @xfail_differs("A file-like object in a JSON result is refused")
    def test_json_serializer_does_not_consume_iobase_objects_placeholder(self) -> None:
        """tests/test_serializers.py: Prefect writes a placeholder where the stream was."""
        payload = JSONSerializer().dumps({"my_stream": io.StringIO("x"), "other_data": 123})
        assert json.loads(payload)["other_data"] == 123

    @xfail_differs("`object_encoder` and `object_decoder` take no import paths")
    def test_allows_custom_encoder(self) -> None:
        """tests/test_serializers.py: an import path as object_encoder."""
        serializer = JSONSerializer(object_encoder="json.dumps")  # type: ignore[arg-type]
        assert serializer.dumps(uuid.uuid4())

    @xfail_differs("`object_encoder` and `object_decoder` take no import paths")
    def test_allows_custom_decoder(self) -> None:
        """tests/test_serializers.py: an import path as object_decoder."""
        serializer = JSONSerializer(object_decoder="builtins.dict")  # type: ignore[arg-type]
        assert serializer.loads(b'{"foo": "bar"}') == {"foo": "bar"}

    def test_allows_custom_kwargs(self) -> None:
        """tests/test_serializers.py: dumps_kwargs and loads_kwargs reach json.dumps and json.loads."""
        serializer = JSONSerializer(dumps_kwargs={"indent": 1, "sort_keys": True}, loads_kwargs={"strict": False})
        assert serializer.dumps({"b": 1, "a": 2}) == b'{\n "a": 2,\n "b": 1\n}'
        assert serializer.loads(b'"tab\there"') == "tab\there"  # a raw control character: strict=False
        with pytest.raises(SerializationError):
            JSONSerializer().loads(b'"tab\there"')
        assert Serializer.from_config(serializer.to_config()) == serializer  # stored for the reader

    @xfail_differs("`dumps_kwargs` and `loads_kwargs` hold only formatting options")
    def test_allows_custom_kwargs_with_functions(self) -> None:
        """tests/test_serializers.py test_allows_custom_kwargs: any keyword, functions included."""
        serializer = JSONSerializer(loads_kwargs={"parse_float": Decimal})
        assert serializer.loads(b"1.5") == Decimal("1.5")

    def test_does_not_allow_object_hook_collision(self) -> None:
        """tests/test_serializers.py: loads_kwargs may not set object_hook."""
        with pytest.raises(ValueError, match="object_hook"):
            JSONSerializer(loads_kwargs={"object_hook": "foo"})

    def test_does_not_allow_default_collision(self) -> None:
        """tests/test_serializers.py: dumps_kwargs may not set default."""
        with pytest.raises(ValueError, match="default"):
            JSONSerializer(dumps_kwargs={"default": "foo"})

    def test_pydantic_generic_model_roundtrip(self) -> None:
        """tests/test_serializers.py: GenericResult[str] is written under a name without brackets."""
        serializer = JSONSerializer()
        payload = serializer.dumps(GenericResult[str](data="hello", message="success"))
        assert "[" not in json.loads(payload)["cls"]
        loaded = serializer.loads(payload)
        assert (loaded.data, loaded.message) == ("hello", "success")

    def test_dataclass_generic_model_roundtrip(self) -> None:
        """tests/test_serializers.py: a generic dataclass round-trips."""
        serializer = JSONSerializer()
        assert serializer.loads(serializer.dumps(GenericDataclass[str](data="hello"))).data == "hello"


def _tagged_exception(cls: str) -> bytes:
    return json.dumps({"__rk__": "exception", "cls": cls, "base": "Exception", "args": ["42"]}).encode()


class TestJSONObjectDecoderSecurity:
    def test_exc_type_rejects_non_exception_class(self) -> None:
        """tests/test_serializers.py: a payload naming int as an exception class is refused."""
        with pytest.raises(SerializationError, match="not an exception class"):
            JSONSerializer().loads(_tagged_exception("builtins:int"))

    def test_exc_type_allows_real_exception(self) -> None:
        """tests/test_serializers.py: a payload naming ValueError rebuilds one."""
        loaded = JSONSerializer().loads(_tagged_exception("builtins:ValueError"))
        assert isinstance(loaded, ValueError) and str(loaded) == "42"

    @xfail_differs("An exception whose class cannot be found comes back as its built-in base")
    def test_exc_type_raises_on_unimportable_class(self) -> None:
        """tests/test_serializers.py: a class that cannot be imported is an error."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(SerializationError):
                JSONSerializer().loads(_tagged_exception("nonexistent:FakeError"))

    @xfail_differs("An exception whose class cannot be found comes back as its built-in base")
    def test_exc_type_raises_on_dotless_name(self) -> None:
        """tests/test_serializers.py: a class name without a module is an error."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(SerializationError):
                JSONSerializer().loads(_tagged_exception("int"))

    def test_class_path_handles_unimportable_class(self) -> None:
        """tests/test_serializers.py: a class in a module never imported comes back as data, nothing imported."""
        payload = b'{"__rk__":"dataclass","cls":"nonexistent_compat_module:Module","v":{}}'
        with pytest.warns(UserWarning, match="'nonexistent_compat_module' is not imported"):
            assert JSONSerializer().loads(payload) == {}
        import sys

        assert "nonexistent_compat_module" not in sys.modules

    def test_class_path_handles_dotless_name(self) -> None:
        """tests/test_serializers.py: a class name without a module comes back as data."""
        with pytest.warns(UserWarning, match="not registered"):
            assert JSONSerializer().loads(b'{"__rk__":"dataclass","cls":"int","v":{}}') == {}


class TestCompressedSerializer:
    @pytest.mark.parametrize("data", ROUNDTRIP_VALUES)
    def test_simple_roundtrip(self, data: Any) -> None:
        """tests/test_serializers.py: the value comes back equal."""
        serializer = CompressedSerializer(serializer="pickle")
        assert serializer.loads(serializer.dumps(data)) == data

    @pytest.mark.parametrize("lib", ["bz2", "lzma", "zlib"])
    def test_allows_stdlib_compression_libraries(self, lib: str) -> None:
        """tests/test_serializers.py: bz2, lzma and zlib work."""
        serializer = CompressedSerializer(compressionlib=lib, serializer="pickle")
        assert serializer.loads(serializer.dumps("test")) == "test"

    def test_uses_alternative_compression_library(self) -> None:
        """tests/test_serializers.py: the named library compresses (its own decompressor reads the bytes)."""
        inner = PickleSerializer()
        assert zlib.decompress(CompressedSerializer(compressionlib="zlib", serializer=inner).dumps("test")) == inner.dumps("test")
        assert lzma.decompress(CompressedSerializer(compressionlib="lzma", serializer=inner).dumps("test")) == inner.dumps("test")

    def test_uses_given_serializer(self) -> None:
        """tests/test_serializers.py: the inner serializer is the one named."""
        serializer = CompressedSerializer(compressionlib="zlib", serializer="json")
        assert zlib.decompress(serializer.dumps("test")) == JSONSerializer().dumps("test")
        assert serializer.loads(serializer.dumps("test")) == "test"

    def test_pickle_shorthand(self) -> None:
        """tests/test_serializers.py: "compressed/pickle" is a CompressedSerializer over pickle."""
        serializer = resolve_serializer("compressed/pickle")
        assert isinstance(serializer, CompressedSerializer)
        assert isinstance(serializer.serializer, PickleSerializer)

    def test_json_shorthand(self) -> None:
        """tests/test_serializers.py: "compressed/json" is a CompressedSerializer over JSON."""
        serializer = resolve_serializer("compressed/json")
        assert isinstance(serializer, CompressedSerializer)
        assert isinstance(serializer.serializer, JSONSerializer)
