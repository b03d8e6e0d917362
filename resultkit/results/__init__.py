"""resultkit.results: self-describing result records and the store that reads and writes them.

>>> from resultkit.results import ResultStore
>>> store = ResultStore("/tmp/results")          # doctest: +SKIP
>>> store.write("answer", 42).result             # doctest: +SKIP
42
"""

from __future__ import annotations

from .literal import ResultLiteral
from .record import ResultRecord, ResultRecordMetadata
from .reference import ResultReference
from .store import ResultStore

__all__ = [
    "ResultLiteral",
    "ResultRecord",
    "ResultRecordMetadata",
    "ResultReference",
    "ResultStore",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
