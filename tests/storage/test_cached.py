"""CachedStorage: serves local copies only while the remote is unchanged."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from resultkit.errors import ConfigurationError
from resultkit.storage import CachedStorage, MemoryStorage, S3Storage, load_storage


class CountingStorage(MemoryStorage):
    """A real in-memory remote that counts whole-object downloads."""

    def __init__(self) -> None:
        super().__init__()
        self.downloads = 0

    def _read(self, key: str) -> bytes:
        self.downloads += 1
        return super()._read(key)

    def _open_read(self, key: str):  # type: ignore[no-untyped-def]
        self.downloads += 1
        return super()._open_read(key)


@pytest.fixture
def s3(s3_endpoint: str, s3_bucket: str) -> S3Storage:
    return S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint)


def test_unchanged_remote_is_served_from_the_local_copy(tmp_path: Path) -> None:
    remote = CountingStorage()
    cached = CachedStorage(remote, directory=tmp_path)
    remote.write("k", b"v" * 100_000)
    assert cached.read("k") == b"v" * 100_000
    assert cached.read("k") == b"v" * 100_000
    with cached.open_read("k") as f:
        assert f.read() == b"v" * 100_000
    assert remote.downloads == 1


def test_overwrite_by_someone_else_is_seen(tmp_path: Path, s3: S3Storage, s3_endpoint: str) -> None:
    cached = CachedStorage(s3, directory=tmp_path)
    other_writer = S3Storage(s3.bucket, "results", endpoint_url=s3_endpoint, skip_instance_cache=True)
    other_writer.write("rec", b"first")
    assert cached.read("rec") == b"first"
    other_writer.write("rec", b"second, longer")
    assert cached.read("rec") == b"second, longer"
    with cached.open_read("rec") as f:
        assert f.read() == b"second, longer"


def test_delete_by_someone_else_is_seen(tmp_path: Path, s3: S3Storage, s3_endpoint: str) -> None:
    cached = CachedStorage(s3, directory=tmp_path)
    other = S3Storage(s3.bucket, "results", endpoint_url=s3_endpoint, skip_instance_cache=True)
    other.write("rec", b"data")
    assert cached.read("rec") == b"data"
    other.delete("rec")
    with pytest.raises(FileNotFoundError):
        cached.read("rec")
    with pytest.raises(FileNotFoundError):
        cached.open_read("rec")
    assert len(cached.cache) == 0


def test_writes_and_deletes_through_the_cache_drop_the_local_copy(tmp_path: Path) -> None:
    remote = CountingStorage()
    cached = CachedStorage(remote, directory=tmp_path)
    cached.write("k", b"one")
    assert cached.read("k") == b"one"
    cached.write("k", [b"t", b"wo"])
    assert cached.read("k") == b"two"
    assert cached.delete("k") is True
    assert not cached.exists("k")
    assert len(cached.cache) == 0


def test_open_read_streams_big_objects_into_the_cache_and_supports_readinto(tmp_path: Path) -> None:
    remote = CountingStorage()
    payload = os.urandom(3 << 20)
    remote.write("big", payload)
    cached = CachedStorage(remote, directory=tmp_path)
    for _ in range(2):
        buf = bytearray(len(payload))
        with cached.open_read("big") as f:
            view, filled = memoryview(buf), 0
            while filled < len(buf):
                n = f.readinto(view[filled:])
                assert n
                filled += n
        assert buf == payload
    assert remote.downloads == 1


def test_size_limit_evicts_copies_and_reads_stay_correct(tmp_path: Path) -> None:
    remote = CountingStorage()
    cached = CachedStorage(remote, directory=tmp_path, size_limit=1 << 20)
    blobs = {f"k{i}": os.urandom(300_000) for i in range(8)}
    for key, blob in blobs.items():
        remote.write(key, blob)
        assert cached.read(key) == blob
    assert cached.cache.volume() < 2 << 20
    assert len(cached.cache) < len(blobs)
    for key, blob in blobs.items():
        assert cached.read(key) == blob


def test_pickles_and_saves_as_a_block(tmp_path: Path, s3: S3Storage) -> None:
    cached = CachedStorage(s3, directory=tmp_path / "c", size_limit=5 << 20)
    cached.write("k", b"v")
    clone = pickle.loads(pickle.dumps(cached))
    assert clone == cached and clone.read("k") == b"v"
    assert cached.save("s3-cached") == "cached/s3-cached"
    loaded = load_storage("cached/s3-cached")
    assert loaded == cached and loaded.read("k") == b"v"


def test_default_directory_is_under_resultkit_home(resultkit_home: Path) -> None:
    assert CachedStorage(MemoryStorage()).directory == resultkit_home / "cache"


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "1GB"])
def test_bad_size_limit(limit: object) -> None:
    with pytest.raises(ConfigurationError, match="size_limit"):
        CachedStorage(MemoryStorage(), size_limit=limit)  # type: ignore[arg-type]


def test_remote_may_be_a_url(tmp_path: Path) -> None:
    cached = CachedStorage("memory://rk-cached-url", directory=tmp_path)
    cached.write("k", b"v")
    assert cached.read("k") == b"v"
