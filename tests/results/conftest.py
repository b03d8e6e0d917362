"""Fixtures for the results tests: a ResultStore on every storage backend."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
import xxhash

from resultkit.results import ResultStore
from resultkit.storage import LocalStorage, MemoryStorage, Storage

StorageFactory = Callable[[], Storage]


def _local(request: pytest.FixtureRequest) -> Storage:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return LocalStorage(tmp_path / "records")


def _memory(request: pytest.FixtureRequest) -> Storage:
    return MemoryStorage()


def _s3(request: pytest.FixtureRequest) -> Storage:
    from resultkit.storage import S3Storage

    return S3Storage(
        request.getfixturevalue("s3_bucket"),
        "results",
        endpoint_url=request.getfixturevalue("s3_endpoint"),
        skip_instance_cache=True,
    )


def _gcs(request: pytest.FixtureRequest) -> Storage:
    from resultkit.storage import GCSStorage

    return GCSStorage(
        request.getfixturevalue("gcs_bucket"),
        "results",
        token="anon",
        project="test",
        endpoint_url=request.getfixturevalue("gcs_endpoint"),
        skip_instance_cache=True,
    )


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Storage]] = {
    "local": _local,
    "memory": _memory,
}
# Remote backends run a focused suite (tests/results/test_remote.py): every request
# goes through moto or fake-gcs-server, which are slow enough to matter.
REMOTE_BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Storage]] = {
    "s3": _s3,
    "gcs": _gcs,
}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest) -> Storage:
    """A fresh, empty storage of each local backend kind."""
    return BACKENDS[request.param](request)


@pytest.fixture(params=sorted(REMOTE_BACKENDS))
def remote_storage(request: pytest.FixtureRequest) -> Storage:
    """A fresh, empty S3 (moto) or GCS (fake-gcs-server) storage."""
    return REMOTE_BACKENDS[request.param](request)


@pytest.fixture
def store(storage: Storage) -> ResultStore:
    """A pickle ResultStore on each backend."""
    return ResultStore(storage)


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "records")


class CountingLocalStorage(LocalStorage):
    """A real LocalStorage that counts calls to each primitive (to check read budgets)."""

    def __init__(self, basepath: Any, mmap: bool | None = None) -> None:
        super().__init__(basepath, mmap=mmap)
        self.calls: list[tuple[str, Any]] = []
        self.chunks: list[Any] = []  # the chunks of the last write, as storage received them

    def _read(self, key: str) -> bytes:
        self.calls.append(("read", None))
        return super()._read(key)

    def _read_head(self, key: str, size: int) -> bytes:
        self.calls.append(("read_head", size))
        return super()._read_head(key, size)

    def _open_read(self, key: str) -> IO[bytes]:
        self.calls.append(("open_read", None))
        return super()._open_read(key)

    def _map_read(self, key: str, size: int) -> memoryview | None:
        self.calls.append(("map_read", size))
        return super()._map_read(key, size)

    def _write_with_head(self, key: str, body: Sequence[memoryview], head_size: int,
                         make_head: Callable[[], Any]) -> None:
        self.calls.append(("write_with_head", len(body)))
        made: list[Any] = []

        def recorded_head() -> Any:
            made.append(make_head())
            return made[-1]

        super()._write_with_head(key, body, head_size, recorded_head)
        self.chunks = [*made, *body]  # as a sequential writer would have sent them

    def _write_chunks(self, key: str, chunks: Iterable[Any]) -> None:
        self.chunks = list(chunks)
        self.calls.append(("write", len(self.chunks)))
        super()._write_chunks(key, self.chunks)


@pytest.fixture
def counting_storage(tmp_path: Path) -> Iterator[CountingLocalStorage]:
    yield CountingLocalStorage(tmp_path / "counted")


def seal_header(header: dict[str, Any]) -> bytes:
    """The header line for an edited header dict, with a recomputed header_hash (as a hand edit would)."""
    hashed = orjson.dumps({k: v for k, v in header.items() if k != "header_hash"})[:-1]
    return hashed + b',"header_hash":"xxh3_128:' + xxhash.xxh3_128_hexdigest(hashed).encode() + b'"}\n'


def rewrite_header(storage: Storage, key: str, **metadata_changes: object) -> None:
    """Edit a stored record's header in place (payload kept), as a hand edit would."""
    line, _, payload = storage.read(key).partition(b"\n")
    header = orjson.loads(line)
    header["metadata"].update(metadata_changes)
    storage.write(key, seal_header(header) + payload)
