"""The lock-manager contract (``resultkit.testing.LeasedLockManagerContract``) for every manager.

MemoryLockManager, FileLockManager, RedisLockManager (redis-server) and
ObjectStoreLockManager on S3 (moto) and GCS (fake-gcs-server); then what is particular to one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from resultkit.errors import ConfigurationError
from resultkit.locking import (
    FileLockManager,
    LockManager,
    MemoryLockManager,
    ObjectStoreLockManager,
    RedisLockManager,
)
from resultkit.storage import GCSStorage, S3Storage
from resultkit.testing import LeasedLockManagerContract


class TestMemoryLockManager(LeasedLockManagerContract):
    @pytest.fixture
    def lock_manager(self) -> Any:
        return MemoryLockManager()


class TestFileLockManager(LeasedLockManagerContract):
    @pytest.fixture
    def lock_manager(self, tmp_path: Path) -> Any:
        return FileLockManager(tmp_path / "locks")


class TestRedisLockManager(LeasedLockManagerContract):
    @pytest.fixture
    def lock_manager(self, redis_url: str) -> Any:
        return RedisLockManager(redis_url)


class TestObjectStoreLockManagerOnS3(LeasedLockManagerContract):
    @pytest.fixture
    def lock_manager(self, s3_bucket: str, s3_endpoint: str) -> Any:
        return ObjectStoreLockManager(S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint))


class TestObjectStoreLockManagerOnGCS(LeasedLockManagerContract):
    @pytest.fixture
    def lock_manager(self, gcs_bucket: str, gcs_endpoint: str) -> Any:
        return ObjectStoreLockManager(GCSStorage(gcs_bucket, "results", token="anon", project="test",
                                                 endpoint_url=gcs_endpoint))


def test_a_manager_without_the_async_methods_is_not_a_lock_manager() -> None:
    class SyncOnly:
        def acquire_lock(self, key: str, holder: str, acquire_timeout: Any = None,
                         hold_timeout: Any = None) -> bool:
            return True

        def release_lock(self, key: str, holder: str) -> None: ...
        def is_locked(self, key: str) -> bool: return False
        def is_lock_holder(self, key: str, holder: str) -> bool: return False
        def wait_for_lock(self, key: str, timeout: Any = None) -> bool: return True

    assert not isinstance(SyncOnly(), LockManager)


def test_file_locks_one_file_per_key_named_by_hash(tmp_path: Any) -> None:
    manager = FileLockManager(tmp_path / "locks")
    assert manager.acquire_lock("a/b", "h1", acquire_timeout=0)
    assert manager.acquire_lock("a_b", "h2", acquire_timeout=0)
    lock_files = sorted(p.name for p in (tmp_path / "locks").glob("*.lock"))
    assert len(lock_files) == 2
    assert all(len(name) == 64 + len(".lock") for name in lock_files)


def test_unreachable_redis_raises_configuration_error_naming_the_url() -> None:
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    manager = RedisLockManager(url, socket_connect_timeout=2)
    with pytest.raises(ConfigurationError, match=url):
        manager.acquire_lock("k", "h", acquire_timeout=0)


def test_unusable_lock_directory_raises_configuration_error(tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    manager = FileLockManager(blocker / "locks")
    with pytest.raises(ConfigurationError, match="a-file"):
        manager.acquire_lock("k", "h", acquire_timeout=0)


def test_bad_redis_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisLockManager("localhost:6379")
