"""The serializer contract: round trips, configs that rebuild, bad bytes refused, no code run."""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ..errors import RecordCorruptError, SerializationError
from ..serializers.base import Serializer, dumps_value

__all__ = ["SafeSerializerContract", "SerializerContract", "assert_same"]


def assert_same(actual: Any, expected: Any) -> None:
    """``actual == expected`` with the same types all the way down (``1 == 1.0 == True`` is not enough)."""
    assert type(actual) is type(expected), f"{actual!r} is a {type(actual).__name__}, expected {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert_same(got, want)
    elif isinstance(expected, float) and expected != expected:  # NaN
        assert actual != actual
    else:
        assert actual == expected


class SerializerContract:
    """Subclass with a ``serializer`` fixture; set :attr:`values` to the value kinds it claims to hold.

    >>> class TestMySerializer(SerializerContract):   # doctest: +SKIP
    ...     values = [*SerializerContract.values, b"bytes", (1, 2)]
    ...     @pytest.fixture
    ...     def serializer(self):
    ...         return MySerializer()

    The serializer's type must be registered (``register_serializer_type``): a record is
    read back through its config, ``Serializer.from_config(serializer.to_config())``.
    """

    #: Values the serializer must give back equal and of the same types.
    values: ClassVar[Sequence[Any]] = [
        None, True, False, 0, -1, 2**70, 1.5, -0.0, "", "text ü \u2603", [], [1, "a", None],
        {}, {"k": [1, 2], "nested": {"deeper": [{"x": 1.25}]}},
    ]
    #: Values it cannot hold: storing them must raise ``SerializationError`` carrying the value.
    unserializable: ClassVar[Sequence[Any]] = [threading.Lock()]

    @pytest.fixture
    def serializer(self) -> Serializer:
        """The serializer under test. Subclasses must define it."""
        pytest.fail(f"{type(self).__name__} must define a `serializer` fixture")

    # -- round trips ---------------------------------------------------------------------

    def test_values_round_trip_with_their_types(self, serializer: Serializer) -> None:
        for value in self.values:
            assert_same(serializer.loads(serializer.dumps(value)), value)

    def test_loads_accepts_any_buffer(self, serializer: Serializer) -> None:
        for value in self.values:
            data = serializer.dumps(value)
            assert_same(serializer.loads(bytearray(data)), value)
            assert_same(serializer.loads(memoryview(data)), value)

    def test_chunks_joined_are_the_bytes(self, serializer: Serializer) -> None:
        for value in self.values:
            chunks = serializer.dumps_chunks(value)
            joined = b"".join(bytes(memoryview(chunk).cast("B")) for chunk in chunks)
            assert_same(serializer.loads(joined), value)

    def test_values_that_cannot_be_held_raise_serialization_error_carrying_them(self, serializer: Serializer) -> None:
        for value in self.unserializable:
            with pytest.raises(SerializationError) as err:
                dumps_value(serializer, value)
            assert err.value.value is value

    # -- configs ------------------------------------------------------------------------------

    def test_config_is_json_safe_and_rebuilds_an_equal_serializer(self, serializer: Serializer) -> None:
        config = serializer.to_config()
        assert isinstance(config.get("type"), str)
        assert json.loads(json.dumps(config)) == config
        rebuilt = Serializer.from_config(json.loads(json.dumps(config)))
        assert rebuilt == serializer and rebuilt.to_config() == config
        for value in self.values:  # a reader rebuilt from the record reads what the writer wrote
            assert_same(rebuilt.loads(serializer.dumps(value)), value)

    def test_serializer_pickles_for_workers(self, serializer: Serializer) -> None:
        copy = pickle.loads(pickle.dumps(serializer))
        assert copy == serializer
        assert_same(copy.loads(serializer.dumps(self.values[-1])), self.values[-1])

    def test_config_from_a_record_never_imports_what_it_names(
        self, serializer: Serializer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A record's header is data: every string option replaced by an importable module's
        # name must be refused or ignored, never imported (importing runs its code).
        marker = f"rk_contract_{uuid.uuid4().hex}"
        (tmp_path / f"{marker}.py").write_text("import sys\nsys.modules[__name__].ran = True\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        for config in _with_each_string_replaced(serializer.to_config(), marker):
            with contextlib.suppress(SerializationError):
                Serializer.from_config(config)
            assert marker not in sys.modules, f"from_config imported {marker!r} named by {config!r}"

    # -- bad bytes --------------------------------------------------------------------------

    def test_bad_bytes_raise_serialization_or_corrupt_error(self, serializer: Serializer) -> None:
        whole = serializer.dumps(self.values[-1])
        for bad in (b"", b"\x00\xff garbage \xfe", whole[: len(whole) // 2]):
            with pytest.raises((SerializationError, RecordCorruptError)):
                serializer.loads(bad)


class SafeSerializerContract(SerializerContract):
    """The contract of a serializer that never runs code while loading (JSON, not pickle)."""

    def test_loading_a_pickle_never_runs_its_code(
        self, serializer: Serializer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        marker = f"rk_contract_{uuid.uuid4().hex}"
        (tmp_path / f"{marker}.py").write_text("import sys\nsys.modules[__name__].ran = True\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        # Protocol 0: GLOBAL opcode naming the module, then STOP (a pickle's way to import it).
        payload = f"c{marker}\nran\n.".encode()
        with contextlib.suppress(SerializationError, RecordCorruptError):
            serializer.loads(payload)
        assert marker not in sys.modules, f"{type(serializer).__name__}.loads imported {marker!r}"


def _with_each_string_replaced(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Copies of ``config`` with one string option (at any depth, never ``type``) set to ``name``."""
    found: list[dict[str, Any]] = []
    for key, value in config.items():
        if key == "type":
            continue
        if isinstance(value, str):
            found.append({**config, key: name})
        elif isinstance(value, dict):
            found.extend({**config, key: inner} for inner in _with_each_string_replaced(value, name))
    return found


