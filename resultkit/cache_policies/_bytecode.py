"""What a function's bytecode names: globals, closure variables, imports and attribute chains.

``references(fn)`` lists them once per function (cached): ``("global", name, attrs)``,
``("deref", name, attrs)`` for closure variables and ``("module", dotted, attrs)`` for
imports inside the function, where ``attrs`` is the chain of attributes loaded right
after (``helpers.clean`` is ``("global", "helpers", ("clean",))``). Local aliases of
imports (``import numpy as np`` in the body, then ``np.mean``) resolve to the module.
"""

from __future__ import annotations

import dis
import importlib.util
import threading
import types
import weakref

__all__ = ["Ref", "references"]

#: (kind, name, attribute chain); kind is "global", "deref" or "module".
Ref = tuple[str, str, tuple[str, ...]]

_refs_cache: weakref.WeakKeyDictionary[types.FunctionType, tuple[Ref, ...]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()

_LOAD_GLOBAL = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_LOAD_DEREF = frozenset({"LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF"})
_LOAD_FAST = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"})
_LOAD_ATTR = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_STORE = frozenset({"STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL"})


def references(fn: types.FunctionType) -> tuple[Ref, ...]:
    """The references of ``fn``'s code and the code nested in it, in order of appearance."""
    refs = _refs_cache.get(fn)
    if refs is None:
        package = fn.__globals__.get("__package__") or ""
        found: list[Ref] = []
        _scan(fn.__code__, package, {}, found)
        refs = tuple(dict.fromkeys(found))  # unique, in order of appearance
        with _cache_lock:
            _refs_cache[fn] = refs
    return refs


def _scan(code: types.CodeType, package: str, aliases: dict[str, Ref], found: list[Ref]) -> None:
    """Append the references of ``code`` (and the code nested in it) to ``found``."""
    aliases = dict(aliases)  # a nested function sees the imports of the one enclosing it
    instructions = list(dis.get_instructions(code))
    count = len(instructions)
    index = 0
    while index < count:
        instruction = instructions[index]
        op, name = instruction.opname, instruction.argval
        index += 1
        base: Ref | None = None
        if op == "IMPORT_NAME":
            index = _scan_import(instructions, index, package, aliases, found)
            continue
        if op in _LOAD_GLOBAL:
            base = ("global", name, ())
        elif op in _LOAD_DEREF:
            base = aliases.get(name) or ("deref", name, ())
        elif op in _LOAD_FAST:
            base = aliases.get(name)
        if base is None:
            continue
        attributes = list(base[2])
        while index < count and instructions[index].opname in _LOAD_ATTR:
            attributes.append(instructions[index].argval)
            index += 1
        found.append((base[0], base[1], tuple(attributes)))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _scan(const, package, aliases, found)


def _scan_import(instructions: list[dis.Instruction], index: int, package: str,
                 aliases: dict[str, Ref], found: list[Ref]) -> int:
    """Handle the IMPORT_NAME just before ``index``; return the index after its stores."""
    instruction = instructions[index - 1]
    level, fromlist = 0, None
    if index >= 3 and instructions[index - 3].opname in ("LOAD_CONST", "LOAD_SMALL_INT"):
        level = instructions[index - 3].argval or 0
        fromlist = instructions[index - 2].argval
    name = "." * level + (instruction.argval or "")
    try:
        module = importlib.util.resolve_name(name, package) if level else name
    except (ImportError, ValueError):
        return index
    found.append(("module", module, ()))
    count = len(instructions)
    if fromlist is None and index < count and instructions[index].opname == "IMPORT_FROM":
        # import a.b.c as d: IMPORT_FROMs (and stack shuffles) fetch the submodule itself
        while index < count and instructions[index].opname in ("IMPORT_FROM", "SWAP", "POP_TOP", "ROT_TWO"):
            index += 1
        if index < count and instructions[index].opname in _STORE:
            aliases[instructions[index].argval] = ("module", module, ())
            index += 1
        return index
    while index + 1 < count and instructions[index].opname == "IMPORT_FROM":
        attribute = instructions[index].argval
        found.append(("module", module, (attribute,)))
        if instructions[index + 1].opname in _STORE:
            aliases[instructions[index + 1].argval] = ("module", module, (attribute,))
        index += 2
    if index < count and instructions[index].opname in _STORE and fromlist is None:
        stored = instructions[index].argval
        aliases[stored] = ("module", module.partition(".")[0] if stored == module.partition(".")[0] else module, ())
        index += 1
    return index
