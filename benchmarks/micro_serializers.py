"""Serializer throughput figures (not a test): ``.venv/bin/python benchmarks/micro_serializers.py``.

Times are CPU seconds (best of 3), so a busy machine skews them less than wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from resultkit.serializers import CompressedSerializer, JSONSerializer, PickleSerializer


def best(run: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    rows = [{"id": i, "name": f"user{i}", "score": i * 0.5, "ok": i % 2 == 0, "tags": ["a", "b"]} for i in range(200_000)]
    for jsonlib in ("json", "orjson"):
        s = JSONSerializer(jsonlib)
        payload = s.dumps(rows)
        print(f"JSONSerializer({jsonlib!r}) 200k dicts: dumps {best(lambda: s.dumps(rows)) * 1e3:6.0f} ms, "
              f"loads {best(lambda: s.loads(payload)) * 1e3:6.0f} ms")

    array = np.random.default_rng(0).random(32 << 20)  # 256 MB
    p = PickleSerializer()
    data = bytearray(p.dumps(array))
    print(f"PickleSerializer 256 MB array: dumps_chunks {best(lambda: p.dumps_chunks(array)) * 1e3:.2f} ms, "
          f"loads(bytearray) {best(lambda: p.loads(data)) * 1e3:.2f} ms (zero-copy both ways)")

    ints = np.random.default_rng(1).integers(0, 1000, size=4 << 20)  # 32 MB, compressible
    for lib in ("zstandard", "zlib"):
        c = CompressedSerializer(compressionlib=lib)
        payload = c.dumps(ints)
        print(f"CompressedSerializer({lib!r}) 32 MB ints: dumps {ints.nbytes / best(lambda: c.dumps_chunks(ints), 2) / 1e9:.2f} GB/s "
              f"(CPU), loads {ints.nbytes / best(lambda: c.loads(payload), 2) / 1e9:.2f} GB/s, ratio {ints.nbytes / len(payload):.1f}x")


if __name__ == "__main__":
    main()
