"""One contract suite, run against every storage backend.

S3 and GCS instances share fsspec's per-endpoint file system instance (each test has its
own bucket): building an s3fs client costs about a second. Tests where another client
must see the bucket independently pass ``skip_instance_cache=True``.
"""

from __future__ import annotations

import logging
import os
import pickle
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from resultkit.errors import StorageError
from resultkit.storage import (
    CachedStorage,
    FsspecStorage,
    GCSStorage,
    LocalStorage,
    MemoryStorage,
    S3Storage,
    Storage,
)

BackendFactory = Callable[[], Storage]


def _local(request: pytest.FixtureRequest) -> Storage:
    return LocalStorage(request.getfixturevalue("tmp_path") / "store")


def _memory(request: pytest.FixtureRequest) -> Storage:
    return MemoryStorage()


def _fsspec_memory(request: pytest.FixtureRequest) -> Storage:
    return FsspecStorage(f"memory://rk-test-{uuid.uuid4().hex}/store")


def _fsspec_file(request: pytest.FixtureRequest) -> Storage:
    return FsspecStorage("file://" + str(request.getfixturevalue("tmp_path") / "store"))


def _s3(request: pytest.FixtureRequest) -> Storage:
    return S3Storage(
        request.getfixturevalue("s3_bucket"),
        "some/prefix",
        endpoint_url=request.getfixturevalue("s3_endpoint"),
    )


def _gcs(request: pytest.FixtureRequest) -> Storage:
    return GCSStorage(
        request.getfixturevalue("gcs_bucket"),
        "some/prefix",
        token="anon",
        project="test",
        endpoint_url=request.getfixturevalue("gcs_endpoint"),
    )


def _cached_s3(request: pytest.FixtureRequest) -> Storage:
    return CachedStorage(_s3(request), directory=request.getfixturevalue("tmp_path") / "cache")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Storage]] = {
    "local": _local,
    "memory": _memory,
    "fsspec-memory": _fsspec_memory,
    "fsspec-file": _fsspec_file,
    "s3": _s3,
    "gcs": _gcs,
    "cached-s3": _cached_s3,
}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    yield BACKENDS[request.param](request)


def test_round_trip(storage: Storage) -> None:
    storage.write("a/b/record", b"hello world")
    assert storage.read("a/b/record") == b"hello world"
    assert storage.exists("a/b/record")


def test_empty_object_round_trips(storage: Storage) -> None:
    storage.write("empty", b"")
    assert storage.read("empty") == b""
    assert storage.read_head("empty", 10) == b""
    assert storage.exists("empty")


def test_empty_object_reads_as_empty_through_every_read_path(
    storage: Storage, caplog: pytest.LogCaptureFixture
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
        assert stream.readinto(bytearray(16)) in (0, None)
    assert list(storage.list("ze")) == ["zero"]


def test_chunked_write_keeps_order_and_accepts_any_buffer(storage: Storage) -> None:
    chunks = [b"head\n", bytearray(b"middle-"), memoryview(b"xxtailxx")[2:6], b""]
    storage.write("chunked", iter(chunks))
    assert storage.read("chunked") == b"head\nmiddle-tail"


def test_read_head_returns_a_prefix(storage: Storage) -> None:
    storage.write("k", b"0123456789")
    assert storage.read_head("k", 4) == b"0123"
    assert storage.read_head("k", 100) == b"0123456789"


def test_open_read_supports_readinto(storage: Storage) -> None:
    payload = os.urandom(100_000)
    storage.write("big", payload)
    buf = bytearray(len(payload))
    with storage.open_read("big") as f:
        view = memoryview(buf)
        filled = 0
        while filled < len(buf):
            n = f.readinto(view[filled:])
            assert n
            filled += n
        assert f.read() == b""
    assert bytes(buf) == payload


def test_exists_and_delete(storage: Storage) -> None:
    assert not storage.exists("x/y")
    assert storage.delete("x/y") is False
    storage.write("x/y", b"1")
    assert storage.exists("x/y")
    assert storage.delete("x/y") is True
    assert not storage.exists("x/y")
    assert storage.delete("x/y") is False


def test_folder_is_not_an_object(storage: Storage) -> None:
    storage.write("dir/file", b"1")
    assert not storage.exists("dir")
    with pytest.raises(FileNotFoundError):
        storage.read("dir")


def test_list_by_prefix_and_nested(storage: Storage) -> None:
    for key in ["a/1", "a/2", "a/sub/3", "ab/4", "b/5", "top"]:
        storage.write(key, b"v")
    assert sorted(storage.list()) == ["a/1", "a/2", "a/sub/3", "ab/4", "b/5", "top"]
    assert sorted(storage.list("a/")) == ["a/1", "a/2", "a/sub/3"]
    assert sorted(storage.list("a/sub/")) == ["a/sub/3"]
    assert sorted(storage.list("a")) == ["a/1", "a/2", "a/sub/3", "ab/4"]
    assert list(storage.list("nothing/")) == []


def test_overwrite_replaces_whole_object_and_changes_version(storage: Storage) -> None:
    assert storage.version("k") is None
    storage.write("k", b"first version, quite long")
    v1 = storage.version("k")
    assert v1 is not None
    storage.write("k", b"second")
    assert storage.read("k") == b"second"
    v2 = storage.version("k")
    assert v2 is not None and v2 != v1
    assert storage.version("k") == v2  # stable while unchanged


@pytest.mark.parametrize(
    "key", ["", "/abs/key", "a/../b", "..", "a//b", "a/./b", "a/", ".rk-tmp-x", "a/.rk-lock", "a\\b",
            "a?versionId=1", "a#1", "a*", "a[0]", "a]", "a\nb", "a\x7f", "a\x9b"]
)
def test_invalid_keys_raise_storage_error(storage: Storage, key: str) -> None:
    for op in (storage.read, storage.exists, storage.delete, storage.version, storage.open_read):
        with pytest.raises(StorageError):
            op(key)
    with pytest.raises(StorageError):
        storage.write(key, b"x")
    with pytest.raises(StorageError):
        storage.read_head(key, 1)


def test_non_string_key_raises_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError, match="must be a str"):
        storage.read(Path("a"))  # type: ignore[arg-type]


def test_missing_key_is_file_not_found(storage: Storage) -> None:
    for op in (storage.read, storage.open_read):
        with pytest.raises(FileNotFoundError):
            op("missing/key")
    with pytest.raises(FileNotFoundError):
        storage.read_head("missing/key", 10)


def test_large_chunked_write(storage: Storage) -> None:
    block = os.urandom(1 << 20)
    chunks = [memoryview(block)] * 20
    storage.write("large", chunks)
    data = storage.read("large")
    assert len(data) == 20 << 20
    assert data[: 1 << 20] == block and data[-(1 << 20) :] == block


def test_failed_chunk_iterator_writes_nothing(storage: Storage) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError, match="producer failed"):
        storage.write("never", chunks())
    assert not storage.exists("never")
    assert list(storage.list()) == []


def test_failed_overwrite_keeps_old_object(storage: Storage) -> None:
    storage.write("k", b"old")

    def chunks() -> Iterator[bytes]:
        yield b"new-partial"
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError):
        storage.write("k", chunks())
    assert storage.read("k") == b"old"


def _small_put_limit(storage: Storage) -> None:
    """Make remote backends take the streaming (multipart/resumable) path for small data."""
    target = storage.remote if isinstance(storage, CachedStorage) else storage
    if isinstance(target, FsspecStorage):
        target.single_put_limit = 1 << 20
        target.part_size = 5 << 20


def test_streamed_write_completes_whole(storage: Storage) -> None:
    _small_put_limit(storage)
    block = os.urandom(1 << 20)
    storage.write("streamed", (memoryview(block) for _ in range(12)))
    assert storage.read("streamed") == block * 12


def test_streamed_write_failing_midway_leaves_no_object(storage: Storage) -> None:
    _small_put_limit(storage)
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


def test_instances_pickle_and_work_after(storage: Storage) -> None:
    storage.write("k", b"before pickling")
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.read("k") == b"before pickling"
    clone.write("k2", b"from the clone")
    assert clone.read("k2") == b"from the clone"


def test_buffer_objects_are_written_without_iteration(storage: Storage) -> None:
    import array

    import numpy as np

    grid = np.arange(12, dtype=np.float64).reshape(3, 4)
    storage.write("numpy", grid)
    assert storage.read("numpy") == grid.tobytes()
    storage.write("mixed", [b"h", grid, array.array("i", [1, 2])])
    assert storage.read("mixed") == b"h" + grid.tobytes() + array.array("i", [1, 2]).tobytes()


@pytest.mark.parametrize("data", ["text", 42, [b"ok", "text"], [b"ok", 3]])
def test_non_bytes_data_is_refused_naming_the_type(storage: Storage, data: object) -> None:
    with pytest.raises(StorageError, match=r"str|int"):
        storage.write("bad", data)  # type: ignore[arg-type]
    assert not storage.exists("bad")


def test_non_contiguous_buffer_is_refused(storage: Storage) -> None:
    import numpy as np

    with pytest.raises(StorageError, match="contiguous"):
        storage.write("bad", np.arange(20)[::2])
    assert not storage.exists("bad")
