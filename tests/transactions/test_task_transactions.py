"""Tasks in transactions: the seed example, and the herd through @task on one and two "machines"."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from resultkit import flow, task, transaction
from resultkit.cache_policies import INPUTS
from resultkit.errors import SerializationError
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import Transaction

from . import workers


def _pipeline(tmp_path: Path) -> tuple[Any, Path, Path]:
    side_effect = tmp_path / "side-effect.txt"
    storage = tmp_path / "storage"

    @task(cache_policy=INPUTS, result_storage=storage)
    def write_file(contents: str) -> str:
        side_effect.write_text(contents)
        return contents

    @write_file.on_rollback
    def delete_file(txn: Transaction) -> None:
        side_effect.unlink()

    @task(cache_policy=INPUTS, result_storage=storage)
    def quality_test(path: str) -> int:
        lines = Path(path).read_text().splitlines()
        if len(lines) < 2:
            raise ValueError("not enough data")
        return len(lines)

    @flow
    def pipeline(contents: str) -> int:
        with transaction():
            write_file(contents)
            return quality_test(str(side_effect))

    return pipeline, side_effect, storage


def test_seed_example_failed_quality_test_rolls_back_the_file_and_all_records(
    tmp_path: Path,
) -> None:
    pipeline, side_effect, storage = _pipeline(tmp_path)
    with pytest.raises(ValueError, match="not enough data"):
        pipeline("one line only")
    assert not side_effect.exists()
    assert list(ResultStore(LocalStorage(storage)).list()) == []


def test_seed_example_passing_quality_test_keeps_the_file_and_both_records(
    tmp_path: Path,
) -> None:
    pipeline, side_effect, storage = _pipeline(tmp_path)
    assert pipeline("line one\nline two\n") == 2
    assert side_effect.read_text() == "line one\nline two\n"
    assert len(list(ResultStore(LocalStorage(storage)).list())) == 2


def test_unserializable_task_value_rolls_back_its_siblings(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    undone: list[str] = []

    @task(cache_policy=INPUTS, result_storage=storage)
    def make(kind: str) -> Any:
        return threading.Lock() if kind == "lock" else kind

    @make.on_rollback
    def undo(txn: Transaction) -> None:
        undone.append(txn.staged_value if isinstance(txn.staged_value, str) else "lock")

    with pytest.raises(SerializationError) as err, transaction():
        make("first")
        make("lock")
        make("last")
    assert isinstance(err.value.value, type(threading.Lock()))
    assert list(ResultStore(LocalStorage(storage)).list()) == []
    assert sorted(undone) == ["first", "last", "lock"]  # every rollback hook ran once


def _herd(spawn: Any, tmp_path: Path, callers: int, machines: list[dict[str, str]] | None) -> None:
    body_log = tmp_path / "bodies.log"
    start = spawn.Barrier(callers)
    results = spawn.Queue()
    procs = [spawn.Process(target=workers.task_herd_member,
                           args=(7, str(body_log), start, results,
                                 machines[i % len(machines)] if machines else None))
             for i in range(callers)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    runs = body_log.read_text().split()
    assert len(runs) == 1, f"the body ran {len(runs)} times"
    expected = {"square": 49, "computed_by": int(runs[0])}
    assert sorted(name for name, _ in outcomes) == ["Cached"] * (callers - 1) + ["Completed"]
    assert [value for _, value in outcomes] == [expected] * callers


def test_task_herd_with_serializable_policy_runs_the_body_once(
    spawn: Any, tmp_path: Path
) -> None:
    # No lock configuration at all: default storage is local, so file locks are used.
    _herd(spawn, tmp_path, callers=6, machines=None)


def test_task_herd_across_two_machines_sharing_s3_and_redis(
    spawn: Any, tmp_path: Path, s3_endpoint: str, s3_bucket: str, redis_url: str
) -> None:
    machines = [{"home": str(tmp_path / f"machine-{n}"), "bucket": s3_bucket,
                 "endpoint": s3_endpoint, "redis_url": redis_url} for n in (1, 2)]
    _herd(spawn, tmp_path, callers=4, machines=machines)  # two callers per machine
    assert all(not os.path.exists(Path(m["home"]) / "storage") for m in machines)
