"""Key functions compiled once per task: the keys ``compute_key`` gives, minus its per-call work.

A task calls its policy on every call, and for the common policies (``INPUTS``,
``TASK_SOURCE`` and their compounds) everything but the argument digests is the same
for every call of one task. :func:`compile_key` encodes that constant part once and
returns a function of the arguments alone. The bytes hashed are exactly those
``compute_key`` hashes (both go through ``policies.encode_key``), so both give the same
key (a test checks it on random inputs). The per-argument digests come back with the
key (:meth:`CompiledKey.with_digests`) and :meth:`CompiledKey.parts` turns them into the
key parts a record's header keeps, so a call hashes each argument once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import xxhash

from .hashing import hash_value
from .policies import (
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
    TaskSource,
    _source_digest,
    encode_key,
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
    building that mapping. Both return None only when the policy gives no key. The
    ``with_digests`` forms also return the argument digests, for :meth:`parts`.
    """

    __slots__ = ("_constant", "_constant_parts", "_excluded", "_heads", "_memo", "_names", "_order",
                 "_prefix", "_single", "_suffix")

    def __init__(self, prefix: bytes, suffix: bytes, excluded: frozenset[str],
                 parameters: Sequence[str], constant: str | None,
                 constant_parts: Mapping[str, Any] | None = None) -> None:
        self._prefix = prefix + b"{"
        self._suffix = b"}" + suffix
        self._excluded = excluded
        self._constant = constant
        #: The parts that are the same for every call (the task source's digest).
        self._constant_parts = dict(constant_parts or {})
        # (position, name, encoded '"name":"') of each hashed parameter, in key order.
        self._heads: dict[str, bytes] = {}
        order = []
        for name in sorted(set(parameters) - excluded):
            self._heads[name] = _head(name)
            order.append((parameters.index(name), name, self._heads[name]))
        self._order = tuple(order)
        self._names = tuple(name for _, name, _ in order)
        # With one hashed parameter: (position, name, bytes before its digest, bytes after).
        self._single = None
        if len(order) == 1:
            index, name, head = order[0]
            self._single = (index, name, self._prefix + head, b'"' + self._suffix)
        # (key, digest) of recent single int or str arguments: a warm hit repeats its arguments.
        self._memo: dict[int | str, tuple[str, str]] = {}

    def of_args(self, args: Sequence[Any]) -> str | None:
        """The key when ``args`` holds every parameter, positionally and in order."""
        return self.with_digests(args)[0]

    def with_digests(self, args: Sequence[Any]) -> tuple[str | None, tuple[str, ...]]:
        """``(key, digests)`` for ``args`` as in :meth:`of_args`; digests for :meth:`parts`."""
        if self._constant is not None:
            return self._constant, ()
        single = self._single
        if single is not None:  # one hashed parameter: the commonest shape, kept short
            index, name, head, tail = single
            value = args[index]
            cls = type(value)
            if cls is int or cls is str:  # an int never equals a str, so they share one memo
                memo = self._memo.get(value)
                if memo is None:
                    digest = hash_value(value, name=name)
                    memo = (_hexdigest(head + digest.encode() + tail), digest)
                    if len(self._memo) >= _MEMO_SIZE:
                        self._memo.clear()
                    self._memo[value] = memo
                return memo[0], memo[1:]
            digest = hash_value(value, name=name)
            return _hexdigest(head + digest.encode() + tail), (digest,)
        digests = tuple([hash_value(args[index], name=name) for index, name, _ in self._order])
        return self._key_of(digests), digests

    def of_inputs(self, inputs: Mapping[str, Any]) -> str | None:
        """The key for the bound arguments ``inputs`` (parameter name -> value)."""
        return self.inputs_with_digests(inputs)[0]

    def inputs_with_digests(self, inputs: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
        """``(key, digests)`` for the bound arguments ``inputs``, as in :meth:`of_inputs`."""
        if self._constant is not None:
            return self._constant, ()
        excluded = self._excluded
        names = tuple(name for name in sorted(inputs) if name not in excluded)
        digests = tuple([hash_value(inputs[name], name=name) for name in names])
        if names == self._names:
            return self._key_of(digests), digests
        # Names other than the signature's (not seen on the task path): encode them in full.
        body = b",".join([_head(n) + d.encode() + b'"' for n, d in zip(names, digests, strict=True)])
        return _hexdigest(self._prefix + body + self._suffix), digests

    def _key_of(self, digests: Sequence[str]) -> str:
        body = b",".join([head + digest.encode() + b'"'
                          for (_, _, head), digest in zip(self._order, digests, strict=True)])
        return _hexdigest(self._prefix + body + self._suffix)

    def parts(self, digests: Sequence[str]) -> dict[str, Any]:
        """The key parts (as ``policy.key_parts`` gives them) from a call's ``digests``."""
        if self._constant is not None:
            return dict(self._constant_parts)
        return {**self._constant_parts,
                Inputs.part_name: dict(zip(self._names, digests, strict=True))}


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
        key = _hexdigest(encode_key(task_name, constant_parts))
        return CompiledKey(b"", b"", frozenset(), (), key, constant_parts)
    encoded = encode_key(task_name, {**constant_parts, Inputs.part_name: _PLACEHOLDER})
    prefix, found, suffix = encoded.partition(_PLACEHOLDER_JSON)
    if not found or _PLACEHOLDER_JSON in suffix:
        return None  # a task name holding the placeholder: compute keys the general way
    return CompiledKey(prefix, suffix, frozenset(inputs.exclude), parameters, None, constant_parts)


class _NoKey(CompiledKey):
    """A policy that gives no key for any call of this task (``TASK_SOURCE`` without source)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(b"", b"", frozenset(), (), None)

    def with_digests(self, args: Sequence[Any]) -> tuple[str | None, tuple[str, ...]]:
        return None, ()

    def inputs_with_digests(self, inputs: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
        return None, ()
