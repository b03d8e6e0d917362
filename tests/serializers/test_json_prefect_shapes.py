"""JSONSerializer with Prefect's arguments, exceptions, generics defined in functions, file-likes."""

from __future__ import annotations

import io
import sys
import tempfile
import threading
import warnings
from typing import Generic, TypeVar

import orjson
import pytest
from pydantic import BaseModel

from resultkit.errors import ConfigurationError, SerializationError
from resultkit.serializers import JSONSerializer, Serializer, register_json_type

T = TypeVar("T")


def roundtrip(value: object, serializer: JSONSerializer | None = None) -> object:
    serializer = serializer or JSONSerializer()
    return serializer.loads(serializer.dumps(value))


# ------------------------------------------------------------------ hooks and kwargs


@pytest.mark.parametrize("hook", ["object_encoder", "object_decoder"])
@pytest.mark.parametrize("given", ["prefect.serializers.prefect_json_object_encoder", print])
def test_a_hook_naming_an_import_path_or_function_is_refused_pointing_to_register_json_type(
    hook: str, given: object
) -> None:
    with pytest.raises(ConfigurationError, match=rf"{hook}=.*never imports.*register_json_type"):
        JSONSerializer(**{hook: given})  # type: ignore[arg-type]


def test_hooks_none_is_the_default_and_changes_nothing() -> None:
    spelled = JSONSerializer(jsonlib="orjson", object_encoder=None, object_decoder=None)
    assert spelled == JSONSerializer(jsonlib="orjson")
    assert spelled.to_config() == {"type": "json", "jsonlib": "orjson"}
    assert spelled.object_encoder is None and spelled.object_decoder is None


@pytest.mark.parametrize(
    ("jsonlib", "argument", "kwargs", "match"),
    [
        ("json", "dumps_kwargs", {"default": str}, "may not set 'default'"),
        ("json", "loads_kwargs", {"object_pairs_hook": dict}, "object_pairs_hook"),
        ("json", "dumps_kwargs", {"foo": "bar"}, r"does not accept 'foo'.*accepted: ensure_ascii, indent"),
        ("json", "dumps_kwargs", {"indent": -1}, "indent must be"),
        ("json", "dumps_kwargs", {"sort_keys": "yes"}, "sort_keys must be True or False"),
        ("json", "loads_kwargs", {"parse_float": float}, "does not accept 'parse_float'"),
        ("orjson", "dumps_kwargs", {"indent": 2}, r"does not accept 'indent' with jsonlib='orjson'.*option"),
        ("orjson", "dumps_kwargs", {"option": orjson.OPT_NAIVE_UTC}, "OPT_INDENT_2"),
        ("orjson", "loads_kwargs", {"strict": False}, "accepted: none"),
    ],
)
def test_kwargs_that_are_not_formatting_options_are_refused_naming_them(
    jsonlib: str, argument: str, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        JSONSerializer(jsonlib=jsonlib, **{argument: kwargs})  # type: ignore[arg-type]


def test_formatting_kwargs_are_kept_in_the_config_so_a_reader_rebuilds_them() -> None:
    serializer = JSONSerializer(dumps_kwargs={"indent": 2, "separators": (",", ": ")}, loads_kwargs={"strict": True})
    config = serializer.to_config()
    assert config["dumps_kwargs"] == {"indent": 2, "separators": [",", ": "]}
    assert orjson.loads(orjson.dumps(config)) == config  # JSON-safe, as the record stores it
    rebuilt = Serializer.from_config(config)
    assert rebuilt == serializer and rebuilt.dumps([1, {"a": 2}]) == serializer.dumps([1, {"a": 2}])


def test_pretty_printed_payloads_still_decode_their_tags() -> None:
    value = {"when": {1, 2}, "raw": b"\x00"}
    for serializer in (JSONSerializer(dumps_kwargs={"indent": 4, "ensure_ascii": True}),
                       JSONSerializer(jsonlib="orjson", dumps_kwargs={"option": orjson.OPT_INDENT_2})):
        assert b"\n" in serializer.dumps(value)
        assert roundtrip(value, serializer) == value


# ------------------------------------------------------------------ exceptions


class _AppError(ValueError):
    def __init__(self, code: int) -> None:
        super().__init__(f"code {code}")
        self.code = code


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("boom", 3),
        KeyError(("a", 1)),
        OSError(13, "Permission denied", "/etc/x", None, "/etc/y"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_builtin_exceptions_round_trip_to_equal_exceptions(exc: BaseException) -> None:
    loaded = roundtrip({"failure": exc})["failure"]  # type: ignore[index]
    assert type(loaded) is type(exc) and str(loaded) == str(exc)
    assert repr(loaded) == repr(exc)


def test_exception_notes_round_trip() -> None:
    exc = ValueError("bad")
    exc.__notes__ = ["while loading batch 7"]  # what add_note() (3.11+) keeps
    assert roundtrip(exc).__notes__ == ["while loading batch 7"]  # type: ignore[attr-defined]


def test_an_imported_exception_class_is_rebuilt_without_running_its_init() -> None:
    loaded = roundtrip(_AppError(7))
    assert type(loaded) is _AppError and str(loaded) == "code 7"
    assert not hasattr(loaded, "code")  # __init__ did not run: the data chose the class


def test_an_exception_class_that_cannot_be_found_comes_back_as_its_builtin_base_with_a_warning() -> None:
    payload = JSONSerializer().dumps(_AppError(7)).replace(b"_AppError", b"_GoneError")
    with pytest.warns(UserWarning, match=r"exception class .*_GoneError.* returned as an instance of ValueError"):
        loaded = JSONSerializer().loads(payload)
    assert type(loaded) is ValueError and loaded.args == ("code 7",)


def test_a_registered_exception_class_defined_in_a_function_round_trips() -> None:
    class LocalError(LookupError):
        pass

    payload = JSONSerializer().dumps(LocalError("x"))
    with pytest.warns(UserWarning, match="defined inside a function"):
        assert type(JSONSerializer().loads(payload)) is LookupError
    register_json_type(LocalError)
    assert type(JSONSerializer().loads(payload)) is LocalError


# ------------------------------------------------------------------ generics and classes in functions


def test_a_parameterized_pydantic_model_defined_in_a_function_warns_that_it_must_be_registered() -> None:
    class Result(BaseModel, Generic[T]):
        data: T | None = None

    payload = JSONSerializer().dumps(Result[str](data="hello"))
    assert "[" not in orjson.loads(payload)["cls"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert JSONSerializer().loads(payload) == {"data": "hello"}
    message = str(caught[0].message)
    assert "defined inside a function" in message and "register" in message
    assert "not imported" not in message  # its module is imported: the old message was wrong

    register_json_type(Result)
    loaded = JSONSerializer().loads(payload)
    assert type(loaded) is Result and loaded == Result[str](data="hello")


def test_a_registered_parameterized_class_keeps_its_own_tag() -> None:
    class Box(BaseModel, Generic[T]):
        item: T

    register_json_type(Box[int], tag="compat-box-int")
    payload = JSONSerializer().dumps(Box[int](item=3))
    assert b"compat-box-int" in payload
    assert JSONSerializer().loads(payload) == Box[int](item=3)


def test_a_class_missing_from_an_imported_module_says_so() -> None:
    payload = b'{"__rk__":"dataclass","cls":"json:NoSuchClass","v":{"x":1}}'
    with pytest.warns(UserWarning, match=r"module 'json' has no class 'NoSuchClass'"):
        assert JSONSerializer().loads(payload) == {"x": 1}


# ------------------------------------------------------------------ file-likes and hints


@pytest.mark.parametrize("make", [lambda: io.StringIO("text"), lambda: io.BytesIO(b"bytes"),
                                  lambda: tempfile.TemporaryFile()])
def test_file_like_objects_are_refused_and_never_read(make: object) -> None:
    stream = make()  # type: ignore[operator]
    try:
        position = stream.tell()
        with pytest.raises(SerializationError, match=r"file-like.*was not read"):
            JSONSerializer(jsonlib="orjson").dumps([1, {"stream": stream}])
        assert stream.tell() == position and not stream.closed
    finally:
        stream.close()


def test_json_hint_suggests_pickle_only_when_pickle_can_hold_the_value() -> None:
    class Opaque:
        pass

    with pytest.raises(SerializationError, match="or use PickleSerializer"):
        JSONSerializer().dumps(Opaque())
    with pytest.raises(SerializationError, match="pickle cannot hold it either") as caught:
        JSONSerializer().dumps({"lock": threading.Lock()})
    assert "PickleSerializer" not in str(caught.value)


def test_nothing_named_by_an_exception_payload_is_imported() -> None:
    payload = b'{"__rk__":"exception","cls":"compat_never_imported:Boom","base":"KeyError","args":["k"]}'
    with pytest.warns(UserWarning, match="not imported"):
        loaded = JSONSerializer().loads(payload)
    assert type(loaded) is KeyError
    assert "compat_never_imported" not in sys.modules
