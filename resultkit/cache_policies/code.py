"""``CODE``: the task's code plus, transitively, the project code it references.

>>> from resultkit.cache_policies import CODE, INPUTS
>>> policy = INPUTS + CODE
"""

from __future__ import annotations

import ast
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ._source import _canonical, _digest
from ._trace import CodeTrace, project_roots, trace_code
from .context import CacheKeyContext
from .policies import CachePolicy

__all__ = ["CODE", "Code", "CodeCapture", "code_capture"]

#: The name of CODE's entry in ``CacheKeyContext.captured``.
CAPTURE_KEY = "code"


class CodeCapture:
    """A task's traced code, taken at decoration and carried with the task to workers.

    Names the code reads that are not bound yet at decoration (a helper defined below
    the task, the task calling itself) are looked up once more on first use in the
    decorating process, or when the task is pickled; after that the trace never changes.
    """

    def __init__(self, fn: Callable[..., Any] | None, trace: CodeTrace | None = None) -> None:
        self._lock = threading.Lock()
        self._fn = fn
        self._roots = project_roots(fn) if fn is not None else ()
        self._trace = trace if trace is not None else trace_code(fn, self._roots, final=False)
        self._part: dict[str, Any] | None = None
        self._when_final: list[Callable[[], None]] = []
        if not self._trace.unresolved:
            self._fn = None

    @property
    def trace(self) -> CodeTrace:
        """The final trace (looking up names unbound at decoration once, on first use)."""
        if self._fn is not None:
            callbacks: list[Callable[[], None]] = []
            with self._lock:
                if self._fn is not None:
                    self._trace = trace_code(self._fn, self._roots)
                    self._fn = None
                    self._part = None
                    callbacks, self._when_final = self._when_final, []
            for callback in callbacks:
                callback()
        return self._trace

    @property
    def is_final(self) -> bool:
        """True once the trace can no longer change."""
        return self._fn is None

    def when_final(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the trace becomes final (never, if it already is)."""
        with self._lock:
            if self._fn is not None:
                self._when_final.append(callback)

    def key_part(self) -> dict[str, Any]:
        """CODE's key part: digests of the task, its helpers and the constants they read."""
        part = self._part
        if part is None or self._fn is not None:
            trace = self.trace
            part = {"task": trace.task}
            if trace.helpers:
                part["helpers"] = dict(trace.helpers)
            if trace.constants:
                part["constants"] = dict(trace.constants)
            self._part = part
        return part

    def __reduce__(self) -> tuple[Any, ...]:
        return (CodeCapture, (None, self.trace))

    def __repr__(self) -> str:
        trace = self.trace
        return f"<CodeCapture {len(trace.helpers)} helpers, {len(trace.constants)} constants>"


_captures: weakref.WeakKeyDictionary[Any, CodeCapture] = weakref.WeakKeyDictionary()
_captures_lock = threading.Lock()


def code_capture(fn: Callable[..., Any]) -> CodeCapture:
    """The :class:`CodeCapture` of ``fn``, traced once per function per process."""
    try:
        capture = _captures.get(fn)
    except TypeError:  # not weak-referenceable (a callable instance with __slots__)
        return CodeCapture(fn)
    if capture is None:
        capture = CodeCapture(fn)
        with _captures_lock:
            _captures[fn] = capture
    return capture


@dataclass(frozen=True)
class Code(CachePolicy):
    """The task's code plus the project code it references, transitively (``CODE``).

    Comments, whitespace, docstrings and line numbers do not count; installed packages
    and the standard library are not traced (see ``Packages.auto()``).
    """

    part_name: ClassVar[str] = "code"

    def capture(self, fn: Callable[..., Any], captured: dict[str, Any]) -> None:
        """Decoration hook: trace ``fn`` (see :mod:`resultkit.cache_policies._capture`)."""
        if CAPTURE_KEY not in captured:
            captured[CAPTURE_KEY] = code_capture(fn)

    def constant_key_parts(self, captured: Mapping[str, Any]) -> dict[str, Any] | None:
        """The key part, the same for every call once the trace is final (for compiled keys)."""
        capture = captured.get(CAPTURE_KEY)
        if isinstance(capture, CodeCapture) and capture.is_final:
            return {self.part_name: capture.key_part()}
        return None

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        capture = context.captured.get(CAPTURE_KEY)
        if isinstance(capture, CodeCapture):
            return {self.part_name: capture.key_part()}
        # A context built by hand, without a decorated task: only the source text is known.
        if not context.task_source:
            return None
        return {self.part_name: {"task": _text_digest(context.task_source)}}


def _text_digest(source: str) -> str:
    try:
        return _digest(_canonical(ast.parse(source)))
    except (SyntaxError, ValueError):
        return _digest(source)


CODE = Code()
