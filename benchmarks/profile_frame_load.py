"""Where a large DataFrame's load goes, per column kind and per stage, against checkpointer and joblib.

    .venv/bin/python benchmarks/profile_frame_load.py [--rows 2000000] [--runs 5] [--cases frame,str-code]

Not a test and not part of ``make bench``: a profile to find what limits the load. Each
case is a DataFrame of one column kind (or the peer harness's whole mixed frame), written
once by every library; then every load runs in a fresh child process, libraries
interleaved (A B C A B C ...), each child warmed up on a small frame of the same case
first (as ``bench_persist.py``'s children are). Two tables are printed:

1. load time per case and library (medians) and resultkit's speed-up over the best peer;
2. where resultkit's and plain pickle's (checkpointer's) load time goes, per stage:
   reading the record, checksum, and inside unpickling: string columns rebuilt from their
   out-of-band encoding, datetime arrays, numpy buffers, pandas' own rebuild of arrays,
   blocks and index, and the rest (the pickle machine itself, which for plain pickle
   includes creating every string).

Stages are timed by wrapping the named functions in the child (a few dozen calls per
load), so the staged children run apart from the ones whose totals table 1 reports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Unavailable, child_env, emit_child_result, run_child

LIBRARIES = ("resultkit", "checkpointer", "joblib")
SLOW_PEER_SECONDS = 3.0  # a library slower than this on a case gets one timed child, not --runs
STAGES = ("read record", "checksum", "str columns", "datetime", "numpy buffers", "pandas rebuild",
          "pickle machine", "total")


# -- the values -----------------------------------------------------------------------------


def build_case(case: str, rows: int) -> Any:
    """A DataFrame of ``rows`` rows holding one column kind, or the harness's whole ``frame``."""
    import numpy as np
    import pandas as pd

    if case == "frame":
        from bench_persist import build_value

        return build_value("frame", rows)
    rng = np.random.default_rng(0)
    user = [f"user-{i % 100_003}" for i in range(rows)]
    code = [f"{i * 2654435761 % 2**32:08x}" for i in range(rows)]
    columns: dict[str, Callable[[], Any]] = {
        "int64": lambda: np.arange(rows, dtype=np.int64),
        "float64": lambda: rng.standard_normal(rows),
        "datetime": lambda: pd.date_range("2020-01-01", periods=rows, freq="s"),
        "bool": lambda: rng.random(rows) < 0.5,
        "category": lambda: pd.Categorical.from_codes(rng.integers(0, 8, rows), [f"kind-{i}" for i in range(8)]),
        "str-user": lambda: pd.Series(user, dtype="str"),  # 100,003 distinct values
        "str-code": lambda: pd.Series(code, dtype="str"),  # every value distinct
        "str-user-na": lambda: pd.Series([None if i % 10 == 0 else s for i, s in enumerate(user)], dtype="str"),
        "object-code": lambda: pd.Series(code, dtype=object),
        "unicode": lambda: pd.Series([f"żółw-{i % 5003}-名前" for i in range(rows)], dtype="str"),
    }
    if case not in columns:
        raise SystemExit(f"unknown case {case!r}; known: frame, {', '.join(columns)}")
    return pd.DataFrame({case: columns[case]()})


CASES = ("frame", "int64", "float64", "datetime", "bool", "category", "str-user", "str-code", "str-user-na",
         "object-code", "unicode")


# -- one library's write and read -----------------------------------------------------------


def _paths(folder: Path, library: str) -> Path:
    return folder / {"resultkit": "rk", "checkpointer": "ck.pkl", "joblib": "jl.pkl"}[library]


def write(library: str, folder: Path, value: Any) -> None:
    path = _paths(folder, library)
    if library == "resultkit":
        from resultkit.results import ResultStore
        from resultkit.storage import LocalStorage

        ResultStore(LocalStorage(path)).write("bench/value", value)
    elif library == "checkpointer":
        from checkpointer.storages.pickle_storage import ExtendedPickler

        with open(path, "wb") as f:  # what checkpointer's PickleStorage.store does
            ExtendedPickler(f, -1).dump(value)
    else:
        import joblib

        joblib.dump(value, path)


def reader(library: str, folder: Path) -> Callable[[], Any]:
    path = _paths(folder, library)
    if library == "resultkit":
        from resultkit.results import ResultStore
        from resultkit.storage import LocalStorage

        store = ResultStore(LocalStorage(path))
        return lambda: store.read("bench/value").result
    if library == "checkpointer":
        import pickle

        def load() -> Any:
            with open(path, "rb") as f:  # what checkpointer's PickleStorage.load does
                return pickle.load(f)

        return load
    import joblib

    return lambda: joblib.load(path)


# -- stage timing (child side) ----------------------------------------------------------------


class StageClock:
    """Wraps named functions so each call adds its wall time to a stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        seconds = self.seconds

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds.clear()


def instrument(library: str) -> StageClock:
    """Wrap what a load of ``library`` calls, so :class:`StageClock` can split it into stages."""
    import numpy
    import pandas._libs.arrays as pd_arrays
    import pandas._libs.internals as pd_internals
    import pandas.core.generic as pd_generic
    import pandas.core.indexes.base as pd_index
    import pandas.core.internals.managers as pd_managers

    clock = StageClock()
    if library == "resultkit":
        import resultkit.results.store as store_module
        import resultkit.serializers._pickle_reducers as reducers
        from resultkit.serializers.pickle import PickleSerializer

        clock.wrap(store_module, "verify_checksum", "checksum")
        clock.wrap(PickleSerializer, "loads", "unpickle")
        for name in dir(reducers):  # pickle looks rebuild functions up by name at load time
            if name.startswith("rebuild_"):
                clock.wrap(reducers, name, "datetime" if "datetime" in name else "str columns")
    else:
        import pickle

        clock.wrap(pickle, "loads", "unpickle")
    clock.wrap(numpy._core.numeric, "_frombuffer", "numpy buffers")
    clock.wrap(pd_internals, "_unpickle_block", "pandas rebuild")
    clock.wrap(pd_arrays, "__pyx_unpickle_NDArrayBacked", "pandas rebuild")
    clock.wrap(pd_managers.BlockManager, "__setstate__", "pandas rebuild")
    clock.wrap(pd_generic.NDFrame, "__setstate__", "pandas rebuild")
    clock.wrap(pd_index, "_new_Index", "pandas rebuild")
    return clock


def child_main(spec: dict[str, Any]) -> None:
    folder = Path(spec["folder"])
    library, case = spec["library"], spec["case"]
    if spec["op"] == "write":
        value = build_case(case, spec["rows"])
        small = build_case(case, 1000)
        times = {}
        for name in LIBRARIES:
            write(name, folder / "warm", small)  # first-use imports are not the persist's
        for name in LIBRARIES:
            start = time.process_time()
            write(name, folder, value)
            times[name] = time.process_time() - start
        emit_child_result({"write": times})
        return
    warm = reader(library, folder / "warm")
    warm()  # lazy imports and first-use costs are not the load's
    clock = instrument(library) if spec["staged"] else None
    load = reader(library, folder)
    if library == "checkpointer" and clock is not None:
        import pickle

        path = _paths(folder, library)

        def load() -> Any:  # read, then unpickle: the two stages of pickle.load(file)
            with open(path, "rb") as f:
                data = f.read()
            return pickle.loads(data)

    results = []
    for _ in range(spec["loads"]):
        if clock is not None:
            clock.reset()
        start, cpu_start = time.perf_counter(), time.process_time()
        value = load()
        total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        del value
        stages = {"total": total, "cpu": cpu}
        if clock is not None:
            seconds = dict(clock.seconds)
            unpickle = seconds.pop("unpickle", 0.0)
            checksum = seconds.pop("checksum", 0.0)
            inner = sum(seconds.values())
            stages.update(seconds, checksum=checksum, **{"read record": total - unpickle - checksum,
                                                         "pickle machine": unpickle - inner})
        results.append(stages)
        if total > SLOW_PEER_SECONDS:
            break
    emit_child_result({"loads": results})


# -- the parent side ----------------------------------------------------------------------------


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    return run_child([sys.executable, __file__, "child", json.dumps(spec)], env=child_env(), timeout=900)


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def profile(case: str, rows: int, runs: int, loads: int, scratch: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = scratch / case
    (folder / "warm").mkdir(parents=True, exist_ok=True)
    written = _child({"op": "write", "case": case, "rows": rows, "folder": str(folder), "library": ""})
    totals: dict[str, list[float]] = {library: [] for library in LIBRARIES}
    cpus: dict[str, list[float]] = {library: [] for library in LIBRARIES}
    staged: dict[str, list[dict[str, float]]] = {"resultkit": [], "checkpointer": []}
    slow: set[str] = set()
    for run in range(runs):
        for library in LIBRARIES:
            if library in slow and run:
                continue
            spec = {"op": "read", "case": case, "library": library, "folder": str(folder), "loads": loads,
                    "staged": False}
            try:
                samples = _child(spec)["loads"]
            except Unavailable as exc:
                print(f"  {case}/{library}: {exc}", file=sys.stderr)
                slow.add(library)
                continue
            times = [stage["total"] for stage in samples]
            totals[library].extend(times)
            cpus[library].extend(stage["cpu"] for stage in samples)
            if max(times) > SLOW_PEER_SECONDS:
                slow.add(library)
            if library in staged:
                staged[library].extend(_child({**spec, "staged": True})["loads"])
    medians = {library: statistics.median(times) if times else None for library, times in totals.items()}
    cpu_medians = {library: statistics.median(times) if times else None for library, times in cpus.items()}
    stage_medians = {library: {stage: statistics.median(s.get(stage, 0.0) for s in samples) for stage in STAGES}
                     for library, samples in staged.items() if samples}
    return {"load": medians, "cpu": cpu_medians, "write": written["write"]}, stage_medians


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5, help="fresh children per library and case")
    parser.add_argument("--loads", type=int, default=1, help="timed loads in each child")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    cases = args.cases.split(",")
    import numpy
    import pandas

    try:
        import pyarrow

        arrow = pyarrow.__version__
    except ImportError:
        arrow = "not installed (dtype='str' is python-backed: an object array of str)"
    print(f"pandas {pandas.__version__}, numpy {numpy.__version__}, pyarrow {arrow}; {args.rows:,} rows, "
          f"{args.runs} children x {args.loads} loads per library and case, interleaved; medians")
    results = {}
    with tempfile.TemporaryDirectory(prefix="rk-frame-profile-") as scratch:
        for case in cases:
            results[case] = profile(case, args.rows, args.runs, args.loads, Path(scratch))
            print(f"  {case} done", file=sys.stderr)

    print("\n## Load in a fresh process: wall (CPU) medians; persist CPU seconds of one write\n")
    print("| case | " + " | ".join(LIBRARIES) + " | best peer / resultkit, wall (CPU) | persist: "
          + " / ".join(LIBRARIES) + " |")
    print("|---|" + "---|" * (len(LIBRARIES) + 2))
    for case, (figures, _) in results.items():
        load, cpu, written = figures["load"], figures["cpu"], figures["write"]
        ratios = []
        for figure in (load, cpu):
            peers = [figure[p] for p in LIBRARIES[1:] if figure[p] is not None]
            ratios.append(f"{min(peers) / figure['resultkit']:.2f}x" if peers and figure["resultkit"] else "-")
        cells = [f"{_fmt(load[lib])} ({_fmt(cpu[lib])})" for lib in LIBRARIES]
        persist = " / ".join(_fmt(written[lib]) for lib in LIBRARIES)
        print(f"| {case} | " + " | ".join(cells) + f" | {ratios[0]} ({ratios[1]}) | {persist} |")

    print("\n## Where the load goes (staged children; 'read record' is all outside deserializing)\n")
    print("| case | library | " + " | ".join(STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    for case, (_, stages) in results.items():
        for library, figures in stages.items():
            name = library if library == "resultkit" else "pickle.loads (checkpointer)"
            print(f"| {case} | {name} | " + " | ".join(_fmt(figures[s]) for s in STAGES) + " |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child_main(json.loads(sys.argv[2]))
    else:
        main()
