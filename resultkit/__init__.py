"""resultkit: make expensive work happen once.

>>> from resultkit import task
>>> from resultkit.cache_policies import INPUTS
>>> @task(cache_policy=INPUTS)        # doctest: +SKIP
... def train(data_path: str) -> dict: ...
"""

from __future__ import annotations

from typing import Any

from ._settings import settings
from .errors import (
    ConfigurationError,
    HashError,
    LockNotHeldError,
    LockTimeout,
    RecordCorruptError,
    RecordNotFound,
    ResultkitError,
    RunTimeout,
    SerializationError,
    StorageError,
    TransactionError,
    TransactionValueNotFound,
)
from .flows import Flow, flow
from .futures import unmapped
from .states import State
from .tasks import Task, task, task_input_hash

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Flow",
    "HashError",
    "LockNotHeldError",
    "LockTimeout",
    "RecordCorruptError",
    "RecordNotFound",
    "ResultkitError",
    "RunTimeout",
    "SerializationError",
    "State",
    "StorageError",
    "Task",
    "TransactionError",
    "TransactionValueNotFound",
    "__version__",
    "flow",
    "get_transaction",
    "settings",
    "task",
    "task_input_hash",
    "transaction",
    "unmapped",
]

for _name in ("Flow", "State", "Task", "flow", "settings", "task"):
    globals()[_name].__module__ = __name__
del _name


def __getattr__(name: str) -> Any:
    # The transactions layer is imported on first use, keeping `import resultkit` light.
    if name in ("transaction", "get_transaction"):
        from . import transactions

        return getattr(transactions, name)
    raise AttributeError(f"module 'resultkit' has no attribute {name!r}")
