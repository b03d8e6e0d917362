"""W5: persist and load a 256 MiB float64 array and a 2M-row mixed DataFrame on local storage.

Every operation runs in a new process (``python bench_persist.py child '{...}'``): a writer
loads the value from a scratch pickle (untimed), then times one write; a reader times one
load of what its writer just wrote (page-cache hot). Contenders are interleaved round by
round (A B C ... A B C ...), each round in fresh folders, and the tables report medians, so
background load that drifts within seconds hits every contender alike.

Contenders: resultkit (``ResultStore`` on ``LocalStorage``, mapping on and off; the load
verifies the checksum either way), joblib (``dump``/``load``), diskcache (``Cache.set``/
``get``), checkpointer (its decorator, the only way it stores), Prefect's ``ResultStore``;
and the anchors, raw file operations on the same bytes: a first write of a fresh file
(one ``write`` of the buffer), a hot read into an existing (touched) buffer, and a
copy-on-write ``mmap`` of the file with every page touched.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
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
    run_child,
)

__all__ = ["NAME", "build_value", "run", "value_nbytes"]

NAME = "persist"

#: Issue 9's targets: loads vs the fastest peer, persists vs the first-file-write anchor.
LOAD_SPEEDUP_TARGET = {"array": 2.5, "frame": 1.25}
PERSIST_ANCHOR_TARGET = 0.9
MAX_PEAK_RATIO = 1.05
PEERS = ("joblib", "diskcache", "checkpointer", "prefect")
FIRST_WRITE = "anchor: first write of a fresh file"
HOT_READ = "anchor: hot read into an existing buffer"
MMAP_TOUCH = "anchor: mmap + touch every page"


# -- values (built the same way everywhere) ----------------------------------------------------


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


# -- the child: one operation of one contender ---------------------------------------------------


def _raw_bytes(value: Any) -> memoryview:
    """The bytes the anchors write: the array's own buffer, or the DataFrame's pickle."""
    if hasattr(value, "memory_usage"):
        return memoryview(pickle.dumps(value, protocol=5))
    return memoryview(value).cast("B")


def _write_op(contender: str, folder: Path) -> Any:
    """A function ``write(value)`` storing into ``folder`` (imports done here, untimed)."""
    if contender.startswith("resultkit"):
        from resultkit.results import ResultStore
        from resultkit.storage import LocalStorage

        store = ResultStore(LocalStorage(folder, mmap=contender == "resultkit"))
        return lambda value: store.write("bench/value", value)
    if contender == "joblib":
        import joblib

        return lambda value: joblib.dump(value, folder / "value.joblib")
    if contender == "diskcache":
        import diskcache

        cache = diskcache.Cache(str(folder / "diskcache"))
        return lambda value: cache.set("value", value)
    if contender == "checkpointer":
        cached = _checkpointed(folder)

        def write(value: Any) -> None:
            _HOLDER.append(value)
            cached(1)

        return write
    if contender == "prefect":
        store = _prefect_store(folder)
        return lambda value: store.write(value, key="value")
    raise Unavailable(f"unknown contender {contender!r}")


def _read_op(contender: str, folder: Path) -> Any:
    """A function ``read() -> value`` loading what the writer stored in ``folder``."""
    if contender.startswith("resultkit"):
        from resultkit.results import ResultStore
        from resultkit.storage import LocalStorage

        store = ResultStore(LocalStorage(folder, mmap=contender == "resultkit"))
        return lambda: store.read("bench/value").result  # checksum verified on every read
    if contender == "joblib":
        import joblib

        return lambda: joblib.load(folder / "value.joblib")
    if contender == "diskcache":
        import diskcache

        cache = diskcache.Cache(str(folder / "diskcache"))
        return lambda: cache.get("value")
    if contender == "checkpointer":
        cached = _checkpointed(folder)
        return lambda: cached(1)
    if contender == "prefect":
        store = _prefect_store(folder)
        return lambda: store.read("value").result
    raise Unavailable(f"unknown contender {contender!r}")


# checkpointer caches a function's calls: the function hands back the value the writer put here
# (a miss in a reader finds the holder empty and fails, so a reader never times a recompute).
_HOLDER: list[Any] = []


def _produce(key: int) -> Any:
    return _HOLDER[-1]


def _checkpointed(folder: Path) -> Any:
    from checkpointer import checkpoint

    return checkpoint(directory=folder / "checkpointer", verbosity=0)(_produce)


def _prefect_store(folder: Path) -> Any:
    from prefect.filesystems import LocalFileSystem
    from prefect.results import ResultStore as PrefectStore

    # cache_result_in_memory=False: a read must load from storage, not return the written object
    return PrefectStore(result_storage=LocalFileSystem(basepath=str(folder)), cache_result_in_memory=False)


def _load_value(spec: dict[str, Any]) -> Any:
    try:
        with open(spec["value_file"], "rb") as f:
            return pickle.load(f)
    except Exception:  # another venv's pandas may not read this one's pickle: rebuild it
        return build_value(spec["kind"], spec["size"])


def _touch_pages(buffer: Any) -> None:
    import numpy as np

    np.frombuffer(buffer, dtype=np.uint8)[:: os.sysconf("SC_PAGE_SIZE")].sum()


def _warm_up(contender: str, folder: Path, kind: str) -> None:
    """A write and a load of a small value, so imports and first-use costs are not timed."""
    if contender.startswith("anchor:"):
        import numpy  # noqa: F401  # what the anchors use besides the file
        return
    warm = folder / f"warm-{os.getpid()}"
    warm.mkdir()
    _write_op(contender, warm)(build_value(kind, 1 << 16 if kind == "array" else 1000))
    _read_op(contender, warm)()
    _HOLDER.clear()


def child_main(spec: dict[str, Any]) -> None:
    """One timed operation; reports its time, the bytes it moved and its peak memory ratio."""
    folder = Path(spec["folder"])
    contender, op = spec["contender"], spec["op"]
    raw_path = folder / "raw.bin"
    _warm_up(contender, folder, spec["kind"])
    memory = PeakMemory()  # baseline: before the value (or anything of the load) exists
    if op == "write":
        value = _load_value(spec)
        nbytes = value_nbytes(value)
        if contender == FIRST_WRITE:
            data = _raw_bytes(value)
            nbytes = data.nbytes
            memory.reset()
            start = time.perf_counter()
            with open(raw_path, "xb", buffering=0) as f:
                f.write(data)
        else:
            write = _write_op(contender, folder)
            memory.reset()
            start = time.perf_counter()
            write(value)
    elif contender in (HOT_READ, MMAP_TOUCH):
        import mmap

        import numpy as np

        nbytes = raw_path.stat().st_size
        if contender == HOT_READ:
            buffer = np.ones(nbytes, dtype=np.uint8)  # existing, touched: no page faults timed
            memory.reset()
            start = time.perf_counter()
            with open(raw_path, "rb", buffering=0) as f:
                f.readinto(memoryview(buffer))
        else:
            start = time.perf_counter()
            with open(raw_path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            _touch_pages(mapped)
    else:
        nbytes = spec["nbytes"]  # the value's size, as its writer measured it
        read = _read_op(contender, folder)
        memory = PeakMemory()
        start = time.perf_counter()
        value = read()
        if value is None:
            raise Unavailable(f"{contender} found nothing to load")
    seconds = time.perf_counter() - start
    emit_child_result({"seconds": seconds, "nbytes": nbytes, "peak_ratio": memory.ratio(nbytes)})


# -- the parent: interleaved rounds --------------------------------------------------------------


@dataclass
class Contender:
    """One row pair: how it writes (``writer``) and how it loads (``reader``); None: no such row."""

    name: str
    writer: str | None
    reader: str | None
    python: str = sys.executable
    rounds: int = 0  # 0: every round


def _contenders(config: Config) -> list[list[Contender]]:
    """Groups sharing a folder per round: a writer, then the readers of what it wrote."""
    groups = [[Contender("resultkit", "resultkit", "resultkit")],
              [Contender("resultkit (mmap off)", "resultkit (mmap off)", "resultkit (mmap off)")],
              [Contender("joblib", "joblib", "joblib")],
              [Contender("diskcache", "diskcache", "diskcache")],
              [Contender("checkpointer", "checkpointer", "checkpointer")]]
    if config.prefect_python is not None:
        # Each Prefect process is slow to start: three rounds give it a median too.
        groups.append([Contender("prefect", "prefect", "prefect", python=str(config.prefect_python), rounds=3)])
    groups.append([Contender(FIRST_WRITE, FIRST_WRITE, None), Contender(HOT_READ, None, HOT_READ),
                   Contender(MMAP_TOUCH, None, MMAP_TOUCH)])
    return groups


@dataclass
class Samples:
    seconds: list[float]
    peaks: list[float]
    nbytes: int = 0
    error: str = ""


def _run_op(contender: Contender, op: str, spec: dict[str, Any], samples: Samples) -> bool:
    env = child_env(PREFECT_HOME=str(Path(spec["folder"]) / "prefect-home"))
    try:
        result = run_child([contender.python, __file__, "child", json.dumps({**spec, "op": op})],
                           env=env, timeout=600)
    except Unavailable as exc:
        samples.error = str(exc)
        return False
    samples.seconds.append(result["seconds"])
    samples.peaks.append(result["peak_ratio"])
    samples.nbytes = result["nbytes"]
    return True


def _measure(config: Config, kind: str, size: int) -> list[Section]:
    label = f"{fmt_bytes(size)} float64 array" if kind == "array" else f"{size:,}-row mixed DataFrame"
    rounds = config.repeats(5, 2)
    groups = _contenders(config)
    writes: dict[str, Samples] = {}
    reads: dict[str, Samples] = {}
    value_dir = Path(config.scratch) / f"w5-{kind}-value"
    value_dir.mkdir(parents=True, exist_ok=True)
    value_file = value_dir / "value.pkl"
    with open(value_file, "wb") as f:
        pickle.dump(build_value(kind, size), f, protocol=5)
    for round_index in range(rounds):
        # Each round starts with the next contender, so none always follows the same neighbour.
        shift = round_index % len(groups)
        for group in groups[shift:] + groups[:shift]:
            folder = Path(config.scratch) / f"w5-{kind}-{round_index}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            spec: dict[str, Any] = {"kind": kind, "size": size, "folder": str(folder),
                                    "value_file": str(value_file)}
            written, nbytes = True, 0
            for contender in group:
                if contender.rounds and round_index >= contender.rounds:
                    continue
                if contender.writer is not None:
                    samples = writes.setdefault(contender.name, Samples([], []))
                    # Every writer starts with no dirty pages of an earlier writer still to flush
                    # (the kernel would otherwise throttle whoever comes next).
                    os.sync()
                    written = _run_op(contender, "write", {**spec, "contender": contender.writer}, samples)
                    nbytes = samples.nbytes
                if contender.reader is not None:
                    samples = reads.setdefault(contender.name, Samples([], []))
                    if not written:
                        samples.error = "its write failed"
                        continue
                    _run_op(contender, "read", {**spec, "contender": contender.reader, "nbytes": nbytes}, samples)
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(value_dir, ignore_errors=True)
    return [
        _section(kind, "write", f"W5: persist a {label} (local storage, new process per write)", writes),
        _section(kind, "read", f"W5: load a {label} (local storage, new process per load)", reads),
    ]


def _per_byte(row: Row) -> float | None:
    return None if row.seconds is None or not row.nbytes else row.seconds / row.nbytes


def _section(kind: str, op: str, title: str, results: dict[str, Samples]) -> Section:
    anchor_name = FIRST_WRITE if op == "write" else MMAP_TOUCH
    if op == "write":
        target = (f"resultkit >= {PERSIST_ANCHOR_TARGET}x the speed of the first-file-write anchor, "
                  f"peak memory <= {MAX_PEAK_RATIO}x")
    else:
        target = (f"resultkit >= {LOAD_SPEEDUP_TARGET[kind]}x faster than the fastest peer, checksum "
                  f"verified, peak memory <= {MAX_PEAK_RATIO}x")
    section = Section(
        title=title,
        description=(
            "Every operation in a new process; contenders interleaved round by round (medians of n). "
            "peak mem = (peak RSS of the " + ("writer" if op == "write" else "reader") + " process - "
            "its RSS before the value existed) / value size: 1.00x is the value and nothing more. "
            "'peer / this' = fastest peer's time / this row's; 'anchor / this' = the "
            f"'{anchor_name}' time / this row's (per byte). "
            + ("Loads are page-cache hot and resultkit verifies the payload checksum on each. "
               if op == "read" else "Each write makes a new record in an empty folder. ")
        ),
        target=target,
        extra_columns=("peak mem", "peer / this", "anchor / this"),
    )
    for name, samples in results.items():
        if not samples.seconds:
            section.unavailable(name, samples.error or "no run")
            continue
        is_anchor = name.startswith("anchor:")
        note = "the DataFrame's pickled bytes" if is_anchor and kind == "frame" else ""
        if samples.error:
            note = (note + "; " if note else "") + f"some runs failed: {samples.error}"
        section.add(Row(name, statistics.median(samples.seconds), len(samples.seconds), nbytes=samples.nbytes,
                        is_floor=is_anchor, note=note,
                        extra={"peak mem": f"{statistics.median(samples.peaks):.2f}x"}))
    peers = [row for row in section.rows if row.library in PEERS and _per_byte(row) is not None]
    fastest = min(peers, key=lambda row: _per_byte(row) or 0.0) if peers else None
    anchor = next((row for row in section.rows if row.library == anchor_name and row.seconds is not None), None)
    for row in section.rows:
        mine = _per_byte(row)
        if mine is None:
            continue
        if fastest is not None:
            row.extra["peer / this"] = f"{(_per_byte(fastest) or 0.0) / mine:.2f}x"
        if anchor is not None:
            row.extra["anchor / this"] = f"{(_per_byte(anchor) or 0.0) / mine:.2f}x"
    rk = section.resultkit_row()
    if rk is not None and (mine := _per_byte(rk)) is not None:
        peak = float(rk.extra["peak mem"].rstrip("x"))
        if op == "write" and anchor is not None:
            section.target_met = (_per_byte(anchor) or 0.0) / mine >= PERSIST_ANCHOR_TARGET and peak <= MAX_PEAK_RATIO
        elif op == "read" and fastest is not None:
            speedup = (_per_byte(fastest) or 0.0) / mine
            section.target_met = speedup >= LOAD_SPEEDUP_TARGET[kind] and peak <= MAX_PEAK_RATIO
        if fastest is not None:
            section.notes.append(f"fastest peer: {fastest.library}")
    return section


def run(config: Config) -> list[Section]:
    array_size = (16 << 20) if config.quick else (256 << 20)
    frame_rows = 100_000 if config.quick else 2_000_000
    return _measure(config, "array", array_size) + _measure(config, "frame", frame_rows)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "child":
    try:
        child_main(json.loads(sys.argv[2]))
    except Unavailable as exc:
        emit_child_result({"unavailable": str(exc)})
