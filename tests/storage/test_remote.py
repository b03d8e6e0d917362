"""Remote specifics: retries, aborted uploads, pickling into worker processes."""

from __future__ import annotations

import errno
import multiprocessing
import os
import socket

import pytest

from resultkit.errors import StorageError
from resultkit.storage import S3Storage
from resultkit.storage.retry import RetryPolicy, call_with_retries, is_transient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)


class Flaky:
    """A callable that fails with ``error`` ``failures`` times, then returns ``"ok"``."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_transient_faults_are_retried_until_success() -> None:
    flaky = Flaky(2, ConnectionResetError(errno.ECONNRESET, "connection reset by peer"))
    assert call_with_retries(flaky, backend="s3://b", action="read", key="k", policy=FAST) == "ok"
    assert flaky.calls == 3


def test_retries_are_bounded_and_the_error_names_backend_key_and_cause() -> None:
    flaky = Flaky(10, OSError(errno.EBUSY, "SlowDown: please reduce your request rate"))
    with pytest.raises(StorageError) as info:
        call_with_retries(flaky, backend="s3://bucket/prefix", action="write", key="task/abc", policy=FAST)
    assert flaky.calls == 4
    message = str(info.value)
    assert "s3://bucket/prefix" in message and "'task/abc'" in message
    assert "SlowDown" in message and "after 4 attempts" in message


@pytest.mark.parametrize("error", [PermissionError(errno.EACCES, "Access Denied"), OSError(errno.EIO, "bad")])
def test_permanent_faults_are_not_retried(error: OSError) -> None:
    flaky = Flaky(1, error)
    with pytest.raises(StorageError, match="'k'"):
        call_with_retries(flaky, backend="gs://b", action="read", key="k", policy=FAST)
    assert flaky.calls == 1


def test_missing_objects_and_bugs_pass_through_unchanged() -> None:
    with pytest.raises(FileNotFoundError):
        call_with_retries(Flaky(1, FileNotFoundError("k")), backend="x", action="read", key="k")
    flaky = Flaky(1, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        call_with_retries(flaky, backend="x", action="read", key="k", policy=FAST)
    assert flaky.calls == 1


def test_client_library_errors_are_classified() -> None:
    from botocore.exceptions import EndpointConnectionError
    from gcsfs.retry import HttpError

    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient(HttpError({"code": 503, "message": "backend unavailable"}))
    assert is_transient(HttpError({"code": 429, "message": "rate limited"}))
    assert not is_transient(HttpError({"code": 403, "message": "forbidden"}))
    wrapped = OSError(errno.EIO, "wrapped")
    wrapped.__cause__ = TimeoutError("read timed out")
    assert is_transient(wrapped)


def test_unreachable_s3_endpoint_fails_with_a_storage_error_after_retries() -> None:
    """A real connection failure: nothing listens on the port."""
    dead = f"http://127.0.0.1:{free_port()}"
    storage = S3Storage("some-bucket", endpoint_url=dead, skip_instance_cache=True,
                        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 2})
    storage.retry_policy = RetryPolicy(attempts=2, base_delay=0.001)
    with pytest.raises(StorageError) as info:
        storage.write("task/key", b"value")
    message = str(info.value)
    assert "s3://some-bucket" in message and "'task/key'" in message and "after 2 attempts" in message


def test_failed_multipart_upload_is_aborted(s3_endpoint: str, s3_bucket: str) -> None:
    import boto3

    storage = S3Storage(s3_bucket, "p", endpoint_url=s3_endpoint)
    storage.single_put_limit = 1 << 20
    storage.part_size = 5 << 20
    block = os.urandom(1 << 20)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(11):
            yield block
        raise KeyboardInterrupt  # even a BaseException must not commit the upload

    with pytest.raises(KeyboardInterrupt):
        storage.write("big", chunks())
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def _read_in_worker(storage: S3Storage, key: str) -> bytes:
    return storage.read(key)


def test_s3_storage_travels_to_a_worker_process(s3_endpoint: str, s3_bucket: str) -> None:
    storage = S3Storage(s3_bucket, "p", endpoint_url=s3_endpoint)
    storage.write("k", b"written by the parent")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_read_in_worker, (storage, "k")) == b"written by the parent"


def test_client_library_errors_that_are_not_oserrors_become_storage_errors() -> None:
    from gcsfs.retry import HttpError

    flaky = Flaky(1, HttpError({"code": 403, "message": "caller does not have storage.objects.get"}))
    with pytest.raises(StorageError, match="does not have storage"):
        call_with_retries(flaky, backend="gs://b", action="read", key="k", policy=FAST)
    assert flaky.calls == 1
