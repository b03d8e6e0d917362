"""PickleSerializer: zero-copy out-of-band buffers, alignment, trust rules, errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from resultkit.errors import ConfigurationError, SerializationError
from resultkit.serializers import PickleSerializer, Serializer


def test_round_trip_plain_values() -> None:
    s = PickleSerializer()
    value = {"a": [1, 2.5, None], ("t", 1): {b"x", frozenset({3})}}
    assert s.loads(s.dumps(value)) == value


def test_dumps_chunks_shares_memory_with_the_array() -> None:
    array = np.arange(1 << 20, dtype="f8")
    chunks = PickleSerializer().dumps_chunks({"array": array})
    shared = [c for c in chunks if np.shares_memory(np.frombuffer(c, dtype="u1"), array)]
    assert len(shared) == 1


def test_loads_from_bytearray_returns_writable_views_into_it() -> None:
    array = np.arange(100_000, dtype="i8").reshape(100, 1000)
    payload = bytearray(PickleSerializer().dumps(array))
    loaded = PickleSerializer().loads(payload)
    assert np.shares_memory(loaded, np.frombuffer(payload, dtype="u1"))
    assert loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)


def test_loads_from_bytes_returns_read_only_array() -> None:
    array = np.ones(1000)
    loaded = PickleSerializer().loads(PickleSerializer().dumps(array))
    assert not loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)


def test_out_of_band_buffers_start_at_64_byte_aligned_offsets() -> None:
    arrays = [np.arange(n, dtype="u1") for n in (1, 7, 100, 4097)]
    chunks = PickleSerializer().dumps_chunks(arrays)
    offset = 0
    starts = []
    for chunk in chunks:
        if isinstance(chunk, memoryview):
            starts.append(offset)
        offset += memoryview(chunk).nbytes
    assert len(starts) == len(arrays)
    assert all(start % 64 == 0 for start in starts)
    loaded = PickleSerializer().loads(b"".join(chunks))
    for got, want in zip(loaded, arrays, strict=True):
        np.testing.assert_array_equal(got, want)


def test_non_contiguous_arrays_fall_back_in_band() -> None:
    array = np.arange(1000, dtype="f4").reshape(10, 100)[:, ::3]
    s = PickleSerializer()
    chunks = s.dumps_chunks(array)
    assert not any(isinstance(c, memoryview) for c in chunks)
    np.testing.assert_array_equal(s.loads(s.dumps(array)), array)


def test_fortran_order_array_round_trips() -> None:
    array = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    loaded = PickleSerializer().loads(bytearray(PickleSerializer().dumps(array)))
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.f_contiguous


@pytest.mark.parametrize("picklelib", ["pickle", "cloudpickle"])
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_libraries_and_protocols_round_trip(picklelib: str, protocol: int) -> None:
    s = PickleSerializer(picklelib=picklelib, protocol=protocol)
    array = np.arange(10.0)
    loaded = s.loads(s.dumps({"x": array}))
    np.testing.assert_array_equal(loaded["x"], array)
    assert Serializer.from_config(s.to_config()) == s


def test_cloudpickle_serializes_lambdas() -> None:
    s = PickleSerializer()
    assert s.loads(s.dumps(lambda x: x + 1))(1) == 2


def test_unpicklable_value_names_type_and_gives_a_hint_that_fits_it() -> None:
    # JSON cannot hold a lock either, so the hint must not send the user there.
    with pytest.raises(SerializationError, match=r"_thread\.lock.*locks") as caught:
        PickleSerializer().dumps({"lock": threading.Lock()})
    assert "JSONSerializer" not in str(caught.value)


def test_a_value_only_json_can_hold_gets_the_json_hint() -> None:
    @dataclasses.dataclass
    class Local:  # defined in a function: the standard pickle cannot find it, JSON can store it
        x: int

    with pytest.raises(SerializationError, match=r"result_serializer='json'"):
        PickleSerializer(picklelib="pickle").dumps(Local(1))


def test_garbage_bytes_raise_serialization_error() -> None:
    s = PickleSerializer()
    with pytest.raises(SerializationError):
        s.loads(b"not a pickle")
    truncated = s.dumps(np.arange(100))[:-10]
    with pytest.raises(SerializationError, match="malformed frame"):
        s.loads(truncated)


@pytest.mark.parametrize("picklelib", ["no_such_pickle_module", 3, ""])
def test_bad_picklelib_raises_configuration_error(picklelib: object) -> None:
    with pytest.raises(ConfigurationError, match="picklelib"):
        PickleSerializer(picklelib=picklelib)  # type: ignore[arg-type]


def test_module_without_dumps_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="dumps"):
        PickleSerializer(picklelib="json.decoder")


@pytest.mark.parametrize("protocol", [-1, 99, "5", True])
def test_bad_protocol_raises_configuration_error(protocol: object) -> None:
    with pytest.raises(ConfigurationError, match="protocol"):
        PickleSerializer(protocol=protocol)  # type: ignore[arg-type]


def test_record_config_never_imports_an_untrusted_picklelib(tmp_path: Path) -> None:
    # A fresh interpreter, so the module cannot already be imported; importing it leaves a mark.
    marker = tmp_path / "imported"
    (tmp_path / "hostile_pickle.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndumps = loads = print\n"
    )
    code = (
        "from resultkit.serializers import Serializer, PickleSerializer\n"
        "s = Serializer.from_config({'type': 'pickle', 'picklelib': 'hostile_pickle', 'protocol': 5})\n"
        "print(s.loads(PickleSerializer().dumps([1, 2])))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[1, 2]"
    assert not marker.exists()


def test_dataframe_blocks_go_out_of_band() -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": np.arange(100_000, dtype="f8"), "y": np.arange(100_000, dtype="i8")})
    chunks = PickleSerializer().dumps_chunks(frame)
    assert sum(c.nbytes for c in chunks if isinstance(c, memoryview)) >= 1_600_000
    pd.testing.assert_frame_equal(PickleSerializer().loads(bytearray(b"".join(chunks))), frame)


def test_a_read_only_serializer_stays_read_only_when_pickled() -> None:
    import pickle

    reader = Serializer.from_config({"type": "pickle", "picklelib": "not_imported_lib", "protocol": 5})
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.loads(PickleSerializer().dumps([1])) == [1]
    with pytest.raises(SerializationError, match="not_imported_lib"):
        copy.dumps([1])
