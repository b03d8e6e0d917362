"""JSONSerializer: tagged types, the never-import rule, registration, errors, backend parity."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest

from resultkit.errors import ConfigurationError, SerializationError
from resultkit.serializers import JSONSerializer, register_json_type

from .strategies import Colour, Point, Reading, assert_same

BACKENDS = ["json", "orjson"]


@pytest.fixture(params=BACKENDS)
def serializer(request: pytest.FixtureRequest) -> JSONSerializer:
    return JSONSerializer(request.param)


@pytest.fixture
def hostile_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An importable module that leaves a marker file if anything imports it."""
    marker = tmp_path / "imported"
    name = f"rk_hostile_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "import dataclasses, enum\n"
        "@dataclasses.dataclass\n"
        "class Secret:\n"
        "    x: int\n"
        "class Mood(enum.Enum):\n"
        "    HAPPY = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, marker


@pytest.mark.parametrize(
    ("tag", "fields", "expected"),
    [
        ("dataclass", '"v":{"x":1}', {"x": 1}),
        ("enum", '"v":1', 1),
        ("pydantic", '"v":{"x":1},"set":["x"]', {"x": 1}),
    ],
)
def test_never_imports_a_class_named_by_the_data(
    serializer: JSONSerializer, hostile_module: tuple[str, Path], tag: str, fields: str, expected: Any
) -> None:
    module_name, marker = hostile_module
    cls = "Secret" if tag != "enum" else "Mood"
    payload = f'{{"__rk__":"{tag}","cls":"{module_name}:{cls}",{fields}}}'.encode()
    assert module_name not in sys.modules
    with pytest.warns(UserWarning, match=rf"{module_name}:{cls}.*register_json_type"):
        value = serializer.loads(payload)
    assert value == expected
    assert module_name not in sys.modules
    assert not marker.exists()


def test_record_written_by_another_process_does_not_import_its_class(
    serializer: JSONSerializer, hostile_module: tuple[str, Path], tmp_path: Path
) -> None:
    module_name, marker = hostile_module
    record = tmp_path / "record.json"
    writer = (
        f"import {module_name} as m\n"
        "from pathlib import Path\n"
        "from resultkit.serializers import JSONSerializer\n"
        f"Path({str(record)!r}).write_bytes(JSONSerializer().dumps([m.Secret(7), m.Mood.HAPPY]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    subprocess.run([sys.executable, "-c", writer], check=True, env=env)
    marker.unlink()  # the writer imported it; the reader must not
    assert module_name not in sys.modules
    with pytest.warns(UserWarning) as caught:
        assert serializer.loads(record.read_bytes()) == [{"x": 7}, 1]
    messages = " ".join(str(w.message) for w in caught)
    assert f"{module_name}:Secret" in messages and f"{module_name}:Mood" in messages
    assert module_name not in sys.modules
    assert not marker.exists()


def test_class_in_an_imported_module_is_rebuilt_without_registration(serializer: JSONSerializer) -> None:
    value = [Point(1, 2.0, "a"), Colour.RED, Reading(sensor="s", value=1.5, where=Point(0, 0.0))]
    assert_same(serializer.loads(serializer.dumps(value)), value)


def test_a_record_naming_a_non_dataclass_never_calls_it(serializer: JSONSerializer) -> None:
    # os.system is imported, but it is not a dataclass, so the data must not reach it.
    payload = b'{"__rk__":"dataclass","cls":"os:system","v":{"command":"echo pwned"}}'
    with pytest.warns(UserWarning, match="os:system"):
        assert serializer.loads(payload) == {"command": "echo pwned"}


def test_registered_dataclass_is_rebuilt_from_its_tag(serializer: JSONSerializer) -> None:
    @dataclasses.dataclass
    class Local:  # a class under <locals> cannot be found by module lookup
        a: int
        b: tuple[int, ...]

    with pytest.warns(UserWarning):
        assert serializer.loads(serializer.dumps(Local(1, (2,)))) == {"a": 1, "b": (2,)}
    register_json_type(Local, tag="tests.local-dataclass")
    assert serializer.loads(serializer.dumps(Local(1, (2,)))) == Local(1, (2,))


def test_registered_enum_and_model_round_trip(serializer: JSONSerializer) -> None:
    class Shade(enum.Enum):
        DARK = "dark"

    class Local(pydantic.BaseModel):
        shade: Shade
        tags: set[str] = set()

    register_json_type(Shade)
    register_json_type(Local)
    value = Local(shade=Shade.DARK, tags={"a"})
    got = serializer.loads(serializer.dumps(value))
    assert type(got) is Local and got == value and got.model_fields_set == value.model_fields_set


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents


def test_custom_type_with_encode_and_decode(serializer: JSONSerializer) -> None:
    register_json_type(Money, tag="tests.money", encode=lambda m: (m.cents,), decode=lambda v: Money(v[0]))
    assert serializer.loads(serializer.dumps({"price": Money(250)})) == {"price": Money(250)}


def test_unregistered_custom_tag_reads_as_its_value_with_a_warning(serializer: JSONSerializer) -> None:
    payload = b'{"__rk__":"custom","tag":"someone.else","v":[1,2]}'
    with pytest.warns(UserWarning, match=r"someone\.else"):
        assert serializer.loads(payload) == [1, 2]


def test_register_json_type_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="needs a class"):
        register_json_type(Money(1))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="both encode= and decode="):
        register_json_type(Money, encode=lambda m: m.cents)
    with pytest.raises(ConfigurationError, match="only dataclasses"):
        register_json_type(Money)

    class Other:
        pass

    register_json_type(Money, tag="tests.money", encode=lambda m: m.cents, decode=Money)
    with pytest.raises(ConfigurationError, match="already registered"):
        register_json_type(Other, tag="tests.money", encode=id, decode=id)


def test_unsupported_object_names_type_and_suggests_fixes(serializer: JSONSerializer) -> None:
    class Opaque:
        pass

    with pytest.raises(SerializationError, match=r"Opaque.*register_json_type.*PickleSerializer"):
        serializer.dumps({"x": [Opaque()]})


def test_reference_cycle_raises_serialization_error(serializer: JSONSerializer) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="cycle"):
        serializer.dumps(loop)


def test_tag_key_in_user_dicts_is_escaped(serializer: JSONSerializer) -> None:
    value = {"__rk__": "tuple", "v": [1, 2]}
    assert_same(serializer.loads(serializer.dumps(value)), value)


def test_non_finite_floats_and_big_ints(serializer: JSONSerializer) -> None:
    value = [float("inf"), float("-inf"), 2**64, -(2**63) - 1, 2**63 - 1]
    assert_same(serializer.loads(serializer.dumps(value)), value)
    assert np.isnan(serializer.loads(serializer.dumps(float("nan"))))


def test_output_is_plain_utf8_json(serializer: JSONSerializer) -> None:
    text = serializer.dumps({"name": "café ☕", "n": [1, 2.5, None, True]}).decode("utf-8")
    assert json.loads(text) == {"name": "café ☕", "n": [1, 2.5, None, True]}
    assert "\\u" not in text


def test_both_backends_write_the_same_tree() -> None:
    value = {"rows": [{"id": i, "name": f"n{i}", "score": i / 3, "ok": i % 2 == 0} for i in range(200)],
             "when": (1, 2), "blob": b"\x00\x01"}
    by_json = json.loads(JSONSerializer("json").dumps(value))
    by_orjson = json.loads(JSONSerializer("orjson").dumps(value))
    assert by_json == by_orjson


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b'{"__rk__":"no-such-tag","v":1}', b'{"__rk__":"datetime","v":"yesterday"}', b"\xff\xfe"],
)
def test_bad_payloads_raise_serialization_error(serializer: JSONSerializer, payload: bytes) -> None:
    with pytest.raises(SerializationError):
        serializer.loads(payload)


def test_lone_surrogate_raises_serialization_error(serializer: JSONSerializer) -> None:
    with pytest.raises(SerializationError, match="PickleSerializer"):
        serializer.dumps("\ud800")


def test_loads_accepts_memoryview_and_bytearray(serializer: JSONSerializer) -> None:
    payload = serializer.dumps({"k": (1,)})
    assert serializer.loads(memoryview(payload)) == {"k": (1,)}
    assert serializer.loads(bytearray(payload)) == {"k": (1,)}


def test_numpy_arrays_keep_dtype_shape_and_are_writable(serializer: JSONSerializer) -> None:
    array = np.arange(24, dtype=">i4").reshape(2, 3, 4)[:, ::2]
    got = serializer.loads(serializer.dumps(array))
    assert_same(got, np.ascontiguousarray(array))
    got[0, 0, 0] = 99  # decoded arrays own writable memory


def test_unknown_jsonlib_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="jsonlib"):
        JSONSerializer("simplejson")


@dataclasses.dataclass
class Versioned:
    a: int
    b: list[int] = dataclasses.field(default_factory=list)
    c: str = "c"


def test_dataclass_schema_changes_fill_defaults_and_drop_unknown_fields(serializer: JSONSerializer) -> None:
    cls = f"{Versioned.__module__}:Versioned"
    payload = f'{{"__rk__":"dataclass","cls":"{cls}","v":{{"a":1,"gone":2}}}}'.encode()
    with pytest.warns(UserWarning, match="gone"):
        assert serializer.loads(payload) == Versioned(1, [], "c")
    with pytest.raises(SerializationError, match="'a'"):
        serializer.loads(f'{{"__rk__":"dataclass","cls":"{cls}","v":{{}}}}'.encode())


def test_stored_fields_cannot_reach_other_attributes(serializer: JSONSerializer) -> None:
    cls = f"{Versioned.__module__}:Versioned"
    payload = f'{{"__rk__":"dataclass","cls":"{cls}","v":{{"a":1,"__class__":"x"}}}}'.encode()
    with pytest.warns(UserWarning, match="__class__"):
        got = serializer.loads(payload)
    assert type(got) is Versioned


def test_a_tag_of_another_kind_is_not_used(serializer: JSONSerializer) -> None:
    # Versioned is a dataclass; data claiming it is an enum must not call it with a value.
    payload = f'{{"__rk__":"enum","cls":"{Versioned.__module__}:Versioned","v":5}}'.encode()
    with pytest.warns(UserWarning):
        assert serializer.loads(payload) == 5
