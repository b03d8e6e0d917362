"""LocalStorage specifics: file layout, temp files, crash safety."""

from __future__ import annotations

import array
import multiprocessing
import os
import pickle
import signal
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from resultkit.errors import ConfigurationError, StorageError
from resultkit.storage import LocalStorage, MemoryStorage


def test_key_lives_at_basepath_slash_key(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    store.write("task/abc", b"payload")
    assert (tmp_path / "root" / "task" / "abc").read_bytes() == b"payload"
    assert store.basepath == tmp_path / "root"
    assert store.path_of("task/abc") == tmp_path / "root" / "task" / "abc"


def test_relative_and_home_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert LocalStorage("rel").basepath == tmp_path / "rel"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert LocalStorage("~/r").basepath == tmp_path / "home" / "r"


@pytest.mark.parametrize("bad", ["", 3, None])
def test_bad_basepath_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="basepath"):
        LocalStorage(bad)  # type: ignore[arg-type]


def test_no_temp_files_left_and_reserved_entries_never_listed(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.write("a/k", b"1")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["k"]
    (tmp_path / "a" / ".rk-tmp-stale").write_bytes(b"partial")
    (tmp_path / ".rk-locks").mkdir()
    (tmp_path / ".rk-locks" / "lock").write_bytes(b"")
    assert list(store.list()) == ["a/k"]


def test_typed_and_multidimensional_buffers_are_written_as_bytes(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    ints = array.array("i", range(1000))
    grid = memoryview(bytearray(range(12))).cast("B", (3, 4))
    store.write("typed", [ints, grid])
    assert store.read("typed") == ints.tobytes() + bytes(range(12))


def test_chunk_lists_of_any_length_and_generators_write_every_byte_in_order(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    many = [bytes([i]) * (i + 1) for i in range(40)]  # more chunks than one gathered write takes
    store.write("many", many)
    assert store.read("many") == b"".join(many)
    store.write("mixed", (b"", b"head\n", bytearray(b"body"), memoryview(b"tail")))
    assert store.read("mixed") == b"head\nbodytail"
    store.write("streamed", (bytes([i]) * 1000 for i in range(50)))
    assert store.read("streamed") == b"".join(bytes([i]) * 1000 for i in range(50))


def test_fsync_mode_writes_and_pickles(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path, fsync=True)
    store.write("durable/k", [b"a", b"b"])
    assert store.read("durable/k") == b"ab"
    clone = pickle.loads(pickle.dumps(store))
    assert clone == store and clone.fsync and clone.read("durable/k") == b"ab"


def test_write_under_a_file_is_a_storage_error_naming_the_key(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.write("a", b"file")
    with pytest.raises(StorageError, match="'a/b'"):
        store.write("a/b", b"x")


def test_new_files_follow_the_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        LocalStorage(tmp_path).write("k", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o644


def test_memory_storage_pickles_a_snapshot() -> None:
    store = MemoryStorage()
    store.write("k", b"v")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.read("k") == b"v"
    clone.write("k2", b"w")
    assert not store.exists("k2")


def _write_forever(basepath: str, report: Connection, report_after: int) -> None:
    """Child process: overwrite one key with alternating 16 MiB objects until killed."""
    store = LocalStorage(basepath)
    blocks = [b"A" * (1 << 20), b"B" * (1 << 20)]
    n = 0
    while True:
        store.write("victim", [memoryview(blocks[n % 2])] * 16)
        n += 1
        if n == report_after:
            report.send(n)  # the parent kills us while the next write is under way


def test_sigkill_mid_write_never_leaves_a_partial_object(tmp_path: Path) -> None:
    """A writer killed at arbitrary moments leaves the previous whole object, never a torn one."""
    store = LocalStorage(tmp_path)
    store.write("victim", b"A" * (16 << 20))
    # fork: the child needs no imports, so 20 rounds stay cheap.
    context = multiprocessing.get_context("fork")
    for round_number in range(20):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_write_forever, args=(str(tmp_path), sender, 1 + round_number % 3))
        child.start()
        assert receiver.recv() >= 1
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        assert child.exitcode == -signal.SIGKILL
        data = store.read("victim")
        assert len(data) == 16 << 20
        assert data in (b"A" * (16 << 20), b"B" * (16 << 20))
    # Killed writers may leave reserved temp files behind; they are never listed.
    assert list(store.list()) == ["victim"]
