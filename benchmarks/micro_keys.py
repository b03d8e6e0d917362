"""Hashing throughput and key cost, in CPU time (robust on a shared, busy machine).

Run from the repository root: ``.venv/bin/python benchmarks/micro_keys.py``.
The full comparison with peers (wall time) is ``benchmarks/run.py --only hashing``.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_persist import build_value, value_nbytes

from resultkit.cache_policies import DEFAULT, INPUTS, CacheKeyContext, hash_value


def best_cpu_seconds(fn: Callable[[], Any], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    array = build_value("array", 256 << 20)
    ours = best_cpu_seconds(lambda: hash_value(array))
    floor = best_cpu_seconds(lambda: xxhash.xxh3_128_hexdigest(array.view(np.uint8)))
    print(f"256 MiB float64 array: {array.nbytes / ours / 1e9:.2f} GB/s "
          f"(xxh3_128 floor {array.nbytes / floor / 1e9:.2f} GB/s, ratio {ours / floor:.2f})")
    frame = build_value("frame", 2_000_000)
    nbytes = value_nbytes(frame)
    ours = best_cpu_seconds(lambda: hash_value(frame), repeat=5)
    print(f"2M-row mixed DataFrame ({nbytes / 2**20:.0f} MiB deep): {nbytes / ours / 1e9:.2f} GB/s "
          f"({ours * 1e3:.0f} ms)")
    context = CacheKeyContext(task_name="m.f", task_source="def f(x):\n    return x\n", call_id="c1")
    for name, policy in (("INPUTS", INPUTS), ("DEFAULT", DEFAULT)):
        seconds = min(timeit.repeat(lambda p=policy: p.compute_key(context, {"x": 1}),
                                    number=50_000, repeat=7, timer=time.process_time)) / 50_000
        print(f"{name}.compute_key for f(x=1): {seconds * 1e6:.2f} us")


if __name__ == "__main__":
    main()
