"""Cache keys: composable policies and the input hasher.

>>> from resultkit.cache_policies import INPUTS, TASK_SOURCE, CacheKeyContext
>>> ctx = CacheKeyContext(task_name="demo.add", task_source="def add(x, y): ...", call_id="c1")
>>> len((INPUTS + TASK_SOURCE).compute_key(ctx, {"x": 1, "y": 2}))
32
"""

from __future__ import annotations

from types import FunctionType as _FunctionType

from .code import CODE, Code
from .context import CacheKeyContext, TaskRunInfo, capture_source
from .files import Files
from .hashing import Hasher, hash_value
from .packages import Packages
from .policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    FlowParameters,
    Inputs,
    NoCache,
    PolicyNotImplementedError,
    RunId,
    TaskSource,
)

__all__ = [
    "CODE",
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyContext",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "Code",
    "CompoundCachePolicy",
    "Files",
    "FlowParameters",
    "Hasher",
    "Inputs",
    "NoCache",
    "Packages",
    "PolicyNotImplementedError",
    "RunId",
    "TaskRunInfo",
    "TaskSource",
    "capture_source",
    "hash_value",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, (type, _FunctionType)):
        _obj.__module__ = __name__  # users see resultkit.cache_policies.Inputs, not the private path
