"""Keys are equal in every interpreter, whatever PYTHONHASHSEED is, even for classes in __main__."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from resultkit.cache_policies import INPUTS, CacheKeyContext, hash_value

SCRIPT = Path(__file__).with_name("keys_in_main.py")
REPO = Path(__file__).resolve().parents[2]


def _keys_from_interpreters(seeds: list[str]) -> list[dict[str, str]]:
    procs = []
    for seed in seeds:
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        procs.append(subprocess.Popen([sys.executable, str(SCRIPT)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=env, cwd=str(REPO)))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    return results


def test_three_interpreters_with_different_hash_seeds_agree() -> None:
    first, second, third = _keys_from_interpreters(["0", "1", "4242"])
    assert first == second == third
    assert set(first) >= {"set", "dict", "dataclass", "plain", "DEFAULT", "frame"}
    assert all(len(key) == 32 for key in first.values())

    # The builtin values hash the same here, in a fourth process with its own seed.
    assert first["set"] == hash_value({f"s{i}" for i in range(200)})
    assert first["dict"] == hash_value({f"k{i}": [i, float(i), str(i)] for i in range(200)})
    context = CacheKeyContext(task_name="__main__.train", task_source="def train(): ...", call_id="fixed")
    assert first["INPUTS"] == INPUTS.compute_key(context, {"d": {"y": 2, "x": 1}, "s": {"b", "a"}})

    # A class defined in __main__ hashes by module, qualname and value, not by address:
    # an equal class here, named like the script's, gives the script's key.
    @dataclasses.dataclass
    class Settings:
        name: str
        tags: set[str]
        weights: dict[str, float]

    Settings.__module__ = "__main__"
    Settings.__qualname__ = "Settings"
    assert first["dataclass"] == hash_value(Settings("run", {"z", "y", "x"}, {"w2": 1.5, "w1": 0.5}))
