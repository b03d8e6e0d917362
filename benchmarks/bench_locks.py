"""Uncontended lock acquire + release latency for each resultkit lock manager.

Redis runs as a real ``redis-server`` on a free loopback port, started and stopped here.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _harness import Config, Row, Section, Unavailable, scratch_dir, time_per_call

__all__ = ["NAME", "run"]

NAME = "locks"


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """redis-server in the foreground on a free port (no --daemonize: see TEST-INFRA)."""
    from _harness import free_port

    exe = shutil.which("redis-server")
    if exe is None:
        raise Unavailable("redis-server not installed (apt-get install redis-server)")
    import redis

    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder), "--logfile", str(folder / "redis.log")])
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise Unavailable("redis-server did not come up") from None
                time.sleep(0.02)  # polling a server's start-up
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _cycle(manager: Any) -> Callable[[], None]:
    key = "bench/" + uuid.uuid4().hex
    holder = "bench-" + uuid.uuid4().hex[:8]

    def acquire_release() -> None:
        manager.acquire_lock(key, holder, acquire_timeout=5, hold_timeout=60)
        manager.release_lock(key, holder)

    return acquire_release


def run(config: Config) -> list[Section]:
    section = Section("Lock acquire + release, uncontended",
                      "Median per acquire_lock + release_lock pair on one key, one holder.")
    repeat = config.repeats(15, 5)
    try:
        from resultkit.locking import (
            FileLockManager,
            MemoryLockManager,
            RedisLockManager,
        )
    except ImportError as exc:
        section.unavailable("resultkit", f"resultkit piece missing: {exc}")
        return [section]
    with scratch_dir(config, "locks") as folder:
        managers: list[tuple[str, Callable[[], Any]]] = [
            ("MemoryLockManager", MemoryLockManager),
            ("FileLockManager", lambda: FileLockManager(folder / "locks")),
        ]
        for label, make in managers:
            seconds, n = time_per_call(_cycle(make()), repeat)
            section.add(Row(f"resultkit {label}", seconds, n))
        try:
            with redis_server(folder) as url:
                manager = RedisLockManager(url)
                seconds, n = time_per_call(_cycle(manager), repeat)
                section.add(Row("resultkit RedisLockManager", seconds, n, note="redis-server on loopback"))
                import redis

                client = redis.Redis.from_url(url)
                seconds, n = time_per_call(lambda: client.set("bench-floor", b"x", nx=True, px=60_000)
                                           and client.delete("bench-floor"), repeat)
                section.add(Row("floor: redis SET NX PX + DEL", seconds, n, is_floor=True))
                client.close()
        except Unavailable as exc:
            section.unavailable("resultkit RedisLockManager", str(exc))
        import os

        path = folder / "floor.lock"

        def create_remove() -> None:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
            os.unlink(path)

        seconds, n = time_per_call(create_remove, repeat)
        section.add(Row("floor: O_EXCL create + unlink", seconds, n, is_floor=True))
    section.notes.append("no target is set for lock latency; the ratio column is not used here "
                         "because every row is resultkit's")
    return [section]
