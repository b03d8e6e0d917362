"""The hot paths of this checkout against another revision: no refactor may slow them.

W1 warm hit (a cached ``f(x)`` called again in its process), W2 miss + persist of a small
dict, W3 cold hit (the first call in a new process, on a record left by another), and
``ResultStore.write``/``read`` of a small dict. A (this checkout) and B (``--baseline``)
run in fresh processes, interleaved A B A B ... for ``--rounds`` rounds; the table gives
medians and the ratio A/B of the medians.

    .venv/bin/python benchmarks/bench_revisions.py --baseline 4d341f8 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COLD_PER_ROUND = 5
SMALL = {"run": "2026-11-22T10:00:00", "score": 0.9375, "rows": 120_000, "ok": True,
         "params": {"alpha": 0.1, "depth": 6, "features": ["age", "income", "region"]}}


def _per_call_us(fn: Callable[[], Any], calls: int) -> float:
    """Median over 7 batches of ``calls`` calls, in microseconds per call."""
    batches = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        batches.append((time.perf_counter() - started) / calls)
    return statistics.median(batches) * 1e6


def _tasks(folder: Path) -> tuple[Any, Any]:
    from resultkit import task
    from resultkit.cache_policies import INPUTS

    @task(cache_policy=INPUTS, result_storage=folder / "tasks")
    def square(x: int) -> int:
        return x * x

    @task(cache_policy=INPUTS, result_storage=folder / "tasks")
    def make_record(i: int) -> dict[str, Any]:
        return {"i": i, "name": f"item-{i}", "score": i * 0.5, "tags": ["a", "b", "c"]}

    return square, make_record


def session(folder: Path) -> dict[str, float]:
    """In the child: W1, W2 and the store figures for the resultkit on sys.path."""
    from resultkit.results import ResultStore

    square, make_record = _tasks(folder)
    square(7)
    figures = {"W1 warm hit (us)": _per_call_us(lambda: square(7), 2000)}
    counter = iter(range(10**9))
    make_record(-1)
    figures["W2 miss + persist (us)"] = _per_call_us(lambda: make_record(next(counter)), 100)
    store = ResultStore(folder / "store")
    store.write("small", SMALL)
    figures["ResultStore.write small dict (us)"] = _per_call_us(lambda: store.write("small", SMALL), 200)
    figures["ResultStore.read small dict (us)"] = _per_call_us(lambda: store.read("small"), 500)
    return figures


def cold(folder: Path) -> dict[str, float]:
    square, _ = _tasks(folder)
    started = time.perf_counter()
    square(7)
    return {"W3 cold hit, first call in a new process (us)": (time.perf_counter() - started) * 1e6}


def _checkout(revision: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "resultkit"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _child(source: Path, mode: str, folder: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(source), RESULTKIT_HOME=str(folder))
    done = subprocess.run([sys.executable, __file__, "--child", mode, str(folder)], env=env,
                          check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _round(source: Path) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for mode in ["session"] + ["cold"] * COLD_PER_ROUND:
            for name, value in _child(source, mode, Path(workdir)).items():
                figures.setdefault(name, []).append(value)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder = args.child
        print(json.dumps((session if mode == "session" else cold)(Path(folder))))
        return
    samples: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    with tempfile.TemporaryDirectory() as baseline_dir:
        _checkout(args.baseline, Path(baseline_dir))
        for _ in range(args.rounds):  # A B A B ...
            for side, source in (("A", REPO), ("B", Path(baseline_dir))):
                for name, values in _round(source).items():
                    samples[side].setdefault(name, []).extend(values)
    print(f"A = this checkout, B = {args.baseline}; medians of {args.rounds} interleaved rounds\n")
    print("| figure | A | B | A/B |\n|---|---|---|---|")
    for name, values in samples["A"].items():
        a, b = statistics.median(values), statistics.median(samples["B"][name])
        print(f"| {name} | {a:,.1f} | {b:,.1f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
