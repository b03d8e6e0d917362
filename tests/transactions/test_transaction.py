"""The transaction lifecycle (SPEC section 6) on a real ResultStore over local disk."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from resultkit.errors import (
    ConfigurationError,
    LockTimeout,
    SerializationError,
    StorageError,
    TransactionError,
)
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import (
    CommitMode,
    FileLockManager,
    IsolationLevel,
    MemoryLockManager,
    Transaction,
    TransactionState,
    default_lock_manager,
    get_transaction,
    transaction,
)


class Calls:
    """Records hook calls in order, as (event, key)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str | None]] = []

    def hook(self, event: str) -> Any:
        def record(txn: Transaction) -> None:
            self.log.append((event, txn.key))

        record.__qualname__ = f"hook_{event}"
        return record


# -- BEGIN ---------------------------------------------------------------------------------


def test_new_key_goes_active_staged_committed_and_is_written(store: ResultStore) -> None:
    txn = transaction("answer", store=store)
    assert txn.is_pending() and txn.state is TransactionState.PENDING
    with txn:
        assert txn.is_active() and not txn.is_committed()
        txn.stage({"x": 42})
        assert txn.is_staged()
        assert not store.exists("answer")  # nothing is written before COMMIT
    assert txn.is_committed()
    assert store.read("answer").result == {"x": 42}


def test_begin_finds_an_existing_record_and_is_committed(store: ResultStore) -> None:
    store.write("answer", [1, 2, 3])
    with transaction("answer", store=store) as txn:
        assert txn.is_committed()
        assert txn.record.result == [1, 2, 3]
        txn.stage("again")  # ignored, as in Prefect: BEGIN found the record
        assert txn.is_committed() and txn.staged_value is None
    assert store.read("answer").result == [1, 2, 3]


def test_overwrite_skips_the_lookup_and_replaces_the_record(store: ResultStore) -> None:
    store.write("answer", "old")
    with transaction("answer", store=store, overwrite=True) as txn:
        assert not txn.is_committed() and txn.record is None
        txn.stage("new")
    assert store.read("answer").result == "new"


def test_expired_record_is_a_miss_at_begin(store: ResultStore) -> None:
    store.write("answer", "stale", expiration=datetime.now(timezone.utc) - timedelta(seconds=1))
    with transaction("answer", store=store) as txn:
        assert not txn.is_committed()
        txn.stage("fresh", expiration=timedelta(hours=1))
    record = store.read("answer")
    assert record.result == "fresh" and record.metadata.expiration is not None


def test_stage_keeps_expiration_and_extra(store: ResultStore) -> None:
    with transaction("k", store=store) as txn:
        txn.stage(1, extra={"task": "t"})
    assert store.read("k").metadata.extra == {"task": "t"}


# -- ROLLBACK ------------------------------------------------------------------------------


def test_error_after_staging_writes_nothing_and_runs_rollback_hooks_newest_first(
    store: ResultStore,
) -> None:
    calls = Calls()
    with pytest.raises(RuntimeError, match="boom"), transaction("k", store=store) as txn:
        txn.stage("v", on_rollback=[calls.hook("first"), calls.hook("second")],
                  on_commit=[calls.hook("commit")])
        raise RuntimeError("boom")
    assert txn.is_rolled_back()
    assert not store.exists("k")
    assert calls.log == [("second", "k"), ("first", "k")]


def test_explicit_rollback(store: ResultStore) -> None:
    calls = Calls()
    with transaction("k", store=store) as txn:
        txn.stage("v", on_rollback=calls.hook("undo"))
        assert txn.rollback()
        assert not txn.rollback()  # only once
    assert txn.is_rolled_back() and not store.exists("k")
    assert calls.log == [("undo", "k")]


def test_failing_later_child_rolls_back_earlier_siblings_newest_first(store: ResultStore) -> None:
    calls = Calls()
    with pytest.raises(ValueError), transaction() as group:
        for name in ("a", "b"):
            with transaction(name, store=store) as child:
                child.stage(name, on_rollback=calls.hook(f"undo-{name}"))
            assert child.is_staged()  # LAZY: handed to the group, not written
        with transaction("c", store=store) as failing:
            failing.stage("c", on_rollback=calls.hook("undo-c"))
            raise ValueError("quality check failed")
    assert group.is_rolled_back() and child.is_rolled_back() and failing.is_rolled_back()
    assert not any(store.exists(k) for k in "abc")
    assert calls.log == [("undo-c", "c"), ("undo-b", "b"), ("undo-a", "a")]


# -- COMMIT --------------------------------------------------------------------------------


def test_nested_children_commit_with_the_parent_then_hooks_run(store: ResultStore) -> None:
    calls = Calls()
    seen_in_hook: list[bool] = []

    def check_all_written(txn: Transaction) -> None:
        seen_in_hook.append(store.exists("a") and store.exists("b") and store.exists("p"))

    with transaction("p", store=store) as parent:
        with transaction("a", store=store) as a:
            a.stage("A", on_commit=[check_all_written, calls.hook("a")])
        with transaction("b", store=store) as b:
            b.stage("B", on_commit=calls.hook("b"))
        assert a.commit_mode is CommitMode.LAZY and parent.commit_mode is CommitMode.LAZY
        assert not store.exists("a") and not store.exists("b")
        assert parent.children == [a, b]
        parent.stage("P", on_commit=calls.hook("p"))
    assert all(t.is_committed() for t in (parent, a, b))
    assert [store.read(k).result for k in ("a", "b", "p")] == ["A", "B", "P"]
    assert seen_in_hook == [True]  # commit hooks run only after every write succeeded
    assert calls.log == [("a", "a"), ("b", "b"), ("p", "p")]


def test_unserializable_child_rolls_back_the_whole_group(store: ResultStore) -> None:
    calls = Calls()
    unpicklable = threading.Lock()
    with pytest.raises(SerializationError) as err, transaction() as group:
        with transaction("ok-1", store=store) as first:
            first.stage("fine", on_rollback=calls.hook("undo-1"), on_commit=calls.hook("c1"))
        with transaction("bad", store=store) as bad:
            bad.stage(unpicklable, on_rollback=calls.hook("undo-bad"))
        with transaction("ok-2", store=store) as last:
            last.stage("fine too", on_rollback=calls.hook("undo-2"))
    assert err.value.value is unpicklable and err.value.has_value  # nothing computed is lost
    assert "'bad'" in str(err.value)
    assert not any(store.exists(k) for k in ("ok-1", "bad", "ok-2"))
    assert sorted(calls.log) == [("undo-1", "ok-1"), ("undo-2", "ok-2"), ("undo-bad", "bad")]
    assert group.is_rolled_back() and first.is_rolled_back()


def test_storage_fault_mid_commit_removes_records_already_written(store: ResultStore) -> None:
    store.write("taken/inner", "blocks the key 'taken'")  # 'taken' is now a folder: a real fault
    calls = Calls()
    with pytest.raises(StorageError) as err, transaction() as group:
        with transaction("first", store=store) as first:
            first.stage(1, on_rollback=calls.hook("undo-first"))
        with transaction("taken", store=store) as second:
            second.stage(2, on_rollback=calls.hook("undo-taken"))
    assert err.value.value == 2
    assert not store.exists("first")  # was written, then removed: all or nothing
    assert calls.log == [("undo-taken", "taken"), ("undo-first", "first")]
    assert group.is_rolled_back()


def test_eager_child_commits_at_its_own_end(store: ResultStore) -> None:
    with pytest.raises(KeyError), transaction("p", store=store):
        with transaction("c", store=store, commit_mode="EAGER") as child:
            child.stage("kept")
        assert store.exists("c")
        raise KeyError("parent fails later")
    assert store.read("c").result == "kept"


def test_commit_mode_off_writes_only_on_explicit_commit(store: ResultStore) -> None:
    calls = Calls()
    with transaction("off", store=store, commit_mode=CommitMode.OFF) as txn:
        txn.stage("v", on_rollback=calls.hook("undo"))
    assert not store.exists("off") and txn.is_rolled_back()
    assert calls.log == [("undo", "off")]
    with transaction("on", store=store, commit_mode="off") as txn:
        txn.stage("v")
        assert txn.commit()
        assert not txn.commit()
    assert store.read("on").result == "v"


def test_without_a_store_values_and_hooks_take_part_but_nothing_is_written(tmp_path: Path) -> None:
    calls = Calls()
    with transaction() as txn:
        txn.stage("v", on_commit=calls.hook("commit"))
    assert txn.is_committed() and txn.staged_value == "v"
    assert calls.log == [("commit", None)]
    assert not any(tmp_path.rglob("*"))  # no key: no storage I/O at all


def test_a_key_without_a_store_writes_to_the_default_storage() -> None:
    with transaction("report/1") as txn:
        if not txn.is_committed():
            txn.stage("built once")
    assert ResultStore().read("report/1").result == "built once"
    with transaction("report/1") as again:  # BEGIN finds it: the body is skipped
        assert again.is_committed() and again.record.result == "built once"


# -- hooks ---------------------------------------------------------------------------------


def test_async_hooks_run_outside_and_inside_an_event_loop(store: ResultStore) -> None:
    ran: list[str] = []

    async def on_commit(txn: Transaction) -> None:
        await asyncio.sleep(0)
        ran.append(f"async:{txn.key}")

    with transaction("sync-face", store=store) as txn:
        txn.stage(1, on_commit=on_commit)

    async def main() -> None:
        async with transaction("async-face", store=store) as txn:
            txn.stage(2, on_commit=on_commit)

    asyncio.run(main())
    assert ran == ["async:sync-face", "async:async-face"]


def test_failing_hook_is_logged_by_name_and_others_still_run(
    store: ResultStore, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()

    def broken_cleanup(txn: Transaction) -> None:
        raise OSError("disk gone")

    with caplog.at_level(logging.ERROR, logger="resultkit"), pytest.raises(ZeroDivisionError):
        with transaction("k", store=store) as txn:
            txn.stage(1, on_rollback=[calls.hook("a"), broken_cleanup, calls.hook("c")])
            1 / 0
    assert calls.log == [("c", "k"), ("a", "k")]
    assert txn.is_rolled_back()
    assert "broken_cleanup" in caplog.text and "disk gone" in caplog.text


# -- values, nesting, context --------------------------------------------------------------


def test_get_set_with_parent_fallback_and_copies() -> None:
    with transaction() as parent:
        parent.set("config", {"alpha": [1]})
        with transaction() as child:
            assert child.get_parent() is parent
            got = child.get("config")
            got["alpha"].append(2)
            assert parent.get("config") == {"alpha": [1]}  # get returns a copy
            child.set("config", "shadowed")
            assert child.get("config") == "shadowed" and parent.get("config") == {"alpha": [1]}
            assert child.get("missing", None) is None
            with pytest.raises(KeyError, match="'missing'"):
                child.get("missing")


def test_get_transaction_is_the_innermost_open_one() -> None:
    assert get_transaction() is None
    with transaction() as outer:
        assert get_transaction() is outer
        with transaction() as inner:
            assert get_transaction() is inner
        assert get_transaction() is outer
    assert get_transaction() is None
    assert outer.get_parent() is None


def test_transaction_cannot_be_entered_twice(store: ResultStore) -> None:
    txn = transaction("k", store=store)
    with txn:
        pass
    with pytest.raises(TransactionError, match="already begun"), txn:
        pass


@pytest.mark.parametrize("bad", [{"key": ""}, {"commit_mode": "sometimes"},
                                 {"isolation_level": "REPEATABLE"}, {"lock_timeout": -1},
                                 {"lock_manager": "redis://x"}])
def test_bad_arguments_raise_configuration_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        transaction(**bad)


def test_bad_hooks_are_refused_when_staged() -> None:
    with transaction("k") as txn, pytest.raises(ConfigurationError, match="on_commit"):
        txn.stage(1, on_commit=["not callable"])


def test_a_storage_path_is_accepted_as_store(tmp_path: Path) -> None:
    with transaction("k", store=tmp_path / "records") as txn:
        txn.stage("v")
    assert ResultStore(LocalStorage(tmp_path / "records")).read("k").result == "v"


# -- SERIALIZABLE ---------------------------------------------------------------------------


def test_serializable_on_local_storage_needs_no_configuration(store: ResultStore) -> None:
    locks = default_lock_manager(store)
    assert isinstance(locks, FileLockManager)
    assert locks.directory == store.storage.basepath / ".rk-locks"  # type: ignore[attr-defined]
    with transaction("k", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        assert locks.is_locked("k")
        txn.stage("v")
    assert not locks.is_locked("k")
    with pytest.raises(RuntimeError), transaction("k2", store=store, isolation_level="SERIALIZABLE"):
        assert locks.is_locked("k2")
        raise RuntimeError
    assert not locks.is_locked("k2")
    assert list(store.list()) == ["k"]  # lock files are not records


def test_serializable_found_record_releases_the_lock_at_begin(store: ResultStore) -> None:
    store.write("k", "stored")
    locks = default_lock_manager(store)
    assert locks is not None
    with transaction("k", store=store, isolation_level="SERIALIZABLE") as txn:
        assert txn.is_committed() and not locks.is_locked("k")


def test_lock_timeout_names_key_and_holder(store: ResultStore) -> None:
    locks = default_lock_manager(store)
    assert locks is not None
    assert locks.acquire_lock("busy", "the-other-worker")
    with pytest.raises(LockTimeout) as err:
        with transaction("busy", store=store, isolation_level="SERIALIZABLE", lock_timeout=0.1):
            pass
    assert "'busy'" in str(err.value) and "the-other-worker" in str(err.value)
    assert get_transaction() is None


def test_lock_timeout_defaults_to_the_environment(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESULTKIT_LOCK_TIMEOUT", "0.05")
    locks = MemoryLockManager()
    assert locks.acquire_lock("busy", "other")
    with pytest.raises(LockTimeout, match=r"0\.05 s"):
        with transaction("busy", store=store, isolation_level="SERIALIZABLE", lock_manager=locks):
            pass


def test_lazy_child_keeps_its_lock_until_the_parent_commits(store: ResultStore) -> None:
    locks = MemoryLockManager()
    with transaction() as parent:
        with transaction("k", store=store, isolation_level="SERIALIZABLE",
                         lock_manager=locks) as child:
            child.stage("v")
        assert locks.is_locked("k")  # STAGED, not yet committed
    assert not locks.is_locked("k") and parent.is_committed()


def test_serializable_on_remote_storage_without_lock_manager_explains_how() -> None:
    import uuid

    from resultkit.storage import FsspecStorage

    # (S3 and GCS storage lock in the bucket by default; a memory:// fsspec URL has no default.)
    remote = ResultStore(FsspecStorage(f"memory://rk-{uuid.uuid4().hex}/store"))
    assert default_lock_manager(remote) is None
    with pytest.raises(ConfigurationError, match="lock_manager=RedisLockManager"):
        with transaction("k", store=remote, isolation_level="SERIALIZABLE"):
            pass
    assert get_transaction() is None


def test_async_with_waits_for_a_lock_without_blocking_the_loop(store: ResultStore) -> None:
    locks = MemoryLockManager()

    async def main() -> list[str]:
        order: list[str] = []
        first_inside = asyncio.Event()
        release_first = asyncio.Event()

        async def first() -> None:
            async with transaction("k", store=store, isolation_level="SERIALIZABLE",
                                   lock_manager=locks) as txn:
                first_inside.set()
                await release_first.wait()
                txn.stage("from first")
                order.append("first")

        async def second() -> None:
            await first_inside.wait()
            async with transaction("k", store=store, isolation_level="SERIALIZABLE",
                                   lock_manager=locks, lock_timeout=20) as txn:
                order.append("second committed" if txn.is_committed() else "second ran")

        async def releaser() -> None:
            await first_inside.wait()
            await asyncio.sleep(0)  # let second() start waiting for the lock
            release_first.set()  # only reachable if the waiting second() left the loop free

        await asyncio.wait_for(asyncio.gather(first(), second(), releaser()), 60)
        return order

    assert asyncio.run(main()) == ["first", "second committed"]


def test_overwrite_under_serializable_locks_and_replaces(store: ResultStore) -> None:
    store.write("k", "old")
    locks = default_lock_manager(store)
    assert locks is not None
    with transaction("k", store=store, isolation_level="SERIALIZABLE", overwrite=True) as txn:
        assert not txn.is_committed() and locks.is_locked("k")
        txn.stage("new")
    assert store.read("k").result == "new" and not locks.is_locked("k")


def test_nested_transaction_on_the_same_key_reuses_the_held_lock(store: ResultStore) -> None:
    with transaction("k", store=store, isolation_level="SERIALIZABLE", lock_timeout=1) as outer:
        with transaction("k", store=store, isolation_level="SERIALIZABLE",
                         lock_timeout=1) as inner:  # would time out if it waited for outer
            inner.stage("inner")
        outer.stage("outer")
    assert store.read("k").result == "outer"  # the child is written first, then the parent
