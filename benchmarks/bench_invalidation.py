"""Invalidation keys: what CODE and Files cost, first and cached, against TASK_SOURCE and checkpointer.

    .venv/bin/python benchmarks/run.py --only invalidation
    .venv/bin/python benchmarks/bench_invalidation.py            # the same tables, standalone

A generated project (a task over ~40 helpers in three modules, a class, closures and
constants, using numpy) is keyed in fresh child processes, one library per child and
the libraries interleaved round by round, so every "first" figure is a real first
computation in a process (imports excluded) and no library runs on a warmer machine
than another. Each child also reports the per-call key of ``train(1)`` once the
function's hash is known ("cached"). ``Files`` hashes a 1 GiB file (64 MiB with
``--quick``) in the same interleaved way, next to the floors: xxh3 over the mmap'd file
(no copy; resultkit reads in chunks instead, since a file truncated under an mmap kills
the process) and one ``os.stat``. The file is in the page cache.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Config,
    Row,
    Section,
    Unavailable,
    child_env,
    emit_child_result,
    render_sections,
    run_child,
    scratch_dir,
    time_per_call,
)

__all__ = ["NAME", "run"]

NAME = "invalidation"

CODE_LIBRARIES = {
    "code": "resultkit",
    "task_source": "resultkit TASK_SOURCE",
    "checkpointer": "checkpointer",
}
FILE_LIBRARIES = {
    "files": "resultkit",
    "floor_read": "floor: xxh3_128 over the mmap'd file",
    "floor_stat": "floor: one os.stat",
}


# -- the generated project --------------------------------------------------------------


def write_project(folder: Path, helpers_per_module: int = 13) -> None:
    """A task calling helpers spread over three modules, depth ~6, plus a class and closures."""
    folder.mkdir(parents=True, exist_ok=True)
    for module, next_module in (("wl_features", "wl_models"), ("wl_models", "wl_utils"), ("wl_utils", None)):
        lines = ["import numpy as np", ""]
        if next_module:
            lines.insert(0, f"import {next_module}")
        lines += [f"SCALE_{module.upper()} = 1.5", ""]
        for i in range(helpers_per_module):
            callee = f"h{i + 1}(x)" if i + 1 < helpers_per_module else (
                f"{next_module}.h0(x)" if next_module else "float(np.sum(x))")
            lines += [
                f"def h{i}(x):",
                f'    """Helper {i} of {module}."""',
                f"    # step {i}: scale, then hand on",
                f"    y = x * SCALE_{module.upper()} if {i} % 2 else x",
                f"    return {callee} + 0 * len(str(y))",
                "",
            ]
        (folder / f"{module}.py").write_text("\n".join(lines) + "\n")
    (folder / "wl_pipeline.py").write_text('''
import numpy as np

import wl_features
from wl_models import h3 as shortcut

THRESHOLD = 0.5


class Scaler:
    def __init__(self, k):
        self.k = k

    def fit(self, x):
        return self.transform(x) * THRESHOLD

    def transform(self, x):
        return np.asarray(x) * self.k


def make_step(k):
    def step(x):
        return x * k
    return step


double = make_step(2)


def train(x):
    """The task: features, a model, a closure."""
    features = wl_features.h0(x)
    model = Scaler(2).fit([features])
    return double(float(model.sum())) + shortcut(x)
'''.lstrip())


# -- children ---------------------------------------------------------------------------------


def _child_code(library: str, project: str, repeat: int) -> dict[str, Any]:
    os.chdir(project)  # checkpointer counts files under the working directory as user code
    sys.path.insert(0, project)
    import wl_pipeline  # imports are not timed

    from resultkit.cache_policies import CODE, INPUTS, TASK_SOURCE, CacheKeyContext
    from resultkit.cache_policies.code import code_capture
    from resultkit.cache_policies.context import capture_source

    fn = wl_pipeline.train
    if library == "checkpointer":
        from checkpointer import CachedFunction, Checkpointer

        start = time.perf_counter()
        cached_fn = CachedFunction(Checkpointer(storage="memory", verbosity=0), fn)
        assert cached_fn.ident.fn_hash  # the transitive hash is computed on first access
        first = time.perf_counter() - start
        per_call, _ = time_per_call(lambda: cached_fn.get_call_hash(1.5), repeat)
        functions = len(list(cached_fn.ident.raw_ident.depends))
        return {"first": first, "cached": per_call, "functions": functions}
    from resultkit.cache_policies._compiled import compile_key

    start = time.perf_counter()
    if library == "code":
        capture = code_capture(fn)
        context = CacheKeyContext(task_name="wl_pipeline.train", task_source="",
                                  captured={"code": capture})
        policy = INPUTS + CODE
    else:
        context = CacheKeyContext(task_name="wl_pipeline.train", task_source=capture_source(fn))
        policy = INPUTS + TASK_SOURCE
    key = policy.compute_key(context, {"x": 1})
    first = time.perf_counter() - start
    # What a task call computes: the key compiled once per task, then one digest per call.
    compiled = compile_key(policy, context.task_name, context.task_source, ["x"],
                           captured=context.captured)
    assert compiled is not None and compiled.of_args((1,)) == key
    # A float: keys of small ints and strs are memoised, which would flatter the figure.
    per_call, _ = time_per_call(lambda: compiled.of_args((1.5,)), repeat)
    functions = 1 + len(capture.trace.helpers) if library == "code" else 1
    return {"first": first, "cached": per_call, "functions": functions}


def _child_files(library: str, path: str, repeat: int) -> dict[str, Any]:
    import xxhash

    from resultkit.cache_policies import CacheKeyContext, Files

    if library == "floor_stat":
        per_call, _ = time_per_call(lambda: os.stat(path), repeat)
        return {"first": None, "cached": per_call}
    if library == "floor_read":
        import mmap

        def read_and_hash() -> str:
            hasher = xxhash.xxh3_128()
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                mapped.madvise(mmap.MADV_SEQUENTIAL)
                view = memoryview(mapped)
                try:
                    for offset in range(0, len(mapped), 16 << 20):
                        hasher.update(view[offset:offset + (16 << 20)])
                finally:
                    view.release()
            return str(hasher.hexdigest())

        start = time.perf_counter()
        read_and_hash()
        return {"first": time.perf_counter() - start, "cached": None}
    policy = Files("path")
    context = CacheKeyContext(task_name="bench.load", task_source="")
    start = time.perf_counter()
    policy.compute_key(context, {"path": path})
    first = time.perf_counter() - start
    per_call, _ = time_per_call(lambda: policy.compute_key(context, {"path": path}), repeat)
    return {"first": first, "cached": per_call}


# -- the run ----------------------------------------------------------------------------------


def _interleaved(kind: str, libraries: dict[str, str], target: str, rounds: int,
                 repeat: int) -> dict[str, list[dict[str, Any]] | str]:
    results: dict[str, list[dict[str, Any]] | str] = {name: [] for name in libraries}
    names = list(libraries)
    for round_number in range(rounds):
        shift = round_number % len(names)  # rotate, so no library always runs right after another
        for name in names[shift:] + names[:shift]:
            if isinstance(results[name], str):
                continue
            if kind == "files":
                _warm_page_cache(target)
            argv = [sys.executable, __file__, "--child", kind, name, target, str(repeat)]
            try:
                outcome = run_child(argv, env=child_env(), timeout=600)
            except Unavailable as exc:
                results[name] = str(exc)
                continue
            samples = results[name]
            assert isinstance(samples, list)
            samples.append(outcome)
    return results


def _warm_page_cache(path: str) -> None:
    """Read the file once, so every child starts with it in the page cache, not just the later ones."""
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


def _median(samples: list[dict[str, Any]], field: str) -> float | None:
    values = [s[field] for s in samples if s.get(field) is not None]
    return statistics.median(values) if values else None


def run(config: Config) -> list[Section]:
    rounds = config.repeats(7, 3)
    repeat = config.repeats(7, 3)
    file_size = (64 << 20) if config.quick else (1 << 30)
    first = Section(
        "CODE: first key of a task over ~40 helpers in 3 modules (fresh process)",
        "Median over fresh processes (one per library per round, interleaved) of the first "
        "key computation: tracing and digesting the task's code. Imports excluded.",
        extra_columns=("functions hashed",),
    )
    cached = Section(
        "CODE: per-call key of train(1.5) once the code is hashed",
        "Median per call, in the same processes, after the first key: for resultkit the key "
        "as a task call computes it (compiled once per task, then the argument's digest).",
    )
    file_first = Section(
        f"Files: first key of a {file_size >> 20} MiB file (fresh process, file in page cache)",
        "Median over fresh processes, interleaved with the floors.",
    )
    file_cached = Section(
        f"Files: later keys of the unchanged {file_size >> 20} MiB file (stat cache)",
        "Median per call in the same processes: one os.stat and a dict lookup, no read.",
        target="microseconds",
    )
    with scratch_dir(config, "invalidation") as folder:
        project = folder / "project"
        write_project(project)
        data = folder / "data.bin"
        block = os.urandom(1 << 20)
        with open(data, "wb") as f:
            for _ in range(file_size >> 20):
                f.write(block)
        code = _interleaved("code", CODE_LIBRARIES, str(project), rounds, repeat)
        files = _interleaved("files", FILE_LIBRARIES, str(data), rounds, repeat)
    for name, label in CODE_LIBRARIES.items():
        outcome = code[name]
        if isinstance(outcome, str):
            first.unavailable(label, outcome)
            cached.unavailable(label, outcome)
            continue
        note = {"task_source": "the task's own lines only", "checkpointer": "checkpointer 2.x "
                "CachedFunction.ident.fn_hash / get_call_hash"}.get(name, "INPUTS + CODE")
        functions = str(max(int(s["functions"]) for s in outcome))
        first.add(Row(label, _median(outcome, "first"), len(outcome), extra={"functions hashed": functions},
                      note=note))
        cached.add(Row(label, _median(outcome, "cached"), len(outcome), note=note))
    for name, label in FILE_LIBRARIES.items():
        outcome = files[name]
        if isinstance(outcome, str):
            file_first.unavailable(label, outcome)
            continue
        floor = name.startswith("floor")
        if _median(outcome, "first") is not None:
            file_first.add(Row(label, _median(outcome, "first"), len(outcome), nbytes=file_size,
                               is_floor=floor))
        if _median(outcome, "cached") is not None:
            file_cached.add(Row(label, _median(outcome, "cached"), len(outcome), is_floor=floor))
    file_first.notes.append(
        "resultkit reads the file with read() into a reused 64 KiB buffer, so it pays one copy out of "
        "the page cache; hashing an mmap of the file skips that copy, but a file truncated while it is "
        "hashed would kill the process with SIGBUS, so resultkit does not map files")
    row = file_cached.resultkit_row()
    if row is not None and row.seconds is not None:
        file_cached.target_met = row.seconds < 1e-3
    return [first, cached, file_first, file_cached]


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        kind, library, target, repeat = argv[1], argv[2], argv[3], int(argv[4])
        child = _child_code if kind == "code" else _child_files
        emit_child_result(child(library, target, repeat))
        return 0
    import tempfile

    config = Config(quick="--quick" in argv, prefect_python=None, scratch=Path(tempfile.gettempdir()))
    print(render_sections(run(config)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
