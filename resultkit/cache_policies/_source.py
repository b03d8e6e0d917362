"""Digests of a function's or class's code that ignore comments, whitespace, docstrings and line numbers.

``CODE`` keys on these. The text is parsed with :mod:`ast` and written back in a
canonical form (node types and fields, never positions), so reformatting a helper or
editing its comments or docstring leaves its digest unchanged, while any change to
what it does changes it. Fields that are empty or None are left out, so the form does
not change when a newer Python adds an (empty) field to a node.
"""

from __future__ import annotations

import ast
import linecache
import sys
import threading
import types
from typing import Any

import xxhash

from .hashing import code_digest

__all__ = ["source_digest"]

_Indexed = dict[str, list[ast.AST]]
# file name -> (the lines linecache gave, qualname -> definition nodes); reparsed only
# when linecache hands back different lines (the file was edited and re-read).
_modules: dict[str, tuple[list[str], _Indexed]] = {}
_lock = threading.Lock()
_MODULES_KEPT = 256

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def source_digest(obj: Any) -> str:
    """Digest of the function or class ``obj``'s definition (its decorators included).

    Functions and classes without source (typed at a REPL, made by ``exec``, lambdas)
    fall back to their code objects, which carry no line numbers either.
    """
    node = _definition(obj)
    if node is not None:
        return _digest(_canonical(node))
    if isinstance(obj, type):
        members = [
            f"{name}={code_digest(member.__code__)}"
            for name, member in sorted(vars(obj).items())
            if isinstance(member, types.FunctionType)
        ]
        return _digest(f"class {obj.__qualname__}({','.join(members)})")
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        return code_digest(code)
    return _digest(f"<no code: {getattr(obj, '__qualname__', type(obj).__qualname__)}>")


def _digest(text: str) -> str:
    return str(xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass")))


def _definition(obj: Any) -> ast.AST | None:
    """The ``def`` or ``class`` node of ``obj`` in its module's parsed source, or None."""
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(qualname, str) or "<lambda>" in qualname:
        return None
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        filename = code.co_filename
        module_globals: dict[str, Any] | None = getattr(obj, "__globals__", None)
    else:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        filename = getattr(module, "__file__", None) or ""
        module_globals = vars(module) if module is not None else None
    if not filename or filename.startswith("<"):
        return None
    index = _index(filename, module_globals)
    candidates = index.get(qualname) if index else None
    if not candidates:
        return None
    if len(candidates) > 1:
        # Redefinitions under one name: the code object's first line tells them apart.
        first_line = code.co_firstlineno if isinstance(code, types.CodeType) else getattr(
            obj, "__firstlineno__", None)
        for node in candidates:
            if _first_line(node) == first_line:
                return node
    return candidates[-1]


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    lines: list[int] = [d.lineno for d in decorators] + [getattr(node, "lineno", 0)]
    return min(lines)


def _index(filename: str, module_globals: dict[str, Any] | None) -> _Indexed | None:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    with _lock:
        cached = _modules.get(filename)
        if cached is not None and cached[0] is lines:
            return cached[1]
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    index: _Indexed = {}
    _collect(tree, "", index)
    with _lock:
        if len(_modules) >= _MODULES_KEPT:
            _modules.clear()
        _modules[filename] = (lines, index)
    return index


def _collect(node: ast.AST, prefix: str, index: _Indexed) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _DEFINITIONS):
            qualname = prefix + child.name
            index.setdefault(qualname, []).append(child)
            inner = qualname + ("." if isinstance(child, ast.ClassDef) else ".<locals>.")
            _collect(child, inner, index)
        else:
            # Definitions nested in if/try/with blocks keep the enclosing prefix.
            _collect(child, prefix, index)


def _canonical(node: ast.AST) -> str:
    out: list[str] = []
    _write(node, out)
    return "".join(out)


def _is_docstring(statement: ast.AST) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, ast.AST):
        out.append(type(value).__name__)
        out.append("(")
        for name in value._fields:
            field = getattr(value, name, None)
            if name == "body" and isinstance(value, (*_DEFINITIONS, ast.Module)) and field \
                    and _is_docstring(field[0]):
                field = field[1:]  # a docstring documents; it does not change what the code does
            if field is None or (isinstance(field, list) and not field):
                continue
            out.append(name)
            out.append("=")
            _write(field, out)
            out.append(",")
        out.append(")")
    elif isinstance(value, list):
        out.append("[")
        for item in value:
            _write(item, out)
            out.append(",")
        out.append("]")
    else:  # constants and identifiers: type-tagged, so 1, 1.0 and True differ
        out.append(f"{type(value).__name__}:{value!r}")
