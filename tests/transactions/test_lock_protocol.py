"""The lock protocol declares every method the transaction and the store call on a manager.

``LockManager`` is Prefect's protocol; ``LeasedLockManager`` adds the optional
``extend_lock`` and ``lock_holder``, which callers check with ``isinstance`` rather than
probing attributes. A manager with only Prefect's methods works everywhere.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from pathlib import Path
from typing import Any

import pytest

from resultkit.errors import TransactionError
from resultkit.locking import LeasedLockManager, LockManager
from resultkit.locking.lease import drop_lease, keep_lease
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import MemoryLockManager, transaction


def declared(protocol: type) -> set[str]:
    return {
        name for klass in protocol.__mro__ if klass is not object and klass.__name__ != "Protocol"
        for name, member in vars(klass).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


class Recording:
    """A real MemoryLockManager that records every attribute its callers touch."""

    def __init__(self) -> None:
        self._inner = MemoryLockManager()
        self.touched: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.touched.append(name)
        return getattr(self._inner, name)


class PrefectOnly:
    """Only Prefect's seven methods: no lease renewal, no holder's name."""

    def __init__(self) -> None:
        self._inner = MemoryLockManager()

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        return self._inner.acquire_lock(key, holder, acquire_timeout, hold_timeout)

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        return await self._inner.aacquire_lock(key, holder, acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        self._inner.release_lock(key, holder)

    def is_locked(self, key: str) -> bool:
        return self._inner.is_locked(key)

    def is_lock_holder(self, key: str, holder: str) -> bool:
        return self._inner.is_lock_holder(key, holder)

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return self._inner.wait_for_lock(key, timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await self._inner.await_for_lock(key, timeout)


def test_the_optional_methods_are_a_sub_protocol() -> None:
    assert declared(LockManager) == {
        "acquire_lock", "aacquire_lock", "release_lock", "is_locked", "is_lock_holder",
        "wait_for_lock", "await_for_lock",
    }
    assert declared(LeasedLockManager) - declared(LockManager) == {"extend_lock", "lock_holder"}
    assert isinstance(PrefectOnly(), LockManager) and not isinstance(PrefectOnly(), LeasedLockManager)


def test_transactions_and_the_store_call_only_declared_methods(tmp_path: Path) -> None:
    manager = Recording()
    store = ResultStore(LocalStorage(tmp_path), lock_manager=manager)
    key = f"k/{uuid.uuid4().hex}"
    with transaction(key=key, store=store, isolation_level="SERIALIZABLE", lock_manager=manager) as txn:
        txn.stage("value")
        with pytest.raises(TransactionError, match=r"cannot write the record .* held by"):
            store.write(key, "other writer", holder="intruder")
    assert store.read(key).result == "value"
    assert store.is_locked(key) is False and store.is_lock_holder(key, "intruder") is False

    async def in_a_coroutine() -> None:
        async with transaction(key=f"{key}-async", store=store, isolation_level="SERIALIZABLE",
                               lock_manager=manager) as txn:
            txn.stage("async value")

    asyncio.run(in_a_coroutine())
    assert manager.touched, "the recording manager was never used"
    undeclared = set(manager.touched) - declared(LeasedLockManager)
    assert undeclared == set(), f"called on a lock manager but not declared by the protocol: {undeclared}"


def test_a_manager_with_only_prefects_methods_serializes_and_is_never_renewed(tmp_path: Path) -> None:
    manager = PrefectOnly()
    store = ResultStore(LocalStorage(tmp_path), lock_manager=manager)
    key = f"k/{uuid.uuid4().hex}"
    assert keep_lease(manager, key, "me", 30.0) is None  # nothing to renew it with
    with transaction(key=key, store=store, isolation_level="SERIALIZABLE", lock_manager=manager) as txn:
        assert manager.is_locked(key)
        txn.stage(42)
        with pytest.raises(TransactionError, match="held by 'another holder'"):
            store.write(key, 0, holder="intruder")
    assert not manager.is_locked(key) and store.read(key).result == 42


def test_a_leased_manager_is_renewed() -> None:
    manager = MemoryLockManager()
    key = f"k/{uuid.uuid4().hex}"
    assert manager.acquire_lock(key, "me", hold_timeout=30)
    token = keep_lease(manager, key, "me", 30.0)
    try:
        assert token is not None
    finally:
        if token is not None:
            drop_lease(token)
        manager.release_lock(key, "me")
