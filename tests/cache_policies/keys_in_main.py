"""Run as a script (so its classes live in ``__main__``): prints cache keys as JSON.

Used by test_cross_process.py to compare keys across interpreters and hash seeds.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys

import numpy as np
import pandas as pd

from resultkit.cache_policies import DEFAULT, INPUTS, CacheKeyContext, hash_value


@dataclasses.dataclass
class Settings:
    name: str
    tags: set[str]
    weights: dict[str, float]


class Plain:
    def __init__(self) -> None:
        self.items = {"b": frozenset({1, 2, 3}), "a": ("x", None)}


class Mode(enum.Enum):
    FAST = "fast"


def values() -> dict[str, object]:
    return {
        "set": {f"s{i}" for i in range(200)},
        "frozenset": frozenset(range(-50, 50)),
        "dict": {f"k{i}": [i, float(i), str(i)] for i in range(200)},
        "nested": {"a": {1, 2, "three"}, "b": {"c": {None, True, 2.5}}},
        "dataclass": Settings("run", {"x", "y", "z"}, {"w1": 0.5, "w2": 1.5}),
        "plain": Plain(),
        "enum": Mode.FAST,
        "array": np.arange(1000, dtype=np.float64).reshape(10, 100)[:, ::3],
        "frame": pd.DataFrame({"s": ["a", "b", "c"], "i": [1, 2, 3], "c": pd.Categorical(["x", "y", "x"])}),
    }


def main() -> None:
    keys = {name: hash_value(value) for name, value in values().items()}
    context = CacheKeyContext(task_name="__main__.train", task_source="def train(): ...", call_id="fixed")
    keys["DEFAULT"] = DEFAULT.compute_key(context, values())
    keys["INPUTS"] = INPUTS.compute_key(context, {"s": {"a", "b"}, "d": {"x": 1, "y": 2}})
    json.dump(keys, sys.stdout)


if __name__ == "__main__":
    main()
