"""Persist and load a large float64 array and a mixed-type DataFrame to local storage.

Every writer and reader runs in a fresh child process, so its peak memory is its own:
``python bench_persist.py child '{"library": ..., "op": "write"|"read", ...}'``.
Throughput is the value's in-memory size divided by the median time per operation.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
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
    median_time,
    run_child,
    scratch_dir,
)

__all__ = ["NAME", "run"]

NAME = "persist"

LIBRARIES = ("resultkit", "raw file", "joblib", "prefect")
TARGETS = {
    ("array", "write"): 3.5,
    ("array", "read"): 6.0,
    ("frame", "write"): 0.7,
    ("frame", "read"): 1.2,
}
MAX_PEAK_RATIO = 1.2
SLOW_BUDGET = 12.0  # seconds of timed work per child before it stops repeating


# -- values (built the same way in every child) ----------------------------------------------


def build_value(kind: str, size: int) -> Any:
    """``kind="array"``: ``size`` bytes of float64; ``kind="frame"``: ``size`` rows, 7 dtypes."""
    import numpy as np

    rng = np.random.default_rng(0)
    if kind == "array":
        return rng.standard_normal(size // 8)
    import pandas as pd

    rows = size
    codes = rng.integers(0, 8, rows)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "value": rng.standard_normal(rows),
            "when": pd.date_range("2020-01-01", periods=rows, freq="s"),
            "flag": rng.random(rows) < 0.5,
            "kind": pd.Categorical.from_codes(codes, categories=[f"kind-{i}" for i in range(8)]),
            "user": pd.Series([f"user-{i % 100_003}" for i in range(rows)], dtype="str"),
            "code": pd.Series([f"{i * 2654435761 % 2**32:08x}" for i in range(rows)], dtype="str"),
        }
    )


def value_nbytes(value: Any) -> int:
    if hasattr(value, "memory_usage"):
        return int(value.memory_usage(deep=True).sum())
    return int(value.nbytes)


# -- one library's write and read, in the child ----------------------------------------------


def _prepare(library: str, folder: Path, kind: str) -> tuple[Any, Any]:
    """(write(value), read() -> value) for ``library`` storing into ``folder``."""
    import pickle

    if library == "resultkit":
        try:
            from resultkit.results import ResultStore
            from resultkit.storage import LocalStorage
        except ImportError as exc:
            raise Unavailable(f"resultkit piece missing: {exc}") from None
        store = ResultStore(LocalStorage(folder))

        def write(value: Any) -> None:
            store.write("bench/value", value)

        def read() -> Any:
            return store.read("bench/value").result

        return write, read
    if library == "raw file":
        path = folder / "raw.bin"

        if kind == "array":
            import numpy as np

            def write(value: Any) -> None:
                with open(path, "wb") as f:
                    f.write(memoryview(value).cast("B"))

            def read() -> Any:
                with open(path, "rb") as f:
                    size = f.seek(0, 2)
                    f.seek(0)
                    out = np.empty(size // 8)
                    f.readinto(memoryview(out).cast("B"))
                    return out

            return write, read

        # A DataFrame has no single buffer: the floor writes and reads its pickled bytes
        # (pickling is done before the timer and not undone after).
        pickled: dict[int, bytes] = {}

        def write(value: Any) -> None:
            data = pickled.get(id(value))
            if data is None:
                data = pickled[id(value)] = pickle.dumps(value, protocol=5)
            with open(path, "wb") as f:
                f.write(data)

        def read() -> Any:
            with open(path, "rb") as f:
                return f.read()

        return write, read
    if library == "joblib":
        import joblib

        path = folder / "joblib.pkl"
        return (lambda value: joblib.dump(value, path)), (lambda: joblib.load(path))
    if library == "prefect":
        from prefect.filesystems import LocalFileSystem
        from prefect.results import ResultStore as PrefectStore

        # cache_result_in_memory=False: otherwise repeated reads return Prefect's in-memory copy
        pstore = PrefectStore(result_storage=LocalFileSystem(basepath=str(folder)), cache_result_in_memory=False)

        def write(value: Any) -> None:
            pstore.write(value, key="value")

        def read() -> Any:
            return pstore.read("value").result

        return write, read
    raise Unavailable(f"unknown library {library!r}")


def child_main(spec: dict[str, Any]) -> None:
    """Write or read ``repeat`` times, report each time and the peak memory ratio."""
    folder = Path(spec["folder"])
    kind = spec["kind"]
    write, read = _prepare(spec["library"], folder, kind)
    # Warm up on a small value so lazy imports don't count as the operation's memory.
    small = build_value(kind, 1 << 16 if kind == "array" else 1000)
    warm = folder / "warm"
    warm.mkdir(exist_ok=True)
    warm_write, warm_read = _prepare(spec["library"], warm, kind)
    warm_write(small)
    warm_read()
    del small
    memory = PeakMemory()
    times = []
    if spec["op"] == "write":
        value = build_value(kind, spec["size"])
        nbytes = value_nbytes(value)
        memory.reset()
        for _ in range(spec["repeat"]):
            start = time.perf_counter()
            write(value)
            times.append(time.perf_counter() - start)
            if len(times) >= 2 and sum(times) > SLOW_BUDGET:
                break  # a slow peer: fewer repeats (n in the table says how many)
    else:
        nbytes = spec["nbytes"]
        for _ in range(spec["repeat"]):
            start = time.perf_counter()
            value = read()
            times.append(time.perf_counter() - start)
            del value
            if len(times) >= 2 and sum(times) > SLOW_BUDGET:
                break
    emit_child_result({"times": times, "nbytes": nbytes, "peak_ratio": memory.ratio(nbytes),
                       "exact_peak": memory.exact})


# -- the parent side ---------------------------------------------------------------------------


def _floor_memcpy(kind: str, size: int, repeat: int) -> Row:
    import numpy as np

    nbytes = size if kind == "array" else 64 << 20
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch the pages first: the floor is the copy, not page faults
    seconds, n = median_time(lambda: np.copyto(dst, src), repeat)
    return Row("floor: memory copy (np.copyto)", seconds, n, nbytes=nbytes, is_floor=True)


def _floor_pickle(op: str, rows: int, repeat: int) -> Row:
    """In-memory pickle protocol 5 of the DataFrame: what any pickle-based store pays."""
    import pickle

    value = build_value("frame", rows)
    nbytes = value_nbytes(value)
    if op == "write":
        seconds, n = median_time(lambda: pickle.dumps(value, protocol=5), repeat)
        return Row("floor: pickle.dumps in memory", seconds, n, nbytes=nbytes, is_floor=True)
    data = pickle.dumps(value, protocol=5)
    seconds, n = median_time(lambda: pickle.loads(data), repeat)
    return Row("floor: pickle.loads in memory", seconds, n, nbytes=nbytes, is_floor=True)


def _measure(config: Config, kind: str, size: int) -> list[Section]:
    label = f"{fmt_bytes(size)} float64 array" if kind == "array" else f"{size:,}-row mixed DataFrame"
    sections = {
        op: Section(
            title=f"{'Persist' if op == 'write' else 'Load'} a {label} (local storage)",
            description=(
                "Fresh child process per library; throughput = in-memory size / median time. "
                "peak mem = (peak RSS - RSS before building or reading the value) / value size, "
                "so 1.00x means no copy beyond the value itself."
                + (" Reads are page-cache hot." if op == "read" else "")
            ),
            target=f">= {TARGETS[(kind, op)]} GB/s, peak memory <= {MAX_PEAK_RATIO}x",
            extra_columns=("peak mem",),
        )
        for op in ("write", "read")
    }
    repeat = config.repeats(5, 2)
    for library in LIBRARIES:
        python = sys.executable
        if library == "prefect":
            if config.prefect_python is None:
                for section in sections.values():
                    section.unavailable(library, config.prefect_reason)
                continue
            python = str(config.prefect_python)
        with scratch_dir(config, f"persist-{library.replace(' ', '-')}") as folder:
            nbytes = 0
            for op in ("write", "read"):
                n = min(repeat, 3) if library == "prefect" else repeat
                spec = {"library": library, "op": op, "kind": kind, "size": size, "folder": str(folder),
                        "repeat": n, "nbytes": nbytes}
                env = child_env(PREFECT_HOME=str(folder / "prefect-home"))
                try:
                    result = run_child([python, __file__, "child", json.dumps(spec)], env=env, timeout=900)
                except Unavailable as exc:
                    sections[op].unavailable(library, str(exc))
                    if op == "write":
                        sections["read"].unavailable(library, "write failed")
                        break
                    continue
                nbytes = result["nbytes"]
                times = result["times"]
                median = statistics.median(times)
                note = "" if library != "raw file" or kind == "array" else "pickled bytes only (no pickling)"
                if library == "raw file" and kind == "array" and op == "read":
                    note = "readinto a preallocated array"
                sections[op].add(Row(library, median, len(times), nbytes=nbytes, is_floor=library == "raw file",
                                     extra={"peak mem": f"{result['peak_ratio']:.2f}x"}, note=note))
    for op, section in sections.items():
        section.rows.append(_floor_memcpy(kind, size if kind == "array" else 0, repeat))
        if kind == "frame":
            section.rows.append(_floor_pickle(op, size, min(repeat, 3)))
        rk = section.resultkit_row()
        if rk is not None and rk.gbps is not None:
            peak = float(rk.extra["peak mem"].rstrip("x"))
            section.target_met = rk.gbps >= TARGETS[(kind, op)] and peak <= MAX_PEAK_RATIO
    return list(sections.values())


def run(config: Config) -> list[Section]:
    array_size = (16 << 20) if config.quick else (256 << 20)
    frame_rows = 100_000 if config.quick else 2_000_000
    return _measure(config, "array", array_size) + _measure(config, "frame", frame_rows)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "child":
    try:
        child_main(json.loads(sys.argv[2]))
    except Unavailable as exc:
        emit_child_result({"unavailable": str(exc)})
