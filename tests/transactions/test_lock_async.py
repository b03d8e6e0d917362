"""The async face of every lock manager: awaited waits, one lock shared with threads, a free loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from resultkit.errors import ConfigurationError
from resultkit.transactions import MemoryLockManager


def test_aacquire_takes_a_free_lock_and_refuses_a_held_one(lock_manager: Any, lock_key: str) -> None:
    async def main() -> tuple[bool, bool, bool]:
        first = await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0)
        again = await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0)
        other = await lock_manager.aacquire_lock(lock_key, "bob", acquire_timeout=0.1)
        return first, again, other

    assert asyncio.run(main()) == (True, True, False)
    assert lock_manager.is_lock_holder(lock_key, "alice")
    lock_manager.release_lock(lock_key, "alice")


def test_await_for_lock(lock_manager: Any, lock_key: str) -> None:
    async def main() -> tuple[bool, bool, bool]:
        never_locked = await lock_manager.await_for_lock(lock_key)
        assert await lock_manager.aacquire_lock(lock_key, "alice", hold_timeout=60)
        still_locked = await lock_manager.await_for_lock(lock_key, timeout=0.1)

        async def release_soon() -> None:
            await asyncio.sleep(0)
            lock_manager.release_lock(lock_key, "alice")

        waited, _ = await asyncio.gather(lock_manager.await_for_lock(lock_key, timeout=60),
                                         release_soon())
        return never_locked, still_locked, waited

    assert asyncio.run(main()) == (True, False, True)
    assert not lock_manager.is_locked(lock_key)


def test_aacquire_waits_out_an_expired_lease(lock_manager: Any, lock_key: str) -> None:
    assert lock_manager.acquire_lock(lock_key, "alice", hold_timeout=0.2)
    acquired = asyncio.run(lock_manager.aacquire_lock(lock_key, "bob", acquire_timeout=30))
    assert acquired and lock_manager.is_lock_holder(lock_key, "bob")


def test_aacquire_checks_its_arguments(lock_manager: Any) -> None:
    with pytest.raises(ConfigurationError, match="holder"):
        asyncio.run(lock_manager.aacquire_lock("k", ""))


class _Occupancy:
    """Counts who is inside the critical section, and the most ever inside at once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.inside = self.most = self.entries = 0

    def enter(self) -> None:
        with self._guard:
            self.inside += 1
            self.entries += 1
            self.most = max(self.most, self.inside)

    def leave(self) -> None:
        with self._guard:
            self.inside -= 1


def test_coroutines_and_threads_share_one_lock_and_the_loop_keeps_running(
    lock_manager: Any, lock_key: str
) -> None:
    occupancy = _Occupancy()
    # "opener" holds the lock while everybody queues up; only the heartbeat coroutine
    # releases it, so if any waiting coroutine blocked the loop, nobody would ever get in.
    assert lock_manager.acquire_lock(lock_key, "opener", hold_timeout=300)

    def thread_worker(index: int) -> None:
        holder = f"thread-{index}"
        assert lock_manager.acquire_lock(lock_key, holder, acquire_timeout=120, hold_timeout=60)
        occupancy.enter()
        threading.Event().wait(0.001)  # widen the window for a second entrant
        occupancy.leave()
        lock_manager.release_lock(lock_key, holder)

    async def coroutine_worker(index: int) -> None:
        holder = f"coroutine-{index}"
        assert await lock_manager.aacquire_lock(lock_key, holder, acquire_timeout=120,
                                                hold_timeout=60)
        occupancy.enter()
        await asyncio.sleep(0.001)  # other coroutines run meanwhile and must stay out
        occupancy.leave()
        lock_manager.release_lock(lock_key, holder)

    async def heartbeat() -> int:
        beats = 0
        while beats < 20:  # the loop turns while 20 coroutines wait for the lock
            await asyncio.sleep(0.001)
            beats += 1
        lock_manager.release_lock(lock_key, "opener")
        return beats

    async def main() -> list[Any]:
        return await asyncio.wait_for(
            asyncio.gather(*(coroutine_worker(i) for i in range(20)), heartbeat()), 180)

    threads = [threading.Thread(target=thread_worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    results = asyncio.run(main())
    for thread in threads:
        thread.join(180)
    assert results[-1] == 20
    assert not any(thread.is_alive() for thread in threads)
    assert occupancy.entries == 24
    assert occupancy.most == 1
    assert not lock_manager.is_locked(lock_key)


def test_memory_lock_manager_wakes_coroutines_of_several_loops(lock_key: str) -> None:
    locks = MemoryLockManager()
    assert locks.acquire_lock(lock_key, "opener", hold_timeout=300)
    outcomes: list[bool] = []
    waiting = threading.Barrier(3)

    def loop_in_a_thread(index: int) -> None:
        async def main() -> bool:
            waiter = asyncio.ensure_future(locks.aacquire_lock(lock_key, f"loop-{index}",
                                                               acquire_timeout=120))
            await asyncio.sleep(0)  # the first attempt has failed: it is waiting now
            await asyncio.to_thread(waiting.wait, 60)
            acquired = await waiter
            locks.release_lock(lock_key, f"loop-{index}")
            return acquired

        outcomes.append(asyncio.run(main()))

    threads = [threading.Thread(target=loop_in_a_thread, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    waiting.wait(60)
    locks.release_lock(lock_key, "opener")  # from a third thread, not any loop's
    for thread in threads:
        thread.join(120)
    assert outcomes == [True, True]


def test_redis_async_clients_close_their_connections_when_their_loop_ends(
    redis_url: str, lock_key: str
) -> None:
    import redis

    from resultkit.transactions import RedisLockManager

    admin = redis.Redis.from_url(redis_url)
    name = f"rk-{lock_key.rsplit('/', 1)[-1][:12]}"
    locks = RedisLockManager(redis_url, client_name=name)

    def connections() -> int:
        return sum(1 for client in admin.client_list() if client.get("name") == name)

    async def use() -> int:
        assert await locks.aacquire_lock(lock_key, "a", acquire_timeout=0)
        assert not await locks.await_for_lock(lock_key, timeout=0)
        opened = connections()
        locks.release_lock(lock_key, "a")
        return opened

    for _ in range(3):  # a new event loop each time, as asyncio.run makes
        assert asyncio.run(use()) >= 1
    for _ in range(500):  # the server sees the disconnects shortly after the loops shut down
        if connections() <= 1:  # at most the sync client's own connection
            break
        threading.Event().wait(0.01)
    assert connections() <= 1
    assert len(locks._async) <= 1  # clients of closed loops are dropped
