"""Key functions compiled once per task: the keys ``compute_key`` gives, minus its per-call work.

A task calls its policy on every call, and for the common policies (``INPUTS``,
``TASK_SOURCE`` and their compounds) everything but the argument digests is the same
for every call of one task. :func:`compile_key` encodes that constant part once and
returns a function of the arguments alone. The bytes hashed are exactly those
``compute_key`` hashes, so both give the same key (a test checks it on random inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import xxhash

from .hashing import hash_value
from .policies import (
    _KEY_VERSION,
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
    TaskSource,
    _source_digest,
)

__all__ = ["CompiledKey", "compile_key"]

# Stands in for the inputs part while the constant part is encoded; it cannot clash with
# a real digest (32 hex characters) and orjson always escapes NUL the same way.
_PLACEHOLDER = "\x00resultkit-inputs\x00"
_PLACEHOLDER_JSON = orjson.dumps(_PLACEHOLDER)

_hexdigest: Callable[[bytes], str] = xxhash.xxh3_128_hexdigest
_MEMO_SIZE = 1024


class CompiledKey:
    """``compute_key`` for one task and policy, as a function of the call's arguments.

    :meth:`of_inputs` takes the bound arguments (a mapping, as ``compute_key`` does);
    :meth:`of_args` takes every parameter positionally, in signature order, and skips
    building that mapping. Both return None only when the policy gives no key.
    """

    __slots__ = ("_constant", "_excluded", "_heads", "_memo", "_order", "_prefix", "_single", "_suffix")

    def __init__(self, prefix: bytes, suffix: bytes, excluded: frozenset[str],
                 parameters: Sequence[str], constant: str | None) -> None:
        self._prefix = prefix + b"{"
        self._suffix = b"}" + suffix
        self._excluded = excluded
        self._constant = constant
        # (position, name, encoded '"name":"') of each hashed parameter, in key order.
        self._heads: dict[str, bytes] = {}
        order = []
        for name in sorted(set(parameters) - excluded):
            self._heads[name] = _head(name)
            order.append((parameters.index(name), name, self._heads[name]))
        self._order = tuple(order)
        # With one hashed parameter: (position, name, bytes before its digest, bytes after).
        self._single = None
        if len(order) == 1:
            index, name, head = order[0]
            self._single = (index, name, self._prefix + head, b'"' + self._suffix)
        # Keys of recent single int or str arguments: a warm hit repeats its arguments.
        self._memo: dict[int | str, str] = {}

    def of_args(self, args: Sequence[Any]) -> str | None:
        """The key when ``args`` holds every parameter, positionally and in order."""
        if self._constant is not None:
            return self._constant
        single = self._single
        if single is not None:  # one hashed parameter: the commonest shape, kept short
            index, name, head, tail = single
            value = args[index]
            cls = type(value)
            if cls is int or cls is str:  # an int never equals a str, so they share one memo
                key = self._memo.get(value)
                if key is None:
                    key = _hexdigest(head + hash_value(value, name=name).encode() + tail)
                    if len(self._memo) >= _MEMO_SIZE:
                        self._memo.clear()
                    self._memo[value] = key
                return key
            return _hexdigest(head + hash_value(value, name=name).encode() + tail)
        body = b",".join([
            head + hash_value(args[index], name=name).encode() + b'"'
            for index, name, head in self._order
        ])
        return _hexdigest(self._prefix + body + self._suffix)

    def of_inputs(self, inputs: Mapping[str, Any]) -> str | None:
        """The key for the bound arguments ``inputs`` (parameter name -> value)."""
        if self._constant is not None:
            return self._constant
        excluded, heads = self._excluded, self._heads
        body = b",".join([
            (heads.get(name) or _head(name)) + hash_value(inputs[name], name=name).encode() + b'"'
            for name in sorted(inputs) if name not in excluded
        ])
        return _hexdigest(self._prefix + body + self._suffix)


def _head(name: str) -> bytes:
    return orjson.dumps(name) + b':"'


def compile_key(policy: CachePolicy, task_name: str, task_source: str,
                parameters: Sequence[str], captured: Mapping[str, Any] | None = None) -> CompiledKey | None:
    """A :class:`CompiledKey` for ``policy`` on the task named ``task_name``, or None.

    None when the key depends on more than the arguments (a run id, flow parameters,
    a key function, a policy of the user's own): those keys are computed per call.
    A part whose key part is the same for every call of the task says so with
    ``constant_key_parts(captured)`` (``CODE``, ``Packages``), ``captured`` being what
    the task captured at decoration; None from it means "per call".

    >>> from resultkit.cache_policies import INPUTS, CacheKeyContext
    >>> compiled = compile_key(INPUTS, "demo.add", "", ["x", "y"])
    >>> ctx = CacheKeyContext(task_name="demo.add", task_source="")
    >>> compiled.of_args((1, 2)) == INPUTS.compute_key(ctx, {"x": 1, "y": 2})
    True
    """
    members = policy.policies if type(policy) is CompoundCachePolicy else (policy,)
    constant_parts: dict[str, Any] = {}
    inputs: Inputs | None = None
    for member in members:
        if type(member) is Inputs:
            inputs = member
        elif type(member) is TaskSource:
            if task_source:
                constant_parts[TaskSource.part_name] = _source_digest(task_source)
        else:
            constant = getattr(member, "constant_key_parts", None)
            parts = constant(captured or {}) if callable(constant) else None
            if parts is None or any(label in constant_parts for label in parts):
                return None  # per call (or two parts of one label: the compound orders those)
            constant_parts.update(parts)
    if inputs is None:  # the same key for every call, or none at all
        if not constant_parts:
            return _NoKey()
        key = _hexdigest(_encode_key(task_name, constant_parts))
        return CompiledKey(b"", b"", frozenset(), (), key)
    encoded = _encode_key(task_name, {**constant_parts, Inputs.part_name: _PLACEHOLDER})
    prefix, found, suffix = encoded.partition(_PLACEHOLDER_JSON)
    if not found or _PLACEHOLDER_JSON in suffix:
        return None  # a task name holding the placeholder: compute keys the general way
    return CompiledKey(prefix, suffix, frozenset(inputs.exclude), parameters, None)


def _encode_key(task_name: str, parts: Mapping[str, Any]) -> bytes:
    # Must match policies._finalize_key byte for byte.
    return orjson.dumps([_KEY_VERSION, task_name, parts], option=orjson.OPT_SORT_KEYS)


class _NoKey(CompiledKey):
    """A policy that gives no key for any call of this task (``TASK_SOURCE`` without source)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(b"", b"", frozenset(), (), None)

    def of_args(self, args: Sequence[Any]) -> str | None:
        return None

    def of_inputs(self, inputs: Mapping[str, Any]) -> str | None:
        return None
