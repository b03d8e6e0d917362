"""The storage contract (``resultkit.testing.StorageContract``), run against every backend.

S3 and GCS instances share fsspec's per-endpoint file system instance (each test has its
own bucket): building an s3fs client costs about a second. Tests where another client
must see the bucket independently pass ``skip_instance_cache=True``.
"""

from __future__ import annotations

import uuid
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
from resultkit.testing import StorageContract


class OurStorageContract(StorageContract):
    """The contract, plus what our backends do with numpy buffers."""

    def test_numpy_arrays_are_written_as_buffers(self, storage: Storage) -> None:
        import numpy as np

        grid = np.arange(12, dtype=np.float64).reshape(3, 4)
        storage.write("numpy", grid)
        assert storage.read("numpy") == grid.tobytes()
        storage.write("mixed", [b"h", grid])
        assert storage.read("mixed") == b"h" + grid.tobytes()

    def test_strided_numpy_array_is_refused(self, storage: Storage) -> None:
        import numpy as np

        with pytest.raises(StorageError, match="contiguous"):
            storage.write("bad", np.arange(20)[::2])
        assert not storage.exists("bad")


def s3_storage(request: pytest.FixtureRequest) -> S3Storage:
    return S3Storage(
        request.getfixturevalue("s3_bucket"),
        "some/prefix",
        endpoint_url=request.getfixturevalue("s3_endpoint"),
    )


class TestLocalStorage(OurStorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "store")


class TestMemoryStorage(OurStorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return MemoryStorage()


class TestFsspecMemoryStorage(OurStorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return FsspecStorage(f"memory://rk-test-{uuid.uuid4().hex}/store")


class TestFsspecFileStorage(OurStorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return FsspecStorage("file://" + str(tmp_path / "store"))


class TestS3Storage(OurStorageContract):
    @pytest.fixture
    def storage(self, request: pytest.FixtureRequest) -> Storage:
        return s3_storage(request)


class TestGCSStorage(OurStorageContract):
    @pytest.fixture
    def storage(self, gcs_bucket: str, gcs_endpoint: str) -> Storage:
        return GCSStorage(gcs_bucket, "some/prefix", token="anon", project="test", endpoint_url=gcs_endpoint)


class TestCachedS3Storage(OurStorageContract):
    @pytest.fixture
    def storage(self, request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
        return CachedStorage(s3_storage(request), directory=tmp_path / "cache")
