"""Small records: write and read latency of a small dict, in this process.

resultkit's ``ResultStore(LocalStorage(dir))`` against ``diskcache.Cache.set/get`` and
the floor: a bare open+write / open+read+unpickle of the same pickled bytes.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from _harness import Config, Row, Section, scratch_dir, time_per_call

__all__ = ["NAME", "run"]

NAME = "small"

READ_TARGET_RATIO = 2.0
SMALL_RECORD = {
    "run": "2026-11-22T10:00:00",
    "score": 0.9375,
    "params": {"alpha": 0.1, "depth": 6, "features": ["age", "income", "region"]},
    "rows": 120_000,
    "ok": True,
}


def run(config: Config) -> list[Section]:
    write = Section(
        "Small record write (a 5-key dict)",
        "Median per write of the same key, overwriting; local disk, no fsync.",
    )
    read = Section(
        "Small record read (a 5-key dict)",
        "Median per read of an existing key, page-cache hot.",
        target=f"resultkit read <= {READ_TARGET_RATIO:.0f}x the bare open+read+unpickle",
    )
    repeat = config.repeats(15, 5)
    with scratch_dir(config, "small") as folder:
        try:
            from resultkit.results import ResultStore
            from resultkit.storage import LocalStorage
        except ImportError as exc:
            write.unavailable("resultkit", f"resultkit piece missing: {exc}")
            read.unavailable("resultkit", f"resultkit piece missing: {exc}")
        else:
            store = ResultStore(LocalStorage(folder / "resultkit"))
            seconds, n = time_per_call(lambda: store.write("small/record", SMALL_RECORD), repeat)
            write.add(Row("resultkit", seconds, n, note="temp file + os.replace"))
            seconds, n = time_per_call(lambda: store.read("small/record").result, repeat)
            read.add(Row("resultkit", seconds, n, note="verifies size and checksum"))

        import diskcache

        cache = diskcache.Cache(str(folder / "diskcache"))
        seconds, n = time_per_call(lambda: cache.set("record", SMALL_RECORD), repeat)
        write.add(Row("diskcache Cache.set", seconds, n, note="SQLite row (small values inline)"))
        seconds, n = time_per_call(lambda: cache.get("record"), repeat)
        read.add(Row("diskcache Cache.get", seconds, n))
        cache.close()

        payload = pickle.dumps(SMALL_RECORD, protocol=5)
        path = folder / "bare.pkl"
        tmp = folder / "bare.pkl.tmp"

        def bare_write() -> None:
            with open(tmp, "wb") as f:
                f.write(pickle.dumps(SMALL_RECORD, protocol=5))
            os.replace(tmp, path)

        def bare_read() -> Any:
            with open(path, "rb") as f:
                return pickle.loads(f.read())

        seconds, n = time_per_call(bare_write, repeat)
        write.add(Row("floor: pickle + open+write + os.replace", seconds, n, is_floor=True))
        seconds, n = time_per_call(bare_read, repeat)
        floor = read.add(Row("floor: open+read+unpickle", seconds, n, is_floor=True))
        write.notes.append(f"pickled record size: {len(payload)} bytes")

    rk = read.resultkit_row()
    if rk is not None and rk.seconds is not None and floor.seconds:
        ratio = rk.seconds / floor.seconds
        read.target_met = ratio <= READ_TARGET_RATIO
        read.notes.append(f"resultkit read / bare read = {ratio:.2f}x")
    return [write, read]
