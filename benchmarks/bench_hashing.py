"""Hashing large inputs into cache keys: a float64 array and a mixed-type DataFrame.

resultkit's ``hash_value`` against ``joblib.hash``, dask's ``tokenize`` and the floor,
xxh3_128 over a contiguous buffer of the same size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _harness import Config, Row, Section, fmt_bytes, median_time
from bench_persist import build_value, value_nbytes

__all__ = ["NAME", "run"]

NAME = "hashing"

TARGETS = {"array": 10.0, "frame": 2.0}


def _hashers() -> list[tuple[str, Callable[[Any], Any] | str]]:
    """(library, hash function or the reason it is unavailable)."""
    found: list[tuple[str, Callable[[Any], Any] | str]] = []
    try:
        from resultkit.cache_policies import hash_value
    except ImportError:
        try:
            from resultkit.cache_policies.hashing import hash_value
        except ImportError as exc:
            found.append(("resultkit", f"resultkit piece missing: {exc}"))
        else:
            found.append(("resultkit", hash_value))
    else:
        found.append(("resultkit", hash_value))
    import joblib

    found.append(("joblib.hash", joblib.hash))
    try:
        from dask.base import tokenize
    except ImportError as exc:
        found.append(("dask tokenize", f"not installed: {exc}"))
    else:
        found.append(("dask tokenize", tokenize))
    return found


def _xxh3_floor(nbytes: int, repeat: int) -> Row:
    import numpy as np
    import xxhash

    buffer = np.ones(nbytes // 8)
    view = memoryview(buffer).cast("B")
    seconds, n = median_time(lambda: xxhash.xxh3_128_hexdigest(view), repeat)
    return Row("floor: xxh3_128 over a contiguous buffer", seconds, n, nbytes=nbytes, is_floor=True)


def run(config: Config) -> list[Section]:
    sizes = {"array": (32 << 20) if config.quick else (256 << 20), "frame": 200_000 if config.quick else 2_000_000}
    repeat = config.repeats(5, 3)
    sections = []
    for kind, size in sizes.items():
        value = build_value(kind, size)
        nbytes = value_nbytes(value)
        label = f"{fmt_bytes(nbytes)} float64 array" if kind == "array" else (
            f"{size:,}-row mixed DataFrame ({fmt_bytes(nbytes)} deep)")
        section = Section(
            f"Hash a {label} into a cache key",
            "Median time per hash of the same object; throughput = in-memory (deep) size / time.",
            target=f">= {TARGETS[kind]:.0f} GB/s",
        )
        for library, hasher in _hashers():
            if isinstance(hasher, str):
                section.unavailable(library, hasher)
                continue
            hash_fn = hasher
            try:
                warm_up, _ = median_time(lambda: hash_fn(value), 1)  # lazy imports, first touch
                # a slow peer (joblib on str columns takes ~30 s) gets one timed run, not five
                seconds, n = median_time(lambda: hash_fn(value), repeat if warm_up < 3 else 1)
            except Exception as exc:  # a peer that cannot hash this value is a finding, not a crash
                section.unavailable(library, f"{type(exc).__name__}: {exc}"[:200])
                continue
            section.add(Row(library, seconds, n, nbytes=nbytes))
        section.add(_xxh3_floor(min(nbytes, 256 << 20), repeat))
        rk = section.resultkit_row()
        if rk is not None and rk.gbps is not None:
            section.target_met = rk.gbps >= TARGETS[kind]
        sections.append(section)
    return sections
