"""A record replaced while its payload streams is read again, never a raw backend exception."""

from __future__ import annotations

import logging
import threading
from typing import IO, Any

import pytest

from resultkit.errors import ResultkitError, StorageError
from resultkit.results import ResultStore
from resultkit.storage import GCSStorage, S3Storage

SIZE = 128 << 10  # past first_read_size below: the payload is streamed after the header read


class ReplacingS3Storage(S3Storage):
    """Real S3 storage that overwrites the record right after opening each payload stream."""

    def __init__(self, *args: Any, replacements: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_read_size = 16 << 10
        self.replacements = replacements
        self.opened = 0
        self.writer = ResultStore(S3Storage(self.bucket, self.prefix, **self.options))

    def _replace(self, key: str) -> None:
        self.opened += 1
        if self.replacements:
            self.replacements -= 1
            self.writer.write(key, bytes([self.opened]) * SIZE)

    def _open_read(self, key: str) -> IO[bytes]:
        stream = super()._open_read(key)
        self._replace(key)
        return stream

    def _read_rest_into(self, key: str, head: bytes, view: memoryview) -> bool:
        # The payload's ranged reads, pinned to the version the head came from.
        self._replace(key)
        return super()._read_rest_into(key, head, view)


def _replacing(s3_bucket: str, s3_endpoint: str, replacements: int) -> ReplacingS3Storage:
    return ReplacingS3Storage(s3_bucket, "r", endpoint_url=s3_endpoint, skip_instance_cache=True,
                              replacements=replacements)


def test_a_record_replaced_while_it_streams_is_read_again_from_its_new_version(
    s3_bucket: str, s3_endpoint: str,
) -> None:
    storage = _replacing(s3_bucket, s3_endpoint, replacements=0)
    store = ResultStore(storage)
    store.write("k", b"\xff" * SIZE)
    storage.replacements = 1
    assert store.read("k").result == bytes([1]) * SIZE  # the version written after the first open
    assert storage.opened == 2


def test_a_record_replaced_on_every_read_is_a_storage_error_or_a_miss(
    s3_bucket: str, s3_endpoint: str, caplog: pytest.LogCaptureFixture,
) -> None:
    storage = _replacing(s3_bucket, s3_endpoint, replacements=0)
    store = ResultStore(storage)
    store.write("k", b"\xff" * SIZE)
    storage.replacements = 1000
    with pytest.raises(StorageError, match="kept being replaced"):
        store.read("k")
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup("k") is None
    assert "kept being replaced" in caplog.text and "FileExpired" not in caplog.text


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_reads_under_a_free_running_writer_only_ever_return_whole_values(
    request: pytest.FixtureRequest, backend: str,
) -> None:
    if backend == "s3":
        storage: S3Storage | GCSStorage = S3Storage(
            request.getfixturevalue("s3_bucket"), "r", endpoint_url=request.getfixturevalue("s3_endpoint"),
            skip_instance_cache=True)
    else:
        storage = GCSStorage(request.getfixturevalue("gcs_bucket"), "r", token="anon", project="test",
                             endpoint_url=request.getfixturevalue("gcs_endpoint"), skip_instance_cache=True)
    storage.first_read_size = 16 << 10
    store = ResultStore(storage)
    versions = [bytes([n]) * SIZE for n in range(8)]
    store.write("k", versions[0])
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            writer_store.write("k", versions[n % len(versions)])

    writer_store = ResultStore(storage)
    thread = threading.Thread(target=writer)
    thread.start()
    outcomes: list[str] = []
    try:
        for _ in range(6):
            try:
                value = store.read("k").result
            except ResultkitError as exc:  # a resultkit error is allowed; a raw one is not
                outcomes.append(type(exc).__name__)
            else:
                assert value in versions
                outcomes.append("value")
    finally:
        stop.set()
        thread.join()
    assert len(outcomes) == 6
    last = storage.read("k").partition(b"\n")[2]
    assert store.read("k").result == ResultStore(storage).serializer.loads(last)
