"""capture_source: the source text at decoration, or a stable code digest when there is none."""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

from resultkit.cache_policies import TASK_SOURCE, CacheKeyContext, capture_source


def test_captures_dedented_source_text() -> None:
    class Holder:
        def method(self, x: int) -> int:
            return x * 2

    source = capture_source(Holder.method)
    assert source.startswith("def method(self, x: int) -> int:")
    assert "return x * 2" in source


def _exec_function(text: str) -> object:
    namespace: dict[str, object] = {}
    exec(compile(textwrap.dedent(text), "<generated>", "exec"), namespace)
    return namespace["f"]


def test_without_source_a_code_digest_that_follows_the_code() -> None:
    first = capture_source(_exec_function("def f(x):\n    return x + 1\n"))
    again = capture_source(_exec_function("def f(x):\n    return x + 1\n"))
    changed_constant = capture_source(_exec_function("def f(x):\n    return x + 2\n"))
    changed_name = capture_source(_exec_function("def f(x):\n    return y + 1\n"))
    nested = capture_source(_exec_function("def f(x):\n    g = lambda: 1\n    return g\n"))
    nested_changed = capture_source(_exec_function("def f(x):\n    g = lambda: 2\n    return g\n"))
    assert first.startswith("<code xxh3_128:")
    assert first == again
    assert len({first, changed_constant, changed_name}) == 3
    assert nested != nested_changed  # nested code objects are part of the digest


def test_code_digest_is_stable_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    script = tmp_path / "digest.py"
    script.write_text(
        "from resultkit.cache_policies import capture_source\n"
        "ns = {}\n"
        "exec(compile('def f(x):\\n    return {\"a\", \"b\", x} | frozenset({1, 2})\\n', '<gen>', 'exec'), ns)\n"
        "print(capture_source(ns['f']))\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.add(result.stdout.strip())
    assert len(outputs) == 1
    assert outputs.pop().startswith("<code xxh3_128:")


def test_builtins_and_callable_objects_get_a_stable_text() -> None:
    assert capture_source(len) == capture_source(len)

    class Scorer:
        def __call__(self, x: int) -> int:
            return x

    assert "def __call__" in capture_source(Scorer())
    assert "return x + 41" in capture_source(functools.partial(add_41, 1))


def add_41(x: int) -> int:
    return x + 41


def test_captured_source_survives_cloudpickle_to_a_worker() -> None:
    def work(x: int) -> int:
        return x + 41

    context = CacheKeyContext(task_name="m.work", task_source=capture_source(work), call_id="c")
    restored = pickle.loads(cloudpickle.dumps(context))
    assert restored == context
    assert "return x + 41" in restored.task_source
    assert TASK_SOURCE.compute_key(restored, {}) == TASK_SOURCE.compute_key(context, {})


def test_context_is_frozen() -> None:
    context = CacheKeyContext(task_name="m.f", task_source="", call_id="c")
    with pytest.raises(AttributeError):
        context.task_name = "other"  # type: ignore[misc]
