"""The hit path's caches never serve what the slow path would not: env, cwd, types, storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from resultkit import State, task, transaction
from resultkit.cache_policies import INPUTS, TASK_SOURCE
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage


def files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_an_environment_change_is_seen_by_the_next_call(tmp_path, monkeypatch):
    calls = []

    @task(cache_policy=INPUTS)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(tmp_path / "first"))
    assert double(3) == 6
    assert double(3) == 6
    assert calls == [3]
    monkeypatch.setenv("RESULTKIT_DEFAULT_STORAGE", str(tmp_path / "second"))
    assert double(3) == 6  # a new storage: its record is not there yet
    assert calls == [3, 3]
    assert len(files(tmp_path / "second")) == 1
    monkeypatch.setenv("RESULTKIT_REFRESH_CACHE", "1")
    assert double(3) == 6  # refresh skips the memory tier too
    assert calls == [3, 3, 3]


def test_a_working_directory_change_is_seen_by_the_next_call(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pyproject.toml").write_text(
            f"[tool.resultkit]\ndefault_storage = '{tmp_path / name / 'store'}'\n"
        )
    calls = []

    @task(cache_policy=INPUTS)
    def echo(x: str) -> str:
        calls.append(x)
        return x

    monkeypatch.chdir(tmp_path / "a")
    echo("v")
    echo("v")
    monkeypatch.chdir(tmp_path / "b")
    echo("v")
    assert calls == ["v", "v"]
    assert len(files(tmp_path / "a" / "store")) == len(files(tmp_path / "b" / "store")) == 1


@pytest.mark.parametrize("values", [(1, True, 1.0), ("1", 1, b"1"), (0, False, 0.0, -0.0)])
def test_equal_but_differently_typed_arguments_never_share_a_warm_hit(tmp_path, values):
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def ident(x):
        calls.append(x)
        return x

    for value in values:
        assert type(ident(value)) is type(value)
        assert type(ident(value)) is type(value)  # the warm hit keeps the type too
    assert [type(v) for v in calls] == [type(v) for v in values]


def test_a_deleted_record_is_a_miss_on_the_next_warm_call(tmp_path):
    calls = []

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=str(tmp_path))
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    square(4)
    square(4)
    (record,) = files(tmp_path)
    record.unlink()
    assert square(4) == 16
    assert calls == [4, 4]
    assert len(files(tmp_path)) == 1


def test_keyword_default_and_positional_calls_share_one_record(tmp_path):
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def scale(x: int, factor: int = 2) -> int:
        calls.append((x, factor))
        return x * factor

    assert scale(3, 2) == 6
    assert scale(3) == 6
    assert scale(x=3) == 6
    assert scale(factor=2, x=3) == 6
    assert scale(3, factor=3) == 9
    assert calls == [(3, 2), (3, 3)]
    assert len(files(tmp_path)) == 2


class CountingStorage(LocalStorage):
    """Local storage that counts reads (a subclass: served through ``version()``)."""

    reads = 0

    def _read_head(self, key: str, size: int) -> bytes:
        CountingStorage.reads += 1
        return super()._read_head(key, size)


def test_a_miss_reads_storage_once_and_a_hit_once(tmp_path):
    storage = CountingStorage(tmp_path)

    @task(cache_policy=INPUTS, result_storage=storage, cache_result_in_memory=False)
    def inc(x: int) -> int:
        return x + 1

    CountingStorage.reads = 0
    inc(1)
    assert CountingStorage.reads == 1  # the lookup that missed; the transaction did not look again
    inc(1)
    assert CountingStorage.reads == 2


def test_a_hit_inside_a_transaction_leaves_no_trace_in_it(tmp_path):
    seen = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_result_in_memory=False)
    def inc(x: int) -> int:
        return x + 1

    inc.on_commit(lambda txn: seen.append("commit"))
    inc(1)
    assert seen == ["commit"]
    with transaction() as txn:
        state = inc(1, return_state=True)
        assert isinstance(state, State) and state.is_cached()
        assert txn.children == [] and txn.is_active()
    assert seen == ["commit"]  # hooks attach when a value is staged, never on a hit
    assert state.reference is not None
    assert ResultStore(tmp_path).read(state.reference.storage_key).result == 2


def test_a_warm_hit_returns_a_state_with_a_reference(tmp_path):
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def inc(x: int) -> int:
        return x + 1

    inc(5)
    state = inc(5, return_state=True)
    assert state.is_cached() and state.result() == 6
    assert state.reference.get() == 6
    assert state.cache_key == inc(5, return_state=True).cache_key
