"""The storage contract: what every ``Storage`` backend must do, as a pytest class to subclass."""

from __future__ import annotations

import array
import logging
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..errors import ResultkitError, StorageError
from ..storage.base import LockManagerSpec, Storage
from ..storage.registry import storage_entry

__all__ = ["StorageContract"]

_INVALID_KEYS = [
    "", "/abs/key", "a/../b", "..", "a//b", "a/./b", "a/", ".rk-tmp-x", "a/.rk-lock", "a\\b",
    "a?versionId=1", "a#1", "a*", "a[0]", "a]", "a\nb", "a\x7f", "a\x9b",
]


class StorageContract:
    """Subclass with a ``storage`` fixture returning a fresh, empty backend; pytest runs the rest.

    >>> class TestMyStorage(StorageContract):        # doctest: +SKIP
    ...     @pytest.fixture
    ...     def storage(self, tmp_path):
    ...         return MyStorage(tmp_path)

    Override :meth:`stream_small_writes` if the backend switches to streamed
    (multipart) uploads above a size it can be told.
    """

    @pytest.fixture
    def storage(self) -> Storage:
        """The backend under test: a fresh, empty instance. Subclasses must define it."""
        pytest.fail(f"{type(self).__name__} must define a `storage` fixture returning a fresh Storage")

    def stream_small_writes(self, storage: Storage) -> None:
        """Make ``storage`` stream writes above 1 MiB in 5 MiB parts, where it has such limits."""
        target = getattr(storage, "remote", storage)  # CachedStorage writes through to its remote
        if hasattr(target, "single_put_limit") and hasattr(target, "part_size"):
            target.single_put_limit = 1 << 20
            target.part_size = 5 << 20

    # -- reads and writes ----------------------------------------------------------------

    def test_round_trip(self, storage: Storage) -> None:
        storage.write("a/b/record", b"hello world")
        assert storage.read("a/b/record") == b"hello world"
        assert storage.exists("a/b/record")

    def test_empty_object_round_trips(self, storage: Storage) -> None:
        storage.write("empty", b"")
        assert storage.read("empty") == b""
        assert storage.read_head("empty", 10) == b""
        assert storage.exists("empty")

    def test_empty_object_reads_as_empty_through_every_read_path(
        self, storage: Storage, caplog: pytest.LogCaptureFixture
    ) -> None:
        # A ranged GET of a 0-byte object is "416 range not satisfiable" on S3 and GCS: an
        # empty object, not an error (and not one for the client library to log either).
        storage.write("zero", [])
        assert storage.read("zero") == b""
        with caplog.at_level(logging.DEBUG):
            assert storage.read_head("zero", 1) == b""
            assert storage.read_head("zero", 4096) == b""
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        with storage.open_read("zero") as stream:
            assert stream.read() == b""
        with storage.open_read("zero") as stream:
            assert stream.readinto(bytearray(16)) in (0, None)  # type: ignore[attr-defined]
        assert list(storage.list("ze")) == ["zero"]

    def test_chunked_write_keeps_order_and_accepts_any_buffer(self, storage: Storage) -> None:
        chunks = [b"head\n", bytearray(b"middle-"), memoryview(b"xxtailxx")[2:6], b""]
        storage.write("chunked", iter(chunks))  # type: ignore[arg-type]  # memoryview slices are buffers
        assert storage.read("chunked") == b"head\nmiddle-tail"

    def test_read_head_returns_a_prefix(self, storage: Storage) -> None:
        storage.write("k", b"0123456789")
        assert storage.read_head("k", 4) == b"0123"
        assert storage.read_head("k", 100) == b"0123456789"

    def test_open_read_supports_readinto(self, storage: Storage) -> None:
        payload = os.urandom(100_000)
        storage.write("big", payload)
        buf = bytearray(len(payload))
        with storage.open_read("big") as f:
            view = memoryview(buf)
            filled = 0
            while filled < len(buf):
                n = f.readinto(view[filled:])  # type: ignore[attr-defined]
                assert n
                filled += n
            assert f.read() == b""
        assert bytes(buf) == payload

    def test_exists_and_delete(self, storage: Storage) -> None:
        assert not storage.exists("x/y")
        assert storage.delete("x/y") is False
        storage.write("x/y", b"1")
        assert storage.exists("x/y")
        assert storage.delete("x/y") is True
        assert not storage.exists("x/y")
        assert storage.delete("x/y") is False

    def test_folder_is_not_an_object(self, storage: Storage) -> None:
        storage.write("dir/file", b"1")
        assert not storage.exists("dir")
        with pytest.raises(FileNotFoundError):
            storage.read("dir")

    def test_list_by_prefix_and_nested(self, storage: Storage) -> None:
        for key in ["a/1", "a/2", "a/sub/3", "ab/4", "b/5", "top"]:
            storage.write(key, b"v")
        assert sorted(storage.list()) == ["a/1", "a/2", "a/sub/3", "ab/4", "b/5", "top"]
        assert sorted(storage.list("a/")) == ["a/1", "a/2", "a/sub/3"]
        assert sorted(storage.list("a/sub/")) == ["a/sub/3"]
        assert sorted(storage.list("a")) == ["a/1", "a/2", "a/sub/3", "ab/4"]
        assert list(storage.list("nothing/")) == []

    def test_overwrite_replaces_whole_object_and_changes_version(self, storage: Storage) -> None:
        assert storage.version("k") is None
        storage.write("k", b"first version, quite long")
        v1 = storage.version("k")
        assert v1 is not None
        storage.write("k", b"second")
        assert storage.read("k") == b"second"
        v2 = storage.version("k")
        assert v2 is not None and v2 != v1
        assert storage.version("k") == v2  # stable while unchanged

    # -- keys ------------------------------------------------------------------------------

    @pytest.mark.parametrize("key", _INVALID_KEYS)
    def test_invalid_keys_raise_storage_error(self, storage: Storage, key: str) -> None:
        for op in (storage.read, storage.exists, storage.delete, storage.version, storage.open_read):
            with pytest.raises(StorageError):
                op(key)
        with pytest.raises(StorageError):
            storage.write(key, b"x")
        with pytest.raises(StorageError):
            storage.read_head(key, 1)

    def test_non_string_key_raises_storage_error(self, storage: Storage) -> None:
        with pytest.raises(StorageError, match="must be a str"):
            storage.read(Path("a"))  # type: ignore[arg-type]

    def test_missing_key_is_file_not_found(self, storage: Storage) -> None:
        for op in (storage.read, storage.open_read):
            with pytest.raises(FileNotFoundError):
                op("missing/key")
        with pytest.raises(FileNotFoundError):
            storage.read_head("missing/key", 10)

    # -- large, streamed and failing writes --------------------------------------------------

    def test_large_chunked_write(self, storage: Storage) -> None:
        block = os.urandom(1 << 20)
        storage.write("large", [memoryview(block)] * 20)
        data = storage.read("large")
        assert len(data) == 20 << 20
        assert data[: 1 << 20] == block and data[-(1 << 20):] == block

    def test_failed_chunk_iterator_writes_nothing(self, storage: Storage) -> None:
        def chunks() -> Iterator[bytes]:
            yield b"partial"
            raise RuntimeError("producer failed")

        with pytest.raises(RuntimeError, match="producer failed"):
            storage.write("never", chunks())
        assert not storage.exists("never")
        assert list(storage.list()) == []
        assert list(storage.stale_temp_files(-1.0)) == []  # and no temporary file either

    def test_failed_overwrite_keeps_old_object(self, storage: Storage) -> None:
        storage.write("k", b"old")

        def chunks() -> Iterator[bytes]:
            yield b"new-partial"
            raise RuntimeError("producer failed")

        with pytest.raises(RuntimeError):
            storage.write("k", chunks())
        assert storage.read("k") == b"old"

    def test_streamed_write_completes_whole(self, storage: Storage) -> None:
        self.stream_small_writes(storage)
        block = os.urandom(1 << 20)
        storage.write("streamed", (memoryview(block) for _ in range(12)))
        assert storage.read("streamed") == block * 12

    def test_streamed_write_failing_midway_leaves_no_object(self, storage: Storage) -> None:
        self.stream_small_writes(storage)
        block = os.urandom(1 << 20)

        def chunks() -> Iterator[bytes]:
            for _ in range(12):  # more than two 5 MiB parts already uploaded
                yield block
            raise RuntimeError("producer failed at 12 MiB")

        with pytest.raises(RuntimeError, match="producer failed"):
            storage.write("streamed", chunks())
        assert not storage.exists("streamed")
        assert list(storage.list()) == []
        with pytest.raises(FileNotFoundError):
            storage.read("streamed")

    # -- buffers -------------------------------------------------------------------------------

    def test_buffer_objects_are_written_without_iteration(self, storage: Storage) -> None:
        numbers = array.array("d", [float(i) for i in range(12)])
        grid = memoryview(numbers).cast("B").cast("d", (3, 4))  # a typed 2-D buffer, as numpy gives
        storage.write("grid", grid)  # type: ignore[arg-type]  # any buffer, typed or not
        assert storage.read("grid") == numbers.tobytes()
        storage.write("mixed", [b"h", grid, array.array("i", [1, 2])])  # type: ignore[list-item]
        assert storage.read("mixed") == b"h" + numbers.tobytes() + array.array("i", [1, 2]).tobytes()

    @pytest.mark.parametrize("data", ["text", 42, [b"ok", "text"], [b"ok", 3]])
    def test_non_bytes_data_is_refused_naming_the_type(self, storage: Storage, data: Any) -> None:
        with pytest.raises(StorageError, match=r"str|int"):
            storage.write("bad", data)
        assert not storage.exists("bad")

    def test_non_contiguous_buffer_is_refused(self, storage: Storage) -> None:
        for strided in (memoryview(array.array("q", range(20)))[::2], memoryview(b"0123456789")[::2]):
            with pytest.raises(StorageError, match="contiguous"):
                storage.write("bad", strided)
            with pytest.raises(StorageError, match="contiguous"):
                storage.write("bad", [b"ok", strided])
        assert not storage.exists("bad")

    # -- the storage as an object: pickling, saving, what it names for the layers above -----

    def test_instances_pickle_and_work_after(self, storage: Storage) -> None:
        storage.write("k", b"before pickling")
        clone = pickle.loads(pickle.dumps(storage))
        assert clone.read("k") == b"before pickling"
        clone.write("k2", b"from the clone")
        assert clone.read("k2") == b"from the clone"

    def test_saved_configuration_rebuilds_an_equal_storage(self, storage: Storage) -> None:
        from ..storage.blocks import storage_from_config

        if storage_entry(storage.block_type, block=True) is None:  # lives only in this process
            with pytest.raises(ResultkitError):
                storage.to_block()
            return
        config = storage.to_block()
        rebuilt = storage_from_config({"type": storage.block_type, **config})
        assert type(rebuilt) is type(storage) and rebuilt.to_block() == config
        storage.write("k", b"seen by the copy")
        assert rebuilt.read("k") == b"seen by the copy"

    def test_a_completed_write_leaves_no_temporary_file(self, storage: Storage) -> None:
        storage.write("a/k", b"v")
        storage.write("a/k", [b"v", b"2"])
        assert list(storage.stale_temp_files(-1.0)) == []

    def test_default_lock_manager_is_named_not_built(self, storage: Storage) -> None:
        spec = storage.default_lock_manager()
        assert spec is None or isinstance(spec, LockManagerSpec)
        if spec is not None:
            assert isinstance(spec.manager, str) and spec.manager

    def test_local_file_root_holds_the_objects_as_plain_files(self, storage: Storage) -> None:
        storage.write("a/k", b"on disk")
        root = storage.local_file_root()
        assert root is None or Path(root + "a/k").read_bytes() == b"on disk"

    def test_describe_is_a_short_string(self, storage: Storage) -> None:
        text = storage.describe()
        assert isinstance(text, str) and text and "\n" not in text
