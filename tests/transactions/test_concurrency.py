"""Many real processes on one key: a SERIALIZABLE herd runs the body once; READ_COMMITTED never tears."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resultkit.results import ResultStore
from resultkit.storage import LocalStorage

from . import workers


def _run_all(procs: list[Any]) -> None:
    for proc in procs:
        proc.start()


def _join_all(procs: list[Any]) -> None:
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0, f"{proc.name} exited with {proc.exitcode}"


def test_serializable_herd_runs_the_body_once_and_all_get_its_value(
    spawn: Any, tmp_path: Path
) -> None:
    storage_path, body_log = str(tmp_path / "storage"), tmp_path / "bodies.log"
    callers = 6
    start = spawn.Barrier(callers)
    results = spawn.Queue()
    procs = [spawn.Process(target=workers.herd_member,
                           args=(storage_path, "herd/key", str(body_log), start, results))
             for _ in range(callers)]
    _run_all(procs)
    values = [results.get(timeout=120) for _ in procs]
    _join_all(procs)
    runs = body_log.read_text().split()
    assert len(runs) == 1, f"the body ran {len(runs)} times"
    assert values == [{"computed_by": int(runs[0]), "answer": 42}] * callers
    assert ResultStore(LocalStorage(storage_path)).read("herd/key").result == values[0]


def test_concurrent_read_committed_writers_only_ever_show_whole_values(
    spawn: Any, tmp_path: Path
) -> None:
    storage_path, key = str(tmp_path / "storage"), "contended"
    writers, writes = 8, 200
    start = spawn.Barrier(writers + 1)
    stop = spawn.Event()
    results = spawn.Queue()
    read_proc = spawn.Process(target=workers.reader, args=(storage_path, key, start, stop, results))
    procs = [spawn.Process(target=workers.read_committed_writer,
                           args=(storage_path, key, w, writes, start)) for w in range(writers)]
    _run_all([read_proc, *procs])
    _join_all(procs)
    stop.set()
    reads, torn, vanished = results.get(timeout=120)
    _join_all([read_proc])
    assert reads >= 20 and torn == 0 and vanished == 0
    last = ResultStore(LocalStorage(storage_path)).read(key).result
    assert workers.is_whole(last) and last["tag"].endswith(f":{writes - 1}")  # someone's last write
    leftovers = [p.name for p in Path(storage_path).rglob("*") if p.is_file() and p.name != key]
    assert leftovers == []  # no temporary files left behind
