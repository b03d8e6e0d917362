"""Task-level caching: warm hit, miss + persist, and cold hit in a new process.

Each library runs in its own child process (``python bench_hits.py child '{...}'``):
a "session" child measures warm hits and misses in one process; "cold" children each
time only their first call, a hit on the record the session child left behind.
"""

from __future__ import annotations

import json
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _harness import (
    Config,
    Row,
    Section,
    Unavailable,
    child_env,
    emit_child_result,
    run_child,
    scratch_dir,
    time_per_call,
)
from _peers import TASK_LIBRARIES, peer_env, wrap

__all__ = ["NAME", "run"]

NAME = "hits"

WARM_TARGET = 10e-6
MISS_TARGET = 100e-6
COLD_TARGET = 20e-6

_BODY_LOG = Path("body-runs.log")  # relative to the bench folder; set in the child


def square(x: int) -> int:
    """The cached function for hits: its body logs each run, so a hit is provable."""
    with open(_BODY_LOG, "a") as f:
        f.write("ran\n")
    return x * x


def make_record(i: int) -> dict[str, Any]:
    """The cached function for misses: a small dict, new for every ``i``."""
    return {"i": i, "name": f"item-{i}", "score": i * 0.5, "tags": ["a", "b", "c"]}


def _body_runs() -> int:
    return len(_BODY_LOG.read_text().splitlines()) if _BODY_LOG.exists() else 0


def child_main(spec: dict[str, Any]) -> None:
    global _BODY_LOG
    folder = Path(spec["folder"])
    _BODY_LOG = folder / "body-runs.log"
    library = spec["library"]
    if library == "floor":
        path = folder / "floor.pkl"
        start = time.perf_counter()
        with open(path, "rb") as f:
            pickle.loads(f.read())
        emit_child_result({"first_call": time.perf_counter() - start})
        return
    cached_square = wrap(library, square, folder / "store")
    if spec["mode"] == "cold":
        before = _body_runs()
        start = time.perf_counter()
        cached_square(7)
        elapsed = time.perf_counter() - start
        emit_child_result({"first_call": elapsed, "hit": _body_runs() == before})
        return
    cached_record = wrap(library, make_record, folder / "store")
    cached_square(7)  # the miss that leaves the record the warm and cold hits read
    before = _body_runs()
    warm, n_warm = time_per_call(lambda: cached_square(7), spec["repeat"])
    warm_hits = _body_runs() == before
    counter = iter(range(10**9))
    cached_record(-1)  # first call pays lazy imports and directory creation
    miss, n_miss = time_per_call(lambda: cached_record(next(counter)), spec["repeat"])
    emit_child_result({"warm": warm, "n_warm": n_warm, "warm_hits": warm_hits, "miss": miss, "n_miss": n_miss})


def _python_for(library: str, config: Config) -> str:
    if library == "prefect":
        python, reason = (config.prefect_python, config.prefect_reason)
        if python is None:
            raise Unavailable(reason)
        return str(python)
    return sys.executable


def run(config: Config) -> list[Section]:
    warm = Section(
        "Warm hit: `f(x: int)` called again in the same process",
        "Median per call; each library caches to local disk with its default settings.",
        target=f"<= {WARM_TARGET * 1e6:.0f} us",
    )
    miss = Section(
        "Miss + persist of a small dict",
        "A new argument every call: compute the key, run the body, store the record.",
        target=f"<= {MISS_TARGET * 1e6:.0f} us",
    )
    cold = Section(
        "Cold hit: the first call in a new process",
        "Timed inside the new process around the first call only (imports and decoration "
        "excluded); the record was written by an earlier process.",
        target=f"<= {COLD_TARGET * 1e6:.0f} us",
    )
    repeat = config.repeats(15, 5)
    cold_repeat = config.repeats(7, 3)
    for library in TASK_LIBRARIES:
        try:
            python = _python_for(library, config)
        except Unavailable as exc:
            for section in (warm, miss, cold):
                section.unavailable(library, str(exc))
            continue
        with scratch_dir(config, "hits") as folder:
            env = child_env(**peer_env(folder))
            n = 5 if library == "prefect" else repeat
            spec = {"library": library, "mode": "session", "folder": str(folder), "repeat": n}
            try:
                result = run_child([python, __file__, "child", json.dumps(spec)], env=env, timeout=600)
            except Unavailable as exc:
                for section in (warm, miss, cold):
                    section.unavailable(library, str(exc))
                continue
            warm.add(Row(library, result["warm"], result["n_warm"],
                         note="" if result["warm_hits"] else "body ran again: not a hit"))
            miss.add(Row(library, result["miss"], result["n_miss"]))
            firsts, hits = [], True
            runs = 2 if library == "prefect" and not config.quick else (1 if library == "prefect" else cold_repeat)
            spec["mode"] = "cold"
            try:
                for _ in range(runs):
                    result = run_child([python, __file__, "child", json.dumps(spec)], env=env, timeout=600)
                    firsts.append(result["first_call"])
                    hits = hits and result["hit"]
            except Unavailable as exc:
                cold.unavailable(library, str(exc))
                continue
            note = "" if hits else "body ran again: not a hit"
            if library == "prefect":
                note = (note + "; " if note else "") + "includes starting its ephemeral API server"
            cold.add(Row(library, statistics.median(firsts), len(firsts), note=note))
    _floors(config, warm, cold, repeat, cold_repeat)
    for section, target in ((warm, WARM_TARGET), (miss, MISS_TARGET), (cold, COLD_TARGET)):
        rk = section.resultkit_row()
        section.target_met = None if rk is None or rk.seconds is None else rk.seconds <= target
    return [warm, miss, cold]


def _floors(config: Config, warm: Section, cold: Section, repeat: int, cold_repeat: int) -> None:
    """Bare open+read+unpickle of a small pickle file, in this process and in a new one."""
    import os

    with scratch_dir(config, "hits-floor") as folder:
        path = folder / "floor.pkl"
        path.write_bytes(pickle.dumps(49, protocol=5))

        def bare_read() -> Any:
            with open(path, "rb") as f:
                return pickle.loads(f.read())

        seconds, n = time_per_call(bare_read, repeat)
        warm.add(Row("floor: open+read+unpickle", seconds, n, is_floor=True))
        seconds, n = time_per_call(lambda: os.stat(path), repeat)
        warm.add(Row("floor: os.stat", seconds, n, is_floor=True))
        spec = {"library": "floor", "folder": str(folder)}
        firsts = [run_child([sys.executable, __file__, "child", json.dumps(spec)])["first_call"]
                  for _ in range(cold_repeat)]
        cold.add(Row("floor: open+read+unpickle", statistics.median(firsts), len(firsts), is_floor=True))


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "child":
    try:
        child_main(json.loads(sys.argv[2]))
    except Unavailable as exc:
        emit_child_result({"unavailable": str(exc)})
