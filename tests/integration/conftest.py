"""Fixtures for the integration tests: storage every process can reach, and a body counter."""

from __future__ import annotations

from pathlib import Path

import pytest

from resultkit.storage import LocalStorage, S3Storage, Storage


@pytest.fixture
def s3_storage(s3_bucket: str, s3_endpoint: str) -> S3Storage:
    """An empty S3 (moto) storage; it pickles and travels as JSON to any local process."""
    return S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint)


@pytest.fixture(params=["local", "s3"])
def shared_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Local storage on a shared file system, then S3 (moto)."""
    if request.param == "local":
        return LocalStorage(tmp_path / "shared-store")
    return request.getfixturevalue("s3_storage")  # type: ignore[no-any-return]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A folder where task bodies leave one marker per execution, from any process."""
    path = tmp_path / "runs"
    path.mkdir()
    return path
