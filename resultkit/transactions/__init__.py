"""Transactions and lock managers: BEGIN, STAGE, COMMIT all or nothing, ROLLBACK.

>>> from resultkit.transactions import transaction, IsolationLevel
>>> with transaction() as txn:
...     txn.set("run", "nightly")
...     txn.get("run")
'nightly'
"""

from __future__ import annotations

from ..locking import (
    FileLockManager,
    LockManager,
    MemoryLockManager,
    RedisLockManager,
    default_lock_manager,
)
from .async_transaction import AsyncTransaction, atransaction
from .states import CommitMode, IsolationLevel, TransactionState
from .transaction import Transaction, get_transaction, register_default_store, transaction

__all__ = [
    "AsyncTransaction",
    "CommitMode",
    "FileLockManager",
    "IsolationLevel",
    "LockManager",
    "MemoryLockManager",
    "RedisLockManager",
    "Transaction",
    "TransactionState",
    "atransaction",
    "default_lock_manager",
    "get_transaction",
    "register_default_store",
    "transaction",
]

# Users see resultkit.transactions.Transaction, not the implementation module's path; the
# lock managers keep their own public package's name (resultkit.locking).
for _name in ("AsyncTransaction", "CommitMode", "IsolationLevel", "Transaction", "TransactionState",
              "atransaction", "get_transaction", "register_default_store", "transaction"):
    globals()[_name].__module__ = __name__
del _name
