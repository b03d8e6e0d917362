"""The thundering herd: 6 processes call the same slow task with the same input at once.

Each library's 6 children import, decorate and signal "ready"; the parent releases them
together through their stdin (no sleeps), then counts how often the body ran (it logs each
run to a file) and the wall time until the last caller had its value.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _harness import Config, Row, Section, Unavailable, child_env, emit_child_result, scratch_dir
from _peers import HERD_LIBRARIES, peer_env, wrap

__all__ = ["NAME", "run"]

NAME = "herd"

PROCESSES = 6
TARGET_OVERHEAD = 0.05  # seconds beyond one body run
_BODY = {"seconds": 2.0, "log": Path("body-runs.log")}


def slow_square(x: int) -> int:
    """The herd's task: logs that it ran, then works for a fixed time."""
    with open(_BODY["log"], "a") as f:
        f.write("ran\n")
    time.sleep(float(_BODY["seconds"]))  # the simulated expensive work, not synchronisation
    return x * x


def ping(x: int) -> int:
    """A different cached task, called before the herd is released to pay one-off start-up."""
    return x


def _warm_up_prefect() -> None:
    """Start Prefect's ephemeral API server before the herd is released."""
    from prefect import task as prefect_task

    def ping() -> int:
        return 0

    prefect_task(ping)()


def child_main(spec: dict[str, Any]) -> None:
    folder = Path(spec["folder"])
    _BODY["seconds"] = spec["body_seconds"]
    _BODY["log"] = folder / "body-runs.log"
    cached = wrap(spec["library"], slow_square, folder / "store", serializable=True)
    # Lazy imports and Prefect's server start happen on a first call; pay them on another
    # task so the herd measures coordination, not start-up (the cold-hit table shows that).
    wrap(spec["library"], ping, folder / "store", serializable=True)(os.getpid())
    print("ready", flush=True)
    sys.stdin.readline()  # released by the parent, together with the others
    value = cached(12)
    emit_child_result({"value": value, "finished": time.time()})


def _spawn(python: str, spec: dict[str, Any], env: dict[str, str], stderr_path: Path) -> subprocess.Popen[str]:
    # stderr goes to a file: a chatty child must never block on a full pipe
    with open(stderr_path, "w") as stderr:
        return subprocess.Popen([python, __file__, "child", json.dumps(spec)], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)


def _last_line(path: Path, default: str) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return (lines or [default])[-1][:200]


def _herd(python: str, library: str, folder: Path, body_seconds: float, ready_timeout: float,
          grace: float) -> Row:
    procs = []
    try:
        for i in range(PROCESSES):
            env = child_env(**peer_env(folder, process_tag=f"-{i}"))
            spec = {"library": library, "folder": str(folder), "body_seconds": body_seconds}
            procs.append(_spawn(python, spec, env, folder / f"stderr-{i}.log"))
        deadline = time.monotonic() + ready_timeout
        for i, proc in enumerate(procs):
            assert proc.stdout is not None
            line = proc.stdout.readline()  # blocks until the child is ready (or died)
            if line.strip() != "ready":
                proc.wait()
                tail = _last_line(folder / f"stderr-{i}.log", line.strip() or "no output")
                raise Unavailable(f"a caller failed to start: {tail}")
            if time.monotonic() > deadline:
                raise Unavailable(f"callers took over {ready_timeout:.0f} s to start")
        released = time.time()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        finished, values, hung, failed = [], set(), 0, ""
        run_deadline = time.monotonic() + PROCESSES * body_seconds + grace
        for i, proc in enumerate(procs):
            try:
                out, _ = proc.communicate(timeout=max(0.1, run_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                hung += 1
                continue
            result = next((json.loads(line.split(" ", 1)[1]) for line in out.splitlines()
                           if line.startswith("@@bench-result@@ ")), None)
            if result is None:
                failed = _last_line(folder / f"stderr-{i}.log", "no output")
                continue
            finished.append(result["finished"])
            values.add(result["value"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = folder / "body-runs.log"
    runs = len(log.read_text().splitlines()) if log.exists() else 0
    notes = []
    if hung:
        notes.append(f"{hung} of {PROCESSES} callers hung (killed after {PROCESSES * body_seconds + grace:.0f} s)")
    if failed:
        notes.append(f"{PROCESSES - hung - len(finished)} callers failed: {failed}")
    if values and values != {144}:
        notes.append(f"wrong values returned: {sorted(values)}")
    wall = max(finished) - released if finished and not hung else None
    return Row(library, wall, 1 if wall is not None else 0,
               extra={"body runs": str(runs), "callers ok": f"{len(finished)}/{PROCESSES}"},
               note="; ".join(notes))


def _combine(rounds: list[Row]) -> Row:
    """One row for several rounds: median wall time, and the worst body count and notes."""
    walls = [row.seconds for row in rounds if row.seconds is not None]
    worst = max(rounds, key=lambda row: (int(row.extra["body runs"]), row.seconds is None))
    runs = sorted({row.extra["body runs"] for row in rounds})
    return Row(rounds[0].library, statistics.median(walls) if len(walls) == len(rounds) else None,
               len(walls), extra={"body runs": "/".join(runs), "callers ok": worst.extra["callers ok"]},
               note=worst.note)


def _prefect_template(config: Config, folder: Path) -> None:
    """Migrate Prefect's SQLite database once, then give each caller a copy of that home."""
    assert config.prefect_python is not None
    env = child_env(**peer_env(folder, process_tag="-template"))
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "from bench_herd import _warm_up_prefect; _warm_up_prefect()")
    proc = subprocess.run([str(config.prefect_python), "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise Unavailable("could not start its ephemeral server: "
                          + (proc.stderr.strip().splitlines() or ["?"])[-1][:150])
    for i in range(PROCESSES):
        shutil.copytree(folder / "prefect-home-template", folder / f"prefect-home-{i}")


def run(config: Config) -> list[Section]:
    body_seconds = 0.5 if config.quick else 2.0
    section = Section(
        f"Thundering herd: {PROCESSES} processes, same task, same input, {body_seconds:g} s body",
        "Each library asked for run-once behaviour where it has it (resultkit: "
        "`INPUTS.configure(isolation_level=\"SERIALIZABLE\")` and nothing else; Prefect: "
        "SERIALIZABLE with its FileSystemLockManager; diskcache: its `barrier` recipe in a "
        "separate row). Wall time runs from the release of all callers to the last one "
        "holding the value.",
        target=f"body runs once, wall <= {body_seconds + TARGET_OVERHEAD:.2f} s",
        extra_columns=("body runs", "callers ok"),
    )
    for library in HERD_LIBRARIES:
        python = sys.executable
        if library == "prefect":
            prefect_python, reason = (config.prefect_python, config.prefect_reason)
            if prefect_python is None:
                section.unavailable(library, reason)
                continue
            python = str(prefect_python)
        # Prefect (minutes of server start-up) and cachier (hangs) get one round
        rounds = 1 if library in ("prefect", "cachier") else config.repeats(3, 1)
        rows = []
        for _ in range(rounds):
            with scratch_dir(config, "herd") as folder:
                try:
                    if library == "prefect":
                        _prefect_template(config, folder)
                    rows.append(_herd(python, library, folder, body_seconds,
                                      900 if library == "prefect" else 120, grace=10 if config.quick else 30))
                except Unavailable as exc:
                    section.unavailable(library, str(exc))
                    break
        if rows:
            section.add(_combine(rows))
    section.notes.append("a body that runs more than once means duplicated work (and, for "
                         "side effects, duplicated effects); callers that hang never return")
    rk = section.resultkit_row()
    if rk is not None and rk.seconds is not None:
        section.target_met = rk.extra["body runs"] == "1" and rk.seconds <= body_seconds + TARGET_OVERHEAD
    section.notes.append("body runs: the distinct counts seen over the rounds (n); wall: median")
    return [section]


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "child":
    try:
        child_main(json.loads(sys.argv[2]))
    except Unavailable as exc:
        print(f"unavailable: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
