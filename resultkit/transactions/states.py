"""The enums that describe a transaction: its state, isolation level and commit mode.

``IsolationLevel`` lives in the shared leaf ``resultkit._enums`` (re-exported here).
"""

from __future__ import annotations

import enum

from .._enums import IsolationLevel  # a leaf: cache policies and settings need it too

__all__ = ["CommitMode", "HasState", "IsolationLevel", "TransactionState"]


class TransactionState(str, enum.Enum):
    """Where a transaction is in its lifecycle."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


class CommitMode(str, enum.Enum):
    """When staged records are written.

    ``EAGER`` at the end of the block, ``LAZY`` by the parent (or at the end of the
    block when there is none), ``OFF`` only when ``txn.commit()`` is called.
    """

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class HasState:
    """The ``is_*()`` predicates of anything with a :class:`TransactionState` ``state``."""

    state: TransactionState

    def is_pending(self) -> bool:
        """Whether the transaction has not begun."""
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        """Whether the transaction has begun and nothing is staged yet."""
        return self.state is TransactionState.ACTIVE

    def is_staged(self) -> bool:
        """Whether a value is staged and not yet committed."""
        return self.state is TransactionState.STAGED

    def is_committed(self) -> bool:
        """Whether the transaction committed (or BEGIN found a stored record)."""
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        """Whether the transaction rolled back."""
        return self.state is TransactionState.ROLLED_BACK
