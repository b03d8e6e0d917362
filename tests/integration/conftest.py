"""Fixtures for the integration tests: storage every process can reach, and a body counter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from resultkit.storage import GCSStorage, LocalStorage, S3Storage, Storage


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


@pytest.fixture
def gcs_storage(gcs_bucket: str, gcs_endpoint: str) -> GCSStorage:
    """An empty GCS (fake-gcs-server) storage."""
    return GCSStorage(gcs_bucket, "results", token="anon", project="test", endpoint_url=gcs_endpoint)


@pytest.fixture(params=["s3", "gcs"])
def bucket_storage(request: pytest.FixtureRequest) -> Storage:
    """S3 (moto), then GCS (fake-gcs-server): the stores whose default lock lives in the bucket."""
    return request.getfixturevalue(f"{request.param}_storage")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def gcs_pyemu_endpoint() -> Iterator[str]:
    """gcp-storage-emulator, in process: a GCS emulator that ignores ifGenerationMatch."""
    import socket

    from gcp_storage_emulator.server import create_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One small local Ray for the whole session (RayTaskRunner uses a Ray already started)."""
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file written under ~/.ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False, runtime_env={"env_vars": {"RAY_AUTH_MODE": "disabled"}})
    yield
    ray.shutdown()
