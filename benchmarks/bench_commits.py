"""Transactions: the cost of group commits, single-record misses and hits, and the async herd.

This checkout (A) against another revision of resultkit (B, default: the last commit
before journaled group commits), each measured in a fresh process, interleaved
A B A B ... for ``--rounds`` rounds; the table gives medians and the ratio A/B of the
medians, with the write floor (one bare file write of the same size) beside them.

    .venv/bin/python benchmarks/bench_commits.py                   # ~1 min
    .venv/bin/python benchmarks/bench_commits.py --baseline HEAD~5 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The last commit before group commits were journaled (issue: transactions).
DEFAULT_BASELINE = "8c149ff"
GROUP_SIZES = (2, 5, 20)
HERD = 20
BODY_SECONDS = 0.2


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def measure(workdir: Path, with_herd: bool) -> dict[str, Any]:
    """In the child: every figure once, for the resultkit on sys.path."""
    from resultkit import task, transaction
    from resultkit.cache_policies import INPUTS
    from resultkit.results import ResultStore

    store = ResultStore(workdir / "records")
    value = b"x" * 1024
    figures: dict[str, Any] = {}
    for size in GROUP_SIZES:
        samples = []
        for round_ in range(max(20, 400 // size)):
            started = time.perf_counter()
            with transaction(store=store):
                for index in range(size):
                    with transaction(key=f"group{size}/{round_}/{index}", store=store) as txn:
                        txn.stage(value)
            samples.append(time.perf_counter() - started)
        figures[f"commit of {size} records (us)"] = _median_us(samples)

    floor = []
    for round_ in range(200):
        path = workdir / f"floor-{round_}"
        started = time.perf_counter()
        with open(path, "wb") as f:
            f.write(value)
        os.replace(path, workdir / f"floor-final-{round_}")
        floor.append(time.perf_counter() - started)
    figures["anchor: one bare file write + rename (us)"] = _median_us(floor)

    @task(cache_policy=INPUTS, result_storage=workdir / "tasks", cache_result_in_memory=False)
    def square(x: int) -> int:
        return x * x

    misses, hits = [], []
    for x in range(300):
        started = time.perf_counter()
        square(x)
        misses.append(time.perf_counter() - started)
    for x in range(300):
        started = time.perf_counter()
        square(x)
        hits.append(time.perf_counter() - started)
    figures["single-record miss + persist (us)"] = _median_us(misses)
    figures["single-record hit from storage (us)"] = _median_us(hits)
    if with_herd:
        figures[f"async herd of {HERD}: wall / body time"] = herd(workdir)
    return figures


def herd(workdir: Path) -> Any:
    from resultkit import task
    from resultkit.cache_policies import INPUTS

    @task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"), result_storage=workdir / "herd")
    async def slow(x: int) -> int:
        await asyncio.sleep(BODY_SECONDS)
        return x

    async def main() -> None:
        await asyncio.gather(*(slow(1) for _ in range(HERD)))

    started = time.perf_counter()
    try:
        asyncio.run(main())
    except Exception as exc:  # the old code deadlocked into LockTimeout
        return f"{type(exc).__name__} after {time.perf_counter() - started:.0f} s"
    return (time.perf_counter() - started) / BODY_SECONDS


def _checkout(revision: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "resultkit"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _run_child(source: Path, with_herd: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        # A herd that deadlocks (the old code) ends in LockTimeout: 3 s per waiter, in turn.
        env = dict(os.environ, PYTHONPATH=str(source), RESULTKIT_HOME=workdir,
                   RESULTKIT_LOCK_TIMEOUT="3")
        argv = [sys.executable, __file__, "--child", workdir] + (["--herd"] if with_herd else [])
        done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(numbers) if len(numbers) == len(values) else values[0]


def _cell(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--herd", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child), args.herd)))
        return
    with tempfile.TemporaryDirectory() as baseline_dir:
        _checkout(args.baseline, Path(baseline_dir))
        runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        for round_ in range(args.rounds):  # A B A B ...; the herd (slow when it deadlocks) once
            runs["A"].append(_run_child(REPO, with_herd=round_ == 0))
            runs["B"].append(_run_child(Path(baseline_dir), with_herd=round_ == 0))
    print(f"A = this checkout, B = {args.baseline}; medians of {args.rounds} interleaved runs\n")
    print("| figure | A | B | A/B |\n|---|---|---|---|")
    for name in runs["A"][0]:
        a = _median([run[name] for run in runs["A"] if name in run])
        b = _median([run[name] for run in runs["B"] if name in run])
        ratio = f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) else "-"
        print(f"| {name} | {_cell(a)} | {_cell(b)} | {ratio} |")


if __name__ == "__main__":
    main()
