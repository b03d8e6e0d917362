"""Async code never blocks its event loop on a lock: SERIALIZABLE async tasks, async with, atransaction."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from resultkit import task, transaction
from resultkit.cache_policies import INPUTS
from resultkit.results import ResultStore
from resultkit.storage import MemoryStorage
from resultkit.transactions import AsyncTransaction, MemoryLockManager, atransaction


@pytest.fixture(autouse=True)
def bounded_lock_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTKIT_LOCK_TIMEOUT", "60")  # a deadlock fails in a minute, not five


@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_herd_of_coroutines_and_threads_runs_a_serializable_async_body_once(
        tmp_path: Path, where: str) -> None:
    runs: list[int] = []
    storage = tmp_path / "records" if where == "local" else MemoryStorage()

    @task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"), result_storage=storage)
    async def work(x: int) -> int:
        runs.append(x)
        await asyncio.sleep(0.2)  # the body's own work, while the others wait for its lock
        return x + 1

    async def herd() -> tuple[list[int], int]:
        ticks = 0
        stop = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        beating = asyncio.create_task(heartbeat())
        results = await asyncio.gather(*(work(1) for _ in range(20)))
        stop.set()
        await beating
        return list(results), ticks

    thread_results: list[int] = []

    def in_a_thread() -> None:
        thread_results.append(asyncio.run(work(1)))

    threads = [threading.Thread(target=in_a_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    results, ticks = asyncio.run(herd())
    for thread in threads:
        thread.join()
    assert results == [2] * 20 and thread_results == [2] * 4
    assert runs == [1]  # the body ran once for all 24 callers
    assert ticks >= 2  # the loop kept running while 19 coroutines waited for the lock


def test_async_with_transaction_stages_and_commits(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "records")

    async def main() -> None:
        async with transaction(key="k", store=store) as txn:
            assert txn.is_active()
            txn.stage("v")
        assert txn.is_committed()

    asyncio.run(main())
    assert store.read("k").result == "v"


def test_atransaction_commit_and_rollback_are_awaited(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "records")
    undone: list[str] = []

    async def main() -> None:
        async with atransaction(key="kept", store=store, commit_mode="OFF") as kept:
            assert isinstance(kept, AsyncTransaction)
            kept.stage("kept")
            assert await kept.commit() is True
            assert await kept.commit() is False
        async with atransaction(key="dropped", store=store, commit_mode="OFF") as dropped:
            dropped.stage("dropped", on_rollback=lambda t: undone.append(t.key))
            assert await dropped.rollback() is True

    asyncio.run(main())
    assert store.read("kept").result == "kept" and not store.exists("dropped")
    assert undone == ["dropped"]


def test_an_async_transaction_refuses_a_plain_with() -> None:
    from resultkit.errors import TransactionError

    with pytest.raises(TransactionError, match="async with"), atransaction():
        pass


def test_async_serializable_transactions_wait_without_blocking_the_loop() -> None:
    manager = MemoryLockManager()
    store = ResultStore(MemoryStorage())
    order: list[str] = []

    async def writer(name: str) -> None:
        async with transaction(key="shared", store=store, isolation_level="SERIALIZABLE",
                               lock_manager=manager, overwrite=True) as txn:
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            txn.stage(name)
            order.append(f"{name} out")

    async def main() -> None:
        await asyncio.gather(*(writer(f"w{index}") for index in range(5)))

    asyncio.run(main())
    # Mutual exclusion: each writer's "in" is followed by its own "out".
    assert [entry.split()[0] for entry in order[::2]] == [entry.split()[0] for entry in order[1::2]]
    assert len(order) == 10
