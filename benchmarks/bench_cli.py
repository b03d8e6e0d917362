"""Time `resultkit ls --json` and `resultkit gc --dry-run` on 100,000 local records.

Run: .venv/bin/python benchmarks/bench_cli.py [--records N] [--repeat 3]

Records are real ones written by ResultStore (one live, one expired and one without
expiry, so gc has work to find), then copied as files into 100 task folders, which
is how a store of many small results looks on disk. Each command runs as a
subprocess (interpreter start-up included, as a user sees it); the table shows the
median of the repeats. Target (issue 5): under 10 s each for 100,000 records.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from resultkit.results.store import ResultStore
from resultkit.storage.local import LocalStorage

FOLDERS = 100


def make_records(root: Path, count: int) -> None:
    """``count`` small records under ``root``, a third each live, expired and never-expiring."""
    store = ResultStore(LocalStorage(root / ".templates-src"), serializer="pickle")
    expirations = (timedelta(days=30), timedelta(seconds=-60), None)
    templates = []
    for n, expiration in enumerate(expirations):
        store.write(f"t{n}", {"rows": list(range(20)), "model": "x" * 100}, expiration=expiration)
        templates.append((root / ".templates-src" / f"t{n}").read_bytes())
    shutil.rmtree(root / ".templates-src")
    for folder in range(FOLDERS):
        (root / f"task-{folder:03d}").mkdir(parents=True)
    for i in range(count):
        path = root / f"task-{i % FOLDERS:03d}" / f"{i:032x}"
        with open(path, "wb") as f:
            f.write(templates[i % len(templates)])


def time_command(args: list[str], repeat: int) -> tuple[float, float, int]:
    """Median wall and CPU (user+sys) seconds of ``python -m resultkit ARGS``, and its stdout size.

    CPU time is shown because on a shared 2-core machine wall time mostly measures neighbours.
    """
    walls, cpus = [], []
    out_size = 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "resultkit", *args], capture_output=True,
                              check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out_size = len(done.stdout)
    return statistics.median(walls), statistics.median(cpus), out_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rk-bench-cli-") as tmp:
        root = Path(tmp) / "store"
        env_home = Path(tmp) / "home"
        os.environ["RESULTKIT_HOME"] = str(env_home)
        start = time.perf_counter()
        make_records(root, options.records)
        setup = time.perf_counter() - start
        print(f"wrote {options.records:,} records in {setup:.1f} s under {root}")
        rows = []
        for label, args in (("ls --json", ["ls", str(root), "--json"]),
                            ("gc --dry-run", ["gc", str(root), "--dry-run", "--json"]),
                            ("stats --json", ["stats", str(root), "--json"])):
            wall, cpu, out_size = time_command(args, options.repeat)
            rows.append((label, wall, cpu, options.records / wall, out_size))
        print(f"\n| command ({options.records:,} records) | wall s (median of {options.repeat}) "
              "| CPU s | records/s | stdout bytes |")
        print("|---|---:|---:|---:|---:|")
        for label, wall, cpu, rate, out_size in rows:
            print(f"| resultkit {label} | {wall:.2f} | {cpu:.2f} | {rate:,.0f} | {out_size:,} |")


if __name__ == "__main__":
    main()
