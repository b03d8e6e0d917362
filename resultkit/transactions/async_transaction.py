"""Prefect's async face: ``AsyncTransaction`` and ``atransaction``, whose commit, rollback and read are awaited.

The core is :class:`~resultkit.transactions.transaction.Transaction` (which also works
with ``async with``); this subclass only awaits, running the blocking parts in a worker
thread so the event loop keeps running.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..errors import TransactionError
from .transaction import Transaction

__all__ = ["AsyncTransaction", "atransaction"]


class AsyncTransaction(Transaction):
    """Prefect's async transaction: used with ``async with``; ``commit``/``rollback`` are awaited.

    >>> async def main(store):                                   # doctest: +SKIP
    ...     async with atransaction(key="k", store=store) as txn:
    ...         txn.stage(1)
    ...         await txn.commit()
    """

    def __enter__(self) -> NoReturn:
        raise TransactionError("an AsyncTransaction is used with `async with`; for `with`, use transaction()")

    async def commit(self) -> bool:  # type: ignore[override]
        """:meth:`Transaction.commit`, with the writes off the event loop."""
        import asyncio  # only async code gets here, and its loop has imported asyncio

        return await asyncio.to_thread(self._commit)

    async def rollback(self) -> bool:  # type: ignore[override]
        """:meth:`Transaction.rollback`, with the hooks off the event loop."""
        import asyncio

        return await asyncio.to_thread(self._rollback)

    async def read(self) -> Any:  # type: ignore[override]
        """:meth:`Transaction.read`, off the event loop."""
        import asyncio

        return await asyncio.to_thread(Transaction.read, self)


#: Prefect's ``atransaction(...)``: an :class:`AsyncTransaction` for ``async with``, same arguments.
atransaction = AsyncTransaction
