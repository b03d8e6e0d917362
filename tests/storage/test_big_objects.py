"""Big records on S3 (moto) and GCS (fake-gcs-server): parallel multipart uploads from the
serializer's buffers, and parallel ranged reads pinned to one version, the head not fetched twice."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import gcsfs
import numpy as np
import pytest
import s3fs

from resultkit.errors import ConfigurationError, StorageError
from resultkit.results import ResultStore
from resultkit.storage import GCSStorage, S3Storage
from resultkit.storage.parallel import ObjectHead, PartBody, plan_parts

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part: keeps the records here small


class RecordingS3FileSystem(s3fs.S3FileSystem):  # type: ignore[misc]
    """The real s3fs, recording each S3 call and able to run a hook before one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hook: Any = None

    async def _call_s3(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, {k: v for k, v in kwargs.items() if k != "Body"}))
        if self.hook is not None:
            await self.hook(self, method, kwargs)
        return await super()._call_s3(method, *args, **kwargs)


def _s3(bucket: str, endpoint: str, **options: Any) -> tuple[S3Storage, RecordingS3FileSystem]:
    storage = S3Storage(bucket, "big", endpoint_url=endpoint, part_size=PART, transfer_concurrency=3,
                        skip_instance_cache=True, **options)
    fs = RecordingS3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    storage._fs = fs
    storage.single_put_limit = PART  # records past one part upload in parts
    return storage, fs


def _value() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three out-of-band buffers (3, 4 and 7 MiB): 5 MiB parts cut inside and across them."""
    rng = np.random.default_rng(7)
    return (rng.integers(0, 255, 3 * MiB, dtype=np.uint8), rng.standard_normal(MiB // 2),
            rng.standard_normal(7 * MiB // 8))


def _same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def test_plan_parts_slices_inside_and_across_buffers_without_copying() -> None:
    buffers = [memoryview(bytearray(range(250)) * 10), memoryview(b"x" * 1000), memoryview(b"y" * 10)]
    parts = plan_parts(buffers, 1024)
    assert [sum(v.nbytes for v in part) for part in parts] == [1024, 1024, 1024, 438]
    assert [len(part) for part in parts] == [1, 1, 2, 2]  # the third part crosses into buffer 2
    for part in parts:
        for view in part:
            assert any(view.obj is buffer.obj for buffer in buffers)  # slices, never copies
    assert b"".join(bytes(v) for part in parts for v in part) == b"".join(bytes(b) for b in buffers)


def test_a_part_body_reads_seeks_and_iterates_across_its_slices() -> None:
    body = PartBody([memoryview(b"abc"), memoryview(b"defg")])
    assert len(body) == 7 and body.read(2) == b"ab" and body.read(3) == b"cde" and body.tell() == 5
    body.seek(0)
    assert isinstance(body.read(3), memoryview)  # within one buffer: a view
    body.seek(-2, 2)
    assert bytes(body.read()) == b"fg" and body.read() == b""


def test_transfer_options_are_checked_and_kept_in_blocks(s3_endpoint: str) -> None:
    with pytest.raises(ConfigurationError, match="part_size must be an int of at least 5 MiB"):
        S3Storage("b", endpoint_url=s3_endpoint, part_size=1024)
    with pytest.raises(ConfigurationError, match="transfer_concurrency must be an int from 1 to 64"):
        GCSStorage("b", transfer_concurrency=0)
    storage = S3Storage("b", endpoint_url=s3_endpoint, part_size=PART, transfer_concurrency=4)
    block = storage.to_block()
    assert block["part_size"] == PART and block["transfer_concurrency"] == 4
    assert S3Storage(**block) == storage


def test_a_multipart_record_round_trips_byte_exact_and_the_head_is_not_fetched_twice(
    s3_bucket: str, s3_endpoint: str,
) -> None:
    storage, fs = _s3(s3_bucket, s3_endpoint)
    value = _value()
    ResultStore(storage).write("k", value)
    uploads = [kw for method, kw in fs.calls if method == "upload_part"]
    size = storage.fs.info(storage.path_of("k"))["size"]
    assert len(uploads) == -(-size // PART) >= 3 and not [m for m, _ in fs.calls if m == "put_object"]
    assert storage.fs.info(storage.path_of("k"))["ETag"].endswith(f'-{len(uploads)}"')  # one multipart object

    fs.calls.clear()
    reader, reader_fs = _s3(s3_bucket, s3_endpoint)
    assert _same(ResultStore(reader).read("k").result, value)
    gets = [kw for method, kw in reader_fs.calls if method == "get_object"]
    first = reader.first_read_size
    assert gets[0]["Range"] == f"bytes=0-{first - 1}"
    ranges = sorted(tuple(int(n) for n in kw["Range"][6:].split("-")) for kw in gets[1:])
    assert ranges[0][0] == first and ranges[-1][1] == size - 1  # the rest, starting after the head
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))  # no byte fetched twice
    assert all(kw["IfMatch"] == gets[1]["IfMatch"] for kw in gets[1:])  # pinned to one version
    assert len(gets) == 1 + -(-(size - first) // PART)


def test_a_record_under_the_multipart_limit_is_one_put_read_from_its_buffers(
    s3_bucket: str, s3_endpoint: str,
) -> None:
    storage, fs = _s3(s3_bucket, s3_endpoint)
    bodies = []

    async def keep_body(_: Any, method: str, kwargs: dict[str, Any]) -> None:
        if method == "put_object":
            bodies.append(kwargs["Body"])

    fs.hook = keep_body
    value = np.random.default_rng(5).standard_normal(3 * MiB // 8)  # 3 MiB: one PUT
    ResultStore(storage).write("k", value)
    assert [m for m, _ in fs.calls if m in ("put_object", "upload_part")] == ["put_object"]
    assert len(bodies) == 1 and isinstance(bodies[0], PartBody)  # the buffers in place, not joined
    assert np.array_equal(ResultStore(storage).read("k").result, value)


def test_an_upload_that_fails_midway_leaves_no_record_and_no_stale_upload(
    s3_bucket: str, s3_endpoint: str,
) -> None:
    storage, fs = _s3(s3_bucket, s3_endpoint)
    sent = []

    async def fail_third_part(_: Any, method: str, kwargs: dict[str, Any]) -> None:
        if method == "upload_part":
            sent.append(kwargs["PartNumber"])
            if len(sent) == 3:
                raise PermissionError("injected: part 3 refused")

    fs.hook = fail_third_part
    with pytest.raises(StorageError, match="part 3 refused"):
        ResultStore(storage).write("k", _value())
    assert "abort_multipart_upload" in [m for m, _ in fs.calls]
    fs.hook = None
    assert not storage.exists("k")
    assert storage.incomplete_uploads() == []  # aborted at once: nothing left for `gc`
    assert ResultStore(storage).lookup("k") is None


def test_a_record_replaced_between_ranged_reads_is_read_again_never_mixed(
    s3_bucket: str, s3_endpoint: str,
) -> None:
    storage, fs = _s3(s3_bucket, s3_endpoint)
    store = ResultStore(storage)
    old, new = _value(), tuple(-a for a in _value())
    store.write("k", new)
    new_bytes = storage.read("k")
    store.write("k", old)
    replaced = []

    async def replace_during_the_rest(inner: Any, method: str, kwargs: dict[str, Any]) -> None:
        if method == "get_object" and "IfMatch" in kwargs and not replaced:
            replaced.append(kwargs["Range"])
            bucket, key = kwargs["Bucket"], kwargs["Key"]
            await s3fs.S3FileSystem._call_s3(inner, "put_object", Bucket=bucket, Key=key, Body=new_bytes)

    fs.hook = replace_during_the_rest
    assert _same(store.read("k").result, new)  # the first try failed its pin and was read again
    assert replaced
    failed = [kw for m, kw in fs.calls if m == "get_object" and kw.get("IfMatch")]
    assert len({kw["IfMatch"] for kw in failed}) == 2  # the old version's pin, then the new one's


def test_a_gcs_record_is_read_by_ranged_reads_of_one_generation(gcs_bucket: str, gcs_endpoint: str) -> None:
    storage = GCSStorage(gcs_bucket, "big", token="anon", project="test", endpoint_url=gcs_endpoint,
                         skip_instance_cache=True, part_size=PART, transfer_concurrency=3)
    value = _value()
    ResultStore(storage).write("k", value)
    head = storage.read_head("k", storage.first_read_size)
    assert isinstance(head, ObjectHead) and "generation" in head.version
    assert head.size == len(storage.read("k"))
    assert _same(ResultStore(storage).read("k").result, value)


def test_a_gcs_record_replaced_between_ranged_reads_is_read_again_never_mixed(
    gcs_bucket: str, gcs_endpoint: str,
) -> None:
    storage = GCSStorage(gcs_bucket, "big", token="anon", project="test", endpoint_url=gcs_endpoint,
                         skip_instance_cache=True, part_size=PART, transfer_concurrency=3)
    store = ResultStore(storage)
    old, new = _value(), tuple(-a for a in _value())
    store.write("k", new)
    new_bytes = storage.read("k")
    store.write("k", old)
    head = storage.read_head("k", storage.first_read_size)
    assert isinstance(head, ObjectHead)
    storage.write("k", new_bytes)  # replaced after the head was read
    rest = bytearray(head.size - len(head))
    with pytest.raises(OSError, match="replaced"):
        storage.read_rest_into("k", head, memoryview(rest))
    assert _same(store.read("k").result, new)


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_peak_memory_of_a_64_mib_read_stays_under_1_3x(request: pytest.FixtureRequest, backend: str) -> None:
    size = 64 * MiB
    storage: S3Storage | GCSStorage
    if backend == "s3":
        bucket, endpoint = request.getfixturevalue("s3_bucket"), request.getfixturevalue("s3_endpoint")
        storage = S3Storage(bucket, "big", endpoint_url=endpoint)
        make = f"S3Storage({bucket!r}, 'big', endpoint_url={endpoint!r})"
    else:
        bucket, endpoint = request.getfixturevalue("gcs_bucket"), request.getfixturevalue("gcs_endpoint")
        storage = GCSStorage(bucket, "big", token="anon", project="test", endpoint_url=endpoint)
        make = f"GCSStorage({bucket!r}, 'big', token='anon', project='test', endpoint_url={endpoint!r})"
    ResultStore(storage).write("k", np.random.default_rng(3).standard_normal(size // 8))
    script = textwrap.dedent(f"""
        import numpy
        from resultkit.results import ResultStore
        from resultkit.storage import GCSStorage, S3Storage

        def kib(field):  # VmHWM, not ru_maxrss: that one carries over the forking parent's peak
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

        store = ResultStore({make})
        store.warm_up()
        store.storage.read_head("k", 1 << 20)  # the client and its connection pool, before the baseline
        before = kib("VmRSS")
        value = store.read("k").result
        print((kib("VmHWM") - before) * 1024, value.nbytes)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    growth, nbytes = map(int, done.stdout.split())
    assert nbytes == size
    print(f"{backend}: peak RSS grew {growth / size:.2f}x the value")
    assert growth < 1.3 * size, f"peak RSS grew by {growth / MiB:.1f} MiB for a {size / MiB:.0f} MiB value"


def test_on_a_versioned_bucket_a_record_replaced_mid_read_is_served_whole_from_the_version_first_seen(
    s3_bucket: str, s3_endpoint: str,
) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).put_bucket_versioning(
        Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    storage, fs = _s3(s3_bucket, s3_endpoint)
    store = ResultStore(storage)
    old, new = _value(), tuple(-a for a in _value())
    store.write("k", new)
    new_bytes = storage.read("k")
    store.write("k", old)
    replaced = []

    async def replace_during_the_rest(inner: Any, method: str, kwargs: dict[str, Any]) -> None:
        if method == "get_object" and "IfMatch" in kwargs and not replaced:
            replaced.append(kwargs["VersionId"])
            await s3fs.S3FileSystem._call_s3(inner, "put_object", Bucket=kwargs["Bucket"], Key=kwargs["Key"],
                                             Body=new_bytes)

    fs.hook = replace_during_the_rest
    assert _same(store.read("k").result, old)  # every range came from the pinned VersionId
    assert replaced and _same(store.read("k").result, new)


_KILLED_WRITER = """
import sys
import numpy as np
import gcsfs
import s3fs
from resultkit.results import ResultStore
from resultkit.storage import S3Storage

class HeldAfterOnePart(s3fs.S3FileSystem):
    parts = 0
    async def _call_s3(self, method, *args, **kwargs):
        answer = await super()._call_s3(method, *args, **kwargs)
        if method == "upload_part":
            HeldAfterOnePart.parts += 1
            if HeldAfterOnePart.parts == 1:
                print("uploading", flush=True)
                await self.loop.run_in_executor(None, sys.stdin.read)  # held here until SIGKILLed
        return answer

bucket, endpoint = sys.argv[1:3]
storage = S3Storage(bucket, "big", endpoint_url=endpoint, part_size=5 << 20, transfer_concurrency=1)
storage._fs = HeldAfterOnePart(endpoint_url=endpoint, skip_instance_cache=True)
storage.single_put_limit = 5 << 20
ResultStore(storage).write("k", np.zeros(2 << 20))
"""


def test_gc_aborts_the_parallel_upload_of_a_sigkilled_writer(s3_bucket: str, s3_endpoint: str) -> None:
    import signal

    from resultkit.cli import main

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, s3_bucket, s3_endpoint],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "uploading"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    storage = S3Storage(s3_bucket, "big", endpoint_url=s3_endpoint, skip_instance_cache=True)
    assert [upload.path for upload in storage.incomplete_uploads()] == ["k"] and not storage.exists("k")
    assert main(["gc", f"s3://{s3_bucket}/big", "--option", f"endpoint_url={s3_endpoint}",
                 "--uploads-older-than", "0s"]) == 0
    assert storage.incomplete_uploads() == [] and not storage.exists("k")


class RecordingGCSFileSystem(gcsfs.GCSFileSystem):  # type: ignore[misc]
    """The real gcsfs, recording each request's method and path and able to fail one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str]] = []
        self.fail_on: Any = None

    async def _call(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, path))
        if self.fail_on is not None and self.fail_on(method, path, len(self.calls)):
            raise PermissionError(f"injected: {method} {path} refused")
        return await super()._call(method, path, *args, **kwargs)


def _gcs(bucket: str, endpoint: str) -> tuple[GCSStorage, RecordingGCSFileSystem]:
    storage = GCSStorage(bucket, "big", token="anon", project="test", endpoint_url=endpoint,
                         skip_instance_cache=True, part_size=PART, transfer_concurrency=3)
    fs = RecordingGCSFileSystem(token="anon", project="test", endpoint_url=endpoint, skip_instance_cache=True)
    storage._fs = fs
    storage.single_put_limit = PART
    return storage, fs


def test_a_gcs_record_is_uploaded_as_parallel_parts_composed_at_once(gcs_bucket: str, gcs_endpoint: str) -> None:
    storage, fs = _gcs(gcs_bucket, gcs_endpoint)
    value = _value()
    ResultStore(storage).write("k", value)
    assert any(path.endswith("/compose") for _, path in fs.calls)
    assert len([1 for method, path in fs.calls if method == "POST" and "uploadType" not in path
                and "upload/storage" in path]) >= 3  # one resumable session per part
    assert storage.incomplete_uploads() == []  # the parts were deleted once composed
    assert list(storage.list()) == ["k"]
    assert _same(ResultStore(storage).read("k").result, value)


def test_a_gcs_upload_that_fails_midway_leaves_no_record_and_no_parts(gcs_bucket: str, gcs_endpoint: str) -> None:
    storage, fs = _gcs(gcs_bucket, gcs_endpoint)
    sessions = []

    def third_session(method: str, path: str, _: int) -> bool:
        if method == "POST" and "upload/storage" in path:
            sessions.append(path)
            return len(sessions) == 3
        return False

    fs.fail_on = third_session
    with pytest.raises(StorageError, match="refused"):
        ResultStore(storage).write("k", _value())
    fs.fail_on = None
    assert not storage.exists("k") and storage.incomplete_uploads() == []
    assert fs.find(f"{gcs_bucket}/big") == []


def test_gc_sweeps_the_parts_a_killed_gcs_writer_left(gcs_bucket: str, gcs_endpoint: str) -> None:
    from resultkit.cli import main

    storage, fs = _gcs(gcs_bucket, gcs_endpoint)
    # What a writer killed after uploading two parts leaves: parts under a reserved folder.
    fs.pipe(f"{gcs_bucket}/big/.rk-parts/0123abcd/00000", b"a" * 10)
    fs.pipe(f"{gcs_bucket}/big/.rk-parts/0123abcd/00001", b"b" * 10)
    assert list(storage.list()) == []  # never listed as records
    assert [upload.path for upload in storage.incomplete_uploads()] == [".rk-parts/0123abcd"]
    assert main(["gc", f"gs://{gcs_bucket}/big", "--option", f"endpoint_url={gcs_endpoint}",
                 "--option", "token=anon", "--uploads-older-than", "0s"]) == 0
    assert storage.incomplete_uploads() == [] and fs.find(f"{gcs_bucket}/big") == []
