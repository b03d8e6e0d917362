"""Answers the lock tests of Prefect's tests/results/test_result_store.py (``supports_isolation_level``).

The rest of that file (storage blocks, the server's default storage) is answered, or
left out with a reason, by the results half of the compat suite.
"""

from __future__ import annotations

from pathlib import Path

from resultkit.results import ResultStore
from resultkit.storage import LocalStorage
from resultkit.transactions import IsolationLevel, MemoryLockManager

from ._cite import xfail_differs


def test_supports_isolation_level(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    from resultkit.storage.s3 import S3Storage

    with_locks = ResultStore(LocalStorage(tmp_path), lock_manager=MemoryLockManager())
    assert with_locks.supports_isolation_level(IsolationLevel.READ_COMMITTED)
    assert with_locks.supports_isolation_level(IsolationLevel.SERIALIZABLE)
    # A store with no lock manager at all (an object store, unless it brings a default).
    bare = ResultStore(S3Storage(s3_bucket, endpoint_url=s3_endpoint))
    assert bare.supports_isolation_level(IsolationLevel.READ_COMMITTED)
    assert bare.supports_isolation_level(IsolationLevel.SERIALIZABLE) is (
        bare._checking_locks(cheap_only=False) is not None)


@xfail_differs("**`FileLockManager` is the default for local storage**")
def test_supports_isolation_level_of_the_default_store_without_a_lock_manager() -> None:
    # Prefect: ResultStore() with no lock_manager does not support SERIALIZABLE. Ours is
    # local storage, whose default FileLockManager makes SERIALIZABLE work unconfigured.
    assert not ResultStore().supports_isolation_level(IsolationLevel.SERIALIZABLE)
