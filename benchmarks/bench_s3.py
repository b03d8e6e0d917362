"""S3 round trips against moto's server on loopback: resultkit records vs bare s3fs.

The moto server runs as a separate process (started and stopped here), so it does not
share the measuring process's GIL. Payload: a float64 array of the stated size.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

from _harness import (
    Config,
    Row,
    Section,
    Unavailable,
    child_env,
    fmt_bytes,
    free_port,
    median_time,
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
    if not sections:
        raise Unavailable("moto server did not start")
    return sections
