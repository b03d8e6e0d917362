"""The lease keeper renews held locks, so a live but slow holder is never overtaken."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from resultkit.locking.lease import drop_lease, keep_lease
from resultkit.transactions import FileLockManager, transaction


def _expiry(manager: FileLockManager, key: str) -> float:
    return float(json.loads(manager._lock_path(key).read_text())["expires"])


def test_kept_lease_is_renewed_until_dropped(tmp_path: Path) -> None:
    manager = FileLockManager(tmp_path / "locks")
    # A lease long enough that a loaded machine stalling this thread or the keeper for a
    # moment cannot let it lapse between a renewal and the holder check below.
    assert manager.acquire_lock("slow", "worker", hold_timeout=1.5)
    first = _expiry(manager, "slow")
    token = keep_lease(manager, "slow", "worker", 1.5)
    try:
        renewed = threading.Event()
        for _ in range(600):  # bounded wait for the keeper's renewals (every 0.5 s)
            if _expiry(manager, "slow") > first + 0.2:
                break
            renewed.wait(0.05)
        assert _expiry(manager, "slow") > first + 0.2, "the lease was never renewed"
        assert manager.is_lock_holder("slow", "worker")
    finally:
        drop_lease(token)
    manager.release_lock("slow", "worker")


def test_serializable_transaction_holds_a_lease_named_after_its_host_and_pid(tmp_path: Path) -> None:
    manager = FileLockManager(tmp_path / "locks")
    with transaction("k", isolation_level="SERIALIZABLE", lock_manager=manager) as txn:
        lease = json.loads(manager._lock_path("k").read_text())
        assert lease["holder"].startswith(f"{lease['host']}:{lease['pid']}:")
        txn.stage(1)
    assert not manager.is_locked("k")
