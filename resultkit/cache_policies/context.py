"""What a cache policy may look at besides the inputs: the task, its source and the run."""

from __future__ import annotations

import functools
import inspect
import textwrap
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CacheKeyContext", "capture_source"]

#: Prefix of the text :func:`capture_source` returns when a function has no source.
CODE_DIGEST_PREFIX = "<code xxh3_128:"


@dataclass(frozen=True)
class CacheKeyContext:
    """Facts about one task call that policies other than ``INPUTS`` read.

    >>> CacheKeyContext(task_name="mod.train", task_source="def train(): ...", call_id="c1")
    CacheKeyContext(task_name='mod.train', task_source='def train(): ...', run_id=None, flow_parameters=None, call_id='c1')
    """

    #: The task's identity: ``module.qualname`` of the function, or the task's ``name=``.
    task_name: str
    #: Source text captured at decoration (see :func:`capture_source`).
    task_source: str
    #: Id of the enclosing flow run, or None outside a flow.
    run_id: str | None = None
    #: Bound parameters of the enclosing flow run, or None outside a flow.
    flow_parameters: Mapping[str, Any] | None = None
    #: Unique per call; ``RUN_ID`` uses it outside a flow so such calls never share a key.
    call_id: str = ""
    #: What policy parts captured from the task's function at decoration (``CODE``'s traced
    #: code under ``"code"``); travels with the task when it is pickled.
    captured: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def capture_source(fn: Callable[..., Any]) -> str:
    """Return ``fn``'s dedented source text, or a stable digest of its code when it has none.

    Called at decoration so the text travels with the task when it is pickled to a worker.

    >>> def double(x):
    ...     return 2 * x
    >>> capture_source(double).splitlines()[0]
    'def double(x):'
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    # A callable instance's behaviour is its class's code: capture the class.
    target = fn if inspect.isroutine(fn) or inspect.isclass(fn) else type(fn)
    try:
        return textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        # Lambdas typed at a REPL, exec'd code, builtins: fall back to the code object.
        pass
    code = _find_code(fn)
    if code is None:
        identity = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
        return f"<no source: {identity}>"
    return f"{CODE_DIGEST_PREFIX}{code_digest(code)}>"


def code_digest(code: types.CodeType) -> str:
    """Digest of a code object, stable across processes of one Python version.

    Covers the bytecode, constants (nested code objects recursively), names and
    variable names; never ``hash()`` or addresses.
    """
    from .hashing import Hasher

    hasher = Hasher()
    hasher.update(_code_state(code))
    return hasher.hexdigest()


def _code_state(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(_code_state(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return (code.co_name, code.co_argcount, code.co_code, consts, code.co_names, code.co_varnames)


def _find_code(fn: Any) -> types.CodeType | None:
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        return code
    func = getattr(fn, "__func__", None)  # bound methods, classmethods, staticmethods
    if func is not None and func is not fn:
        return _find_code(func)
    # Callable instances: the code of their class's __call__.
    call_code = getattr(type(fn).__call__, "__code__", None) if callable(fn) else None
    return call_code if isinstance(call_code, types.CodeType) else None
