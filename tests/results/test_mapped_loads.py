"""Large local records load as copy-on-write views into their mapped file (Storage.map_read).

Every process here is real: the records are changed, deleted and gc'd by other Python
processes while a mapped value is alive, and readers that could fault run in a child, so
a SIGBUS fails the test instead of killing the suite.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from resultkit import task
from resultkit.cache_policies import INPUTS
from resultkit.errors import ConfigurationError, RecordCorruptError
from resultkit.results import ResultStore
from resultkit.results._streams import MAP_FROM
from resultkit.storage import CachedStorage, LocalStorage
from resultkit.storage._mapping import MappedFile

from .conftest import seal_header

REPO = Path(__file__).resolve().parents[2]
# Above the mapping threshold, small enough to keep the suite fast.
SIZE = 4 * MAP_FROM


def mapping_of(value: Any) -> Any:
    """The object at the bottom of ``value``'s buffer chain (ndarray.base, memoryview.obj)."""
    while True:
        if isinstance(value, memoryview):
            value = value.obj
        elif getattr(value, "base", None) is not None:
            value = value.base
        else:
            return value


def mapped_paths() -> str:
    return Path("/proc/self/maps").read_text()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


@pytest.fixture
def array() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(SIZE // 8)


def test_a_large_record_loads_as_an_aligned_writable_view_of_its_file(tmp_path: Path, array: np.ndarray) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    store.write("big", array)
    path = storage.path_of("big")
    before = digest(path)
    loaded = store.read("big").result
    assert np.array_equal(loaded, array)
    assert type(mapping_of(loaded)) is MappedFile and str(path) in mapped_paths()
    assert loaded.flags.aligned and loaded.flags.writeable
    assert loaded.ctypes.data % 64 == 0  # the padded header puts the payload on a 64-byte boundary
    loaded[:] = -1.0  # the caller's own copy-on-write pages
    assert digest(path) == before
    assert np.array_equal(store.read("big").result, array)


def test_the_header_of_a_mappable_record_pads_the_payload_to_64_bytes(tmp_path: Path, array: np.ndarray) -> None:
    storage = LocalStorage(tmp_path)
    ResultStore(storage).write("big", array)
    ResultStore(storage).write("small", [1, 2, 3])
    big_line = storage.path_of("big").read_bytes().partition(b"\n")[0] + b"\n"
    small_line = storage.path_of("small").read_bytes().partition(b"\n")[0]
    assert len(big_line) % 64 == 0 and b' ,"header_hash"' in big_line
    assert b' ,"header_hash"' not in small_line  # small records stay byte-identical to before
    assert orjson.loads(big_line)["metadata"]["payload_size"] >= MAP_FROM


def test_an_unpadded_record_of_an_older_writer_still_maps_and_reads(tmp_path: Path, array: np.ndarray) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    store.write("big", array)
    line, _, payload = storage.path_of("big").read_bytes().partition(b"\n")
    old_line = seal_header(orjson.loads(line))  # compact, unpadded: what earlier versions wrote
    assert len(old_line) % 64 != 0
    storage.write("big", old_line + payload)
    loaded = store.read("big").result
    assert np.array_equal(loaded, array) and type(mapping_of(loaded)) is MappedFile


def test_a_mapped_value_survives_overwrite_delete_and_gc_by_other_processes(tmp_path: Path,
                                                                            array: np.ndarray) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    for key in ("overwritten", "deleted", "collected"):
        store.write(key, array, expiration=timedelta(hours=1))
    values = {key: store.read(key).result for key in ("overwritten", "deleted", "collected")}
    assert all(type(mapping_of(value)) is MappedFile for value in values.values())
    changes = run_python(
        """
        import sys
        from datetime import timedelta
        import numpy as np
        from resultkit.cli import _gc, main
        from resultkit.results import ResultStore
        from resultkit.storage import LocalStorage

        store = ResultStore(LocalStorage(sys.argv[1]))
        store.write("overwritten", np.zeros(8))
        assert store.delete("deleted")
        # gc in this process sees a clock two hours on, so the hour-long expiry has passed.
        later = _gc.utc_now() + timedelta(hours=2)
        _gc.utc_now = lambda: later
        assert main(["gc", sys.argv[1]]) == 0
        assert not store.storage.exists("collected")
        """,
        str(tmp_path),
    )
    assert changes.returncode == 0, changes.stderr
    maps = mapped_paths()
    for key, value in values.items():
        assert f"{storage.path_of(key)} (deleted)" in maps  # the old inode, still mapped
        assert np.array_equal(value, array)
    assert np.array_equal(store.read("overwritten").result, np.zeros(8))


def test_a_flipped_byte_in_a_mapped_payload_is_a_corrupt_record(tmp_path: Path, array: np.ndarray) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    store.write("big", array)
    path = storage.path_of("big")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordCorruptError, match="checksum"):
        store.read("big")


def test_a_flipped_byte_in_a_mapped_payload_is_a_miss_with_a_warning_for_a_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_result_in_memory=False)
    def make(n: int) -> np.ndarray:
        calls.append(n)
        return np.arange(n, dtype=np.float64)

    n = SIZE // 8
    key = make(n, return_state=True).cache_key
    assert make(n, return_state=True).name == "Cached"
    record = tmp_path / key
    data = bytearray(record.read_bytes())
    data[-8] ^= 0x01
    record.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert np.array_equal(make(n), np.arange(n, dtype=np.float64))
    assert calls == [n, n] and "checksum" in caplog.text and key[:12] in caplog.text


@pytest.mark.parametrize("cut", [1, 4096, SIZE // 2])
def test_a_truncated_record_is_corrupt_never_a_sigbus(tmp_path: Path, array: np.ndarray, cut: int) -> None:
    storage = LocalStorage(tmp_path)
    ResultStore(storage).write("big", array)
    path = storage.path_of("big")
    with open(path, "r+b") as f:  # what resultkit never does: cut the file in place
        f.truncate(path.stat().st_size - cut)
    reader = run_python(
        """
        import sys
        from resultkit.errors import RecordCorruptError
        from resultkit.results import ResultStore
        try:
            ResultStore(sys.argv[1]).read("big")
        except RecordCorruptError as exc:
            print("corrupt:", exc)
        """,
        str(tmp_path),
    )
    assert reader.returncode == 0, (reader.returncode, reader.stderr)  # -7 would be SIGBUS
    assert "corrupt:" in reader.stdout and "truncated" in reader.stdout


def test_a_large_signed_record_with_a_forged_payload_is_refused_before_unpickling(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage, signing_key="team-secret")
    store.write("big", np.ones(SIZE // 8))
    line, _, payload = storage.path_of("big").read_bytes().partition(b"\n")
    header = orjson.loads(line)
    header["metadata"]["signature"] = None  # the forger has no key
    storage.write("big", seal_header(header) + payload)
    with pytest.raises(RecordCorruptError, match="sign"):
        store.read("big")


def value_is_copied(value: Any, path: Path) -> bool:
    return type(mapping_of(value)) is not MappedFile and str(path) not in mapped_paths()


def test_mmap_false_on_the_storage_reads_into_private_memory(tmp_path: Path, array: np.ndarray) -> None:
    storage = LocalStorage(tmp_path, mmap=False)
    store = ResultStore(storage)
    store.write("big", array)
    loaded = store.read("big").result
    assert np.array_equal(loaded, array) and value_is_copied(loaded, storage.path_of("big"))


def test_resultkit_mmap_0_reads_into_private_memory(tmp_path: Path, array: np.ndarray,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    store = ResultStore(storage)
    store.write("big", array)
    monkeypatch.setenv("RESULTKIT_MMAP", "0")
    loaded = store.read("big").result
    assert np.array_equal(loaded, array) and value_is_copied(loaded, storage.path_of("big"))
    # The storage's own option wins over the environment.
    forced = ResultStore(LocalStorage(tmp_path, mmap=True)).read("big").result
    assert type(mapping_of(forced)) is MappedFile


def test_a_bad_mmap_option_or_setting_is_a_configuration_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="mmap must be True, False or None"):
        LocalStorage(tmp_path, mmap="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="mmap must be True, False or None"):
        CachedStorage(LocalStorage(tmp_path / "remote"), directory=tmp_path / "cache", mmap=0)  # type: ignore[arg-type]
    store = ResultStore(LocalStorage(tmp_path))
    store.write("big", np.ones(SIZE // 8))
    monkeypatch.setenv("RESULTKIT_MMAP", "sometimes")
    with pytest.raises(ConfigurationError, match="RESULTKIT_MMAP"):
        store.read("big")


def test_the_mmap_option_round_trips_through_a_block(tmp_path: Path) -> None:
    from resultkit.storage.blocks import storage_from_config

    storage = LocalStorage(tmp_path, mmap=False)
    rebuilt = storage_from_config({"type": "local", **storage.to_block()})
    assert rebuilt == storage and rebuilt.mmap is False
    assert "mmap" not in LocalStorage(tmp_path).to_block()


def test_cached_storage_maps_its_local_copy_and_survives_remote_overwrite(tmp_path: Path,
                                                                          array: np.ndarray) -> None:
    remote = LocalStorage(tmp_path / "remote", mmap=False)  # so only the local copy can be mapped
    cached = CachedStorage(remote, directory=tmp_path / "cache")
    store = ResultStore(cached)
    store.write("big", array)
    loaded = store.read("big").result
    mapping = mapping_of(loaded)
    assert type(mapping) is MappedFile and str(tmp_path / "cache") in mapped_paths()
    assert str(remote.path_of("big")) not in mapped_paths()
    ResultStore(remote).write("big", np.zeros(8))  # replaced at the remote: the next read refetches
    assert np.array_equal(store.read("big").result, np.zeros(8))
    cached.cache.clear()  # and the old local copy is gone from the cache's folder
    assert np.array_equal(loaded, array)
    off = ResultStore(CachedStorage(remote, directory=tmp_path / "cache", mmap=False))
    off.write("other", array)
    assert type(mapping_of(off.read("other").result)) is not MappedFile


def test_no_writer_rewrites_or_truncates_a_file_in_place() -> None:
    """Mapped values rely on records being replaced by rename and removed by unlink, only."""
    in_place = ("O_TRUNC", "O_APPEND", '"r+b"', '"ab"', '"wb"', "'wb'", ".truncate(", "os.ftruncate")
    offenders = []
    for path in (REPO / "resultkit").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(REPO)}: {mode}" for mode in in_place if mode in text]
    # fsspec's "wb" opens a new object (or a temp file renamed afterwards), never a local record.
    assert sorted(offenders) == ["resultkit/storage/fsspec.py: \"wb\""]


def test_loading_a_1_gib_array_peaks_under_1_1x_its_size(tmp_path: Path) -> None:
    size = 1 << 30
    writer = run_python(
        """
        import sys
        import numpy as np
        from resultkit.results import ResultStore
        ResultStore(sys.argv[1]).write("huge", np.ones((1 << 30) // 8))
        """,
        str(tmp_path),
    )
    assert writer.returncode == 0, writer.stderr
    for setting in ("1", "0"):
        reader = run_python(
            """
            import sys
            import numpy as np
            from resultkit.results import ResultStore

            def status(field):
                for line in open("/proc/self/status"):
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
            store = ResultStore(sys.argv[1])
            store.lookup("absent")  # first use of everything but the payload
            before = status("VmRSS")
            value = store.read("huge").result
            assert value.shape == ((1 << 30) // 8,) and value[-1] == 1.0
            print(status("VmHWM") - before)
            """,
            str(tmp_path),
            env={"RESULTKIT_MMAP": setting},
        )
        assert reader.returncode == 0, reader.stderr
        peak = int(reader.stdout.split()[-1])
        assert peak < 1.1 * size, (setting, peak / size)
