"""Engines: ``t.map`` overhead on each task runner, the SERIALIZABLE herd on Dask, and the
object-store lock against the Redis lock.

Every comparison runs its candidates interleaved (A, B, A, B, ...) in one process and
reports medians, so a machine that gets busier mid-run slows both sides alike.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from _harness import Config, Row, Section, Unavailable, scratch_dir

__all__ = ["NAME", "run"]

NAME = "engines"


def interleaved(candidates: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median seconds of each candidate, timed in turn ``repeat`` times (after one warm-up each)."""
    for fn in candidates.values():
        fn()
    samples: dict[str, list[float]] = {label: [] for label in candidates}
    for _ in range(repeat):
        for label, fn in candidates.items():
            start = time.perf_counter()
            fn()
            samples[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in samples.items()}


def square(x: int) -> int:
    return x * x


# -- t.map over cached calls ---------------------------------------------------------------------


@contextlib.contextmanager
def _engines(config: Config) -> Iterator[list[tuple[str, Any, Any]]]:
    """(label, resultkit runner, bare map(fn, items) -> list) for each engine available here."""
    import multiprocessing

    from resultkit.task_runners import (
        DaskTaskRunner,
        ProcessPoolTaskRunner,
        RayTaskRunner,
        ThreadPoolTaskRunner,
    )

    with contextlib.ExitStack() as stack:
        threads = stack.enter_context(ThreadPoolExecutor(8))
        engines: list[tuple[str, Any, Any]] = [
            ("threads (ThreadPoolExecutor.map)", ThreadPoolTaskRunner(8),
             lambda fn, items: list(threads.map(fn, items)))]
        spawn = multiprocessing.get_context("spawn")
        processes = stack.enter_context(ProcessPoolExecutor(2, mp_context=spawn))
        engines.append(("processes (ProcessPoolExecutor.map)", ProcessPoolTaskRunner(2),
                        lambda fn, items: list(processes.map(fn, items, chunksize=1))))
        try:
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1,
                                                       processes=True, dashboard_address=None))
            client = stack.enter_context(Client(cluster))
            engines.append(("Dask (client.map + gather)", DaskTaskRunner(client=client),
                            lambda fn, items: client.gather(client.map(fn, items, pure=False))))
        except ImportError:
            engines.append(("Dask", None, "dask not installed"))
        if config.quick:
            engines.append(("Ray", None, "skipped in --quick (starting Ray takes ~15 s)"))
        else:
            try:
                import ray

                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                stack.callback(ray.shutdown)
                remotes: dict[Any, Any] = {}

                def ray_map(fn: Any, items: list[int]) -> list[Any]:
                    if fn not in remotes:  # ray.remote refuses a task object: wrap the call
                        remotes[fn] = ray.remote(lambda x, fn=fn: fn(x))
                    return ray.get([remotes[fn].remote(x) for x in items])

                engines.append(("Ray (ray.get of .remote calls)", RayTaskRunner(), ray_map))
            except ImportError:
                engines.append(("Ray", None, "ray not installed"))
        for _, runner, _bare in engines:
            if runner is not None:
                stack.enter_context(runner)
        yield engines


def map_overhead(config: Config) -> Section:
    from resultkit import settings, task
    from resultkit.cache_policies import INPUTS, TASK_SOURCE

    n = 200 if config.quick else 1000
    repeat = config.repeats(5, 2)
    section = Section(
        f"t.map over {n} cached calls, against the engine's bare map",
        f"Wall time of `t.map(range({n})).result()` on each runner, every call a hit in local "
        f"storage (primed first), against the engine's own map of the plain function; "
        f"interleaved, median of {repeat}. Overheads are against the plain function; the "
        "engine's map of the task itself shows how much of that is the cache hit (a record "
        "read) rather than t.map (context snapshot, futures).",
        extra_columns=("per call", "overhead per call"))
    with scratch_dir(config, "engines-map") as folder:
        storage = str(folder / "store")

        @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=storage, name="bench.square")
        def cached_square(x: int) -> int:
            return x * x

        for x in range(n):
            cached_square(x)  # prime: every mapped call below is a hit
        with _engines(config) as engines:
            for label, runner, bare in engines:
                if runner is None:
                    section.unavailable(label, bare)
                    continue
                items = list(range(n))

                def with_resultkit(runner: Any = runner) -> None:
                    with settings(task_runner=runner):
                        assert cached_square.map(items).result(timeout=600)[-1] == (n - 1) ** 2

                def bare_map(bare: Any = bare) -> None:
                    assert bare(square, items)[-1] == (n - 1) ** 2

                def bare_task_map(bare: Any = bare) -> None:
                    assert bare(cached_square, items)[-1] == (n - 1) ** 2

                medians = interleaved({"resultkit": with_resultkit, "bare": bare_map,
                                       "task": bare_task_map}, repeat)
                engine = label.split(" (")[0]

                def per_call(name: str) -> dict[str, str]:
                    overhead = (medians[name] - medians["bare"]) / n
                    return {"per call": f"{medians[name] / n * 1e6:.0f} µs",
                            "overhead per call": f"{overhead * 1e6:+.0f} µs"}

                section.add(Row(f"resultkit t.map on {engine}", medians["resultkit"], repeat,
                                extra=per_call("resultkit")))
                section.add(Row(f"{engine}: the engine's map of the task itself", medians["task"], repeat,
                                extra=per_call("task"), note="the same hits, without t.map"))
                section.add(Row(f"bare: {label} of the plain function", medians["bare"], repeat,
                                is_floor=True, extra={"per call": f"{medians['bare'] / n * 1e6:.0f} µs"}))
    return section


# -- the herd on Dask -------------------------------------------------------------------------------


def dask_herd(config: Config) -> Section:
    from resultkit import settings, task
    from resultkit.cache_policies import INPUTS, TASK_SOURCE
    from resultkit.task_runners import DaskTaskRunner

    section = Section(
        "Herd of 8 identical t.submit calls on a Dask LocalCluster (2 worker processes)",
        "8 concurrent submissions of the same call, whose body takes 0.5 s, on fresh local "
        "storage each time; wall time until all 8 have their value. Median of the runs, "
        "isolation levels interleaved.", extra_columns=("body runs",))
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        section.unavailable("resultkit", "dask not installed")
        return section
    repeat = config.repeats(5, 2)
    with scratch_dir(config, "engines-herd") as folder, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, Client(cluster) as client, \
            DaskTaskRunner(client=client) as runner:
        runs = folder / "runs"
        runs.mkdir()
        runs_dir = str(runs)

        def herd(level: str) -> Callable[[], None]:
            def once() -> None:
                storage = str(folder / f"store-{uuid.uuid4().hex}")

                @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=storage, name="bench.herd")
                def slow(x: int) -> int:
                    with open(os.path.join(runs_dir, f"{level}-{uuid.uuid4().hex}"), "w"):
                        pass
                    time.sleep(0.5)  # the work the herd would repeat
                    return x

                with settings(task_runner=runner, isolation_level=level):
                    assert [f.result(timeout=600) for f in [slow.submit(1) for _ in range(8)]] == [1] * 8
            return once

        medians = interleaved({"SERIALIZABLE": herd("SERIALIZABLE"),
                               "READ_COMMITTED": herd("READ_COMMITTED")}, repeat)
        for level, seconds in medians.items():
            bodies = len([p for p in os.listdir(runs) if p.startswith(level)]) / (repeat + 1)
            section.add(Row(f"resultkit {level}", seconds, repeat,
                            extra={"body runs": f"{bodies:g} per herd"},
                            note="" if level == "SERIALIZABLE" else "the default isolation"))
    return section


# -- object-store lock vs Redis lock --------------------------------------------------------------------


def lock_latency(config: Config) -> Section:
    section = Section(
        "Lock acquire + release: the lease in the bucket (moto) against Redis",
        "Median per acquire_lock + release_lock pair on a fresh key, interleaved in one run. "
        "moto runs as its own process on loopback (pure Python: a real S3 round trip is "
        "10-30 ms); redis-server on loopback.", extra_columns=("requests",))
    from bench_locks import redis_server
    from bench_s3 import _CREDENTIALS, moto_server

    for name, value in _CREDENTIALS.items():
        os.environ.setdefault(name, value)
    repeat = config.repeats(30, 5)
    try:
        import boto3

        from resultkit.locking import ObjectStoreLockManager, RedisLockManager
        from resultkit.storage import S3Storage
    except ImportError as exc:
        section.unavailable("resultkit", f"missing: {exc}")
        return section
    with scratch_dir(config, "engines-locks") as folder, moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench-locks")
        s3_locks = ObjectStoreLockManager(S3Storage("bench-locks", "results", endpoint_url=endpoint))
        s3_locks.acquire_lock("warm-up", "bench")  # the once-per-manager condition check
        fs = s3_locks.storage.fs

        def cycle(manager: Any) -> Callable[[], None]:
            def acquire_release() -> None:
                key, holder = "bench/" + uuid.uuid4().hex, "bench-holder"
                assert manager.acquire_lock(key, holder, acquire_timeout=5, hold_timeout=60)
                manager.release_lock(key, holder)
            return acquire_release

        def floor_put() -> None:
            fs.call_s3("put_object", Bucket="bench-locks", Key="floor/" + uuid.uuid4().hex,
                       Body=b"x", IfNoneMatch="*")

        candidates: dict[str, Callable[[], None]] = {"s3": cycle(s3_locks), "floor": floor_put}
        try:
            redis_cm = redis_server(folder)
            url = redis_cm.__enter__()
            candidates["redis"] = cycle(RedisLockManager(url))
        except Unavailable as exc:
            redis_cm = None
            section.unavailable("resultkit RedisLockManager", str(exc))
        try:
            medians = interleaved(candidates, repeat)
        finally:
            if redis_cm is not None:
                redis_cm.__exit__(None, None, None)
    section.add(Row("resultkit ObjectStoreLockManager (S3, moto)", medians["s3"], repeat,
                    extra={"requests": "2 (create if absent, replace if unchanged)"}))
    if "redis" in medians:
        section.add(Row("resultkit RedisLockManager", medians["redis"], repeat,
                        extra={"requests": "2 scripts"}))
    section.add(Row("floor: one conditional PUT on moto", medians["floor"], repeat, is_floor=True,
                    extra={"requests": "1"}))
    return section


def run(config: Config) -> list[Section]:
    return [map_overhead(config), dask_herd(config), lock_latency(config)]


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from _harness import render_sections

    quick = "--quick" in sys.argv
    print(render_sections(run(Config(quick=quick, prefect_python=None, scratch=Path("/tmp")))))
