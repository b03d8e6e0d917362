"""Cache policies: composable rules that turn a task call into a cache key.

>>> from resultkit.cache_policies import INPUTS, TASK_SOURCE, CacheKeyContext
>>> ctx = CacheKeyContext(task_name="demo.add", task_source="def add(x, y): ...", call_id="c1")
>>> key = (INPUTS + TASK_SOURCE).compute_key(ctx, {"x": 1, "y": 2})
>>> key == (TASK_SOURCE + INPUTS).compute_key(ctx, {"y": 2, "x": 1})
True
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import orjson
import xxhash

from .._enums import IsolationLevel, isolation_level_of
from .._types import KeyStorage, LockManagerLike
from ..errors import ConfigurationError, ResultkitError
from .context import CacheKeyContext
from .hashing import Hasher, hash_value

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "NoCache",
    "PolicyNotImplementedError",
    "RunId",
    "TaskSource",
    "encode_key",
]

_P = TypeVar("_P", bound="CachePolicy")

#: Bumped if the key derivation ever changes, so old and new keys never collide.
_KEY_VERSION = "resultkit-key-1"

_CONFIG_FIELDS = ("key_storage", "isolation_level", "lock_manager")


@dataclass(frozen=True)
class CachePolicy:
    """Base of every cache policy; subclass it and override :meth:`compute_key` for your own.

    Policies compose with ``+``, drop an argument with ``- "name"`` and carry
    transaction settings via :meth:`configure`.
    """

    # Transaction and storage settings, held here for Prefect's API and never used by this
    # layer: the front door resolves them (resolve_storage, transaction()).
    #: Where records keyed by this policy live (a storage, path or URL); None: the task's.
    key_storage: KeyStorage | None = field(default=None, kw_only=True)
    #: Transaction isolation level (``resultkit.transactions.IsolationLevel``); None: the default.
    isolation_level: IsolationLevel | None = field(default=None, kw_only=True)
    #: Lock manager for SERIALIZABLE isolation; None: the store's or the storage's default.
    lock_manager: LockManagerLike | None = field(default=None, kw_only=True)

    #: Name of this policy's entry in :meth:`key_parts`, which also orders parts in a compound.
    part_name: ClassVar[str] = "custom"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # compute_key and key_parts are defined through each other: a policy supplies one.
        if cls.compute_key is CachePolicy.compute_key and cls.key_parts is CachePolicy.key_parts:
            raise TypeError(
                f"cache policy {cls.__qualname__} must define compute_key(context, inputs) "
                "or key_parts(context, inputs)"
            )

    def compute_key(self, task_ctx: Any = None, inputs: Mapping[str, Any] | None = None,
                    flow_parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> str | None:
        """The cache key for one call, or None when this call must not be cached.

        Prefect's signature: ``task_ctx`` is the call's :class:`CacheKeyContext` (None or a
        Prefect-shaped context also work), ``flow_parameters`` the enclosing flow's.
        """
        context = CacheKeyContext.coerce(kwargs.pop("context", task_ctx), flow_parameters)
        parts = self.key_parts(context, inputs or {})
        return None if parts is None else _finalize_key(context, parts)

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """What the key is made of (part name -> digest), for explaining misses; None: no key."""
        if type(self) is CachePolicy:
            raise PolicyNotImplementedError(
                "CachePolicy is the base class: use INPUTS, TASK_SOURCE, DEFAULT, ... or subclass it "
                "and define compute_key or key_parts"
            )
        key = call_compute_key(self, context, inputs)
        return None if key is None else {self._part_label(): key}

    def key_with_parts(self, context: CacheKeyContext,
                       inputs: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """The key and its parts from one derivation: each input is hashed once.

        A policy that defines ``compute_key`` gives its key as computed (its part is
        that key); one that defines only ``key_parts`` gives the digest of its parts.
        """
        cls = type(self)
        if cls.compute_key is not CachePolicy.compute_key:
            key = call_compute_key(self, context, inputs)
            if key is None:
                return None, None
            if cls.key_parts is CachePolicy.key_parts:
                return key, {self._part_label(): key}
            return key, self.key_parts(context, inputs)
        parts = self.key_parts(context, inputs)
        return (None, None) if parts is None else (_finalize_key(context, parts), parts)

    def _part_label(self) -> str:
        if self.part_name != "custom":
            return self.part_name
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    def configure(
        self: _P,
        key_storage: KeyStorage | None = None,
        isolation_level: IsolationLevel | str | None = None,
        lock_manager: LockManagerLike | None = None,
    ) -> _P:
        """Return a copy with the given transaction settings; the original (and constants) never change.

        >>> from resultkit.cache_policies import INPUTS
        >>> INPUTS.configure(key_storage="/tmp/keys") is INPUTS
        False
        """
        level = None if isolation_level is None else isolation_level_of(isolation_level, "configure()")
        values: tuple[object, ...] = (key_storage, level, lock_manager)
        changes: dict[str, Any] = {
            name: value for name, value in zip(_CONFIG_FIELDS, values, strict=True) if value is not None
        }
        return dataclasses.replace(self, **changes)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        # NO_CACHE + P == P (and P + NO_CACHE == P): NO_CACHE adds nothing but its configuration.
        for none, kept in ((self, other), (other, self)):
            if isinstance(none, NoCache):
                config = _merge_configs([kept._config(), none._config()])
                return kept if config == kept._config() else dataclasses.replace(kept, **config)
        combined = CompoundCachePolicy(policies=(self, other))
        if len(combined.policies) == 1 and not isinstance(self, CompoundCachePolicy) \
                and not isinstance(other, CompoundCachePolicy):
            # P + P: a lone part needs no compound wrapper; it gives the same key either way.
            return dataclasses.replace(combined.policies[0], **combined._config())
        return combined

    def __sub__(self: _P, name: str) -> _P:
        if not isinstance(name, str):
            raise TypeError(
                f"can only subtract an argument name (str) from a cache policy, got "
                f"{type(name).__name__} {name!r}; write e.g. INPUTS - 'client'"
            )
        return self  # only Inputs (and compounds holding one) have arguments to drop

    @classmethod
    def from_cache_key_fn(
        cls, cache_key_fn: Callable[[CacheKeyContext, dict[str, Any]], str | None]
    ) -> CacheKeyFnPolicy:
        """A policy whose key is ``cache_key_fn(context, parameters)``."""
        return CacheKeyFnPolicy(cache_key_fn)

    def _config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CONFIG_FIELDS}


def encode_key(task_name: str, parts: Mapping[str, Any]) -> bytes:
    """The bytes a key is the digest of: key version, task identity and parts.

    The one encoding of a key: ``compute_key`` and the compiled keys of
    ``_compiled.py`` both hash exactly these bytes. Parts are str digests keyed by
    name, so sorted-key JSON is canonical and far cheaper than the general hasher.
    """
    return orjson.dumps([_KEY_VERSION, task_name, parts], option=orjson.OPT_SORT_KEYS)


def _finalize_key(context: CacheKeyContext, parts: Mapping[str, Any]) -> str:
    # The task identity is in every built-in key: two tasks with equal inputs never share one.
    try:
        encoded = encode_key(context.task_name, parts)
    except TypeError:  # a custom policy's parts that JSON cannot hold
        hasher = Hasher()
        hasher.update((_KEY_VERSION, context.task_name, dict(parts)))
        return hasher.hexdigest()
    return str(xxhash.xxh3_128_hexdigest(encoded))


class PolicyNotImplementedError(ResultkitError, NotImplementedError, TypeError):
    """``CachePolicy`` itself computes no key (also a ``NotImplementedError``, as in Prefect)."""


@functools.lru_cache(maxsize=256)
def _passes_flow_parameters(compute_key: Callable[..., Any]) -> bool:
    """Whether a ``compute_key`` takes Prefect's third argument, ``flow_parameters``."""
    try:
        params = list(inspect.signature(compute_key).parameters.values())[1:]  # drop self
    except (TypeError, ValueError):
        return True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return (sum(p.kind in kinds for p in params) >= 3
            or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params))


def call_compute_key(policy: CachePolicy, context: CacheKeyContext,
                     inputs: Mapping[str, Any]) -> str | None:
    """``policy.compute_key`` with Prefect's arguments, or the two a resultkit policy takes."""
    method = type(policy).compute_key
    if _passes_flow_parameters(method):
        key: str | None = method(policy, context, inputs, context.flow_parameters)
    else:  # a policy written for resultkit's two-argument signature
        key = method(policy, context, inputs)
    return key


@functools.lru_cache(maxsize=1024)
def _source_digest(source: str) -> str:
    # One task's source is hashed on every call; remember it (str hashes are cached too).
    return hash_value(source)


@dataclass(frozen=True)
class NoCache(CachePolicy):
    """Never computes a key: every call runs. ``NO_CACHE + P == P``."""

    part_name: ClassVar[str] = "no_cache"

    def compute_key(self, task_ctx: Any = None, inputs: Mapping[str, Any] | None = None,
                    flow_parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> str | None:
        return None

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The call's bound arguments (defaults applied), each hashed separately.

    >>> Inputs(exclude=["client"]) == INPUTS - "client"
    True
    """

    #: Argument names left out of the key: a list, as in Prefect (sorted, read-only).
    exclude: list[str] = field(default_factory=list)

    part_name: ClassVar[str] = "inputs"

    def __post_init__(self) -> None:
        exclude = self.exclude
        if isinstance(exclude, str):
            exclude = (exclude,)
        try:
            names = tuple(sorted(set(exclude)))
        except TypeError:
            raise ConfigurationError(
                f"Inputs(exclude=...) takes argument names, got {exclude!r}; write e.g. Inputs(exclude=['client'])"
            ) from None
        for name in names:
            if not isinstance(name, str):
                raise ConfigurationError(
                    f"Inputs(exclude=...) takes argument names (str), got {type(name).__name__} {name!r}"
                )
        object.__setattr__(self, "exclude", _Names(names))

    def __hash__(self) -> int:  # exclude is a list; equal policies have equal names
        return hash((Inputs, tuple(self.exclude)))

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        excluded = self.exclude
        digests = {
            name: hash_value(inputs[name], name=name) for name in sorted(inputs) if name not in excluded
        }
        return {self.part_name: digests}

    def __sub__(self, name: str) -> Inputs:
        super().__sub__(name)  # type check of name
        return dataclasses.replace(self, exclude=[*self.exclude, name])


class _Names(list):  # type: ignore[type-arg]
    """A list that cannot change: ``Inputs.exclude`` is a list as in Prefect, yet the
    module constants (``INPUTS``) must never be altered through it."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "Inputs.exclude cannot be changed in place; make a new policy, e.g. "
            "Inputs(exclude=[...]) or INPUTS - 'name'"
        )

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Names, (tuple(self),))

    def __copy__(self) -> _Names:
        return self

    def __deepcopy__(self, memo: Any) -> _Names:
        return self


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The task function's source text, captured at decoration."""

    part_name: ClassVar[str] = "task_source"

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        if not context.task_source:
            return None
        return {self.part_name: _source_digest(context.task_source)}


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """The enclosing flow run's parameters; no key part outside a flow."""

    part_name: ClassVar[str] = "flow_parameters"

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        if context.flow_parameters is None:
            return None
        params = context.flow_parameters
        return {self.part_name: {name: hash_value(params[name], name=name) for name in sorted(params)}}


@dataclass(frozen=True)
class RunId(CachePolicy):
    """The enclosing flow run's id; outside a flow the call's own id (never a hit across calls)."""

    part_name: ClassVar[str] = "run_id"

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        run_id = context.run_id if context.run_id is not None else context.call_id
        if not run_id:
            return None
        return {self.part_name: hash_value(run_id)}


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """Key from ``cache_key_fn(context, parameters)``, used as the storage key as given.

    >>> policy = CacheKeyFnPolicy(lambda context, parameters: f"users/{parameters['user_id']}")
    >>> ctx = CacheKeyContext(task_name="m.load", task_source="", call_id="c")
    >>> policy.compute_key(ctx, {"user_id": 7})
    'users/7'
    """

    cache_key_fn: Callable[[CacheKeyContext, dict[str, Any]], str | None] | None = None

    part_name: ClassVar[str] = "cache_key_fn"

    def __post_init__(self) -> None:
        if self.cache_key_fn is not None and not callable(self.cache_key_fn):
            raise ConfigurationError(
                f"CacheKeyFnPolicy needs a callable cache_key_fn(context, parameters) -> str | None, "
                f"got {type(self.cache_key_fn).__name__} {self.cache_key_fn!r}"
            )

    def compute_key(self, task_ctx: Any = None, inputs: Mapping[str, Any] | None = None,
                    flow_parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> str | None:
        if self.cache_key_fn is None:  # as in Prefect: no function, no key
            return None
        context = kwargs.pop("context", task_ctx)
        key = self.cache_key_fn(context, dict(inputs or {}))
        if key is None:
            return None
        fn_name = getattr(self.cache_key_fn, "__qualname__", repr(self.cache_key_fn))
        if not isinstance(key, str) or not key:
            raise ConfigurationError(
                f"cache_key_fn {fn_name} returned {type(key).__name__} {key!r}; it must return a "
                "non-empty str (a relative storage key such as 'reports/2026-11') or None to skip caching"
            )
        return key  # a storage key as given: checked where it meets storage (the task call)

    def _part_label(self) -> str:
        fn = self.cache_key_fn
        identity = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
        return f"{self.part_name}:{identity}"


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    """Several policies in one key; the key does not depend on the order they were added in.

    Nested compounds are flattened, every ``Inputs`` merged into one (excluding the
    union of their exclusions), duplicates and ``NO_CACHE`` removed.
    """

    policies: tuple[CachePolicy, ...] = ()

    part_name: ClassVar[str] = "compound"

    def __post_init__(self) -> None:
        config = _merge_configs([self._config(), *(p._config() for p in self.policies)])
        flat = _flatten(self.policies)
        for name, value in config.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "policies", flat)

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        result: dict[str, Any] = {}
        labelled: list[tuple[str, Any]] = []
        clash = False
        for policy in self.policies:
            # A part that raises propagates: it never silently drops out of the key.
            parts = policy.key_parts(context, inputs)
            if parts is not None:
                for label, value in parts.items():
                    clash = clash or label in result
                    result[label] = value
                    labelled.append((label, value))
        if not labelled:
            return None
        if not clash:
            return result  # the key's encoding sorts labels, so dict order is irrelevant
        # Same-named parts (two custom policies of one class): keep all, ordered by value
        # so the key does not depend on the order they were added in.
        labelled.sort(key=lambda item: (item[0], hash_value(item[1])))
        result = {}
        for label, value in labelled:
            unique, suffix = label, 2
            while unique in result:
                unique, suffix = f"{label}#{suffix}", suffix + 1
            result[unique] = value
        return result

    def __sub__(self, name: str) -> CompoundCachePolicy:
        super().__sub__(name)  # type check of name
        if not any(isinstance(p, Inputs) for p in self.policies):
            return self  # no arguments in the key: nothing to drop (as in Prefect)
        return dataclasses.replace(self, policies=tuple(p - name for p in self.policies))


def _flatten(policies: Iterable[CachePolicy]) -> tuple[CachePolicy, ...]:
    flat: list[CachePolicy] = []
    inputs: list[Inputs] = []
    for policy in policies:
        if isinstance(policy, CompoundCachePolicy):
            members: tuple[CachePolicy, ...] = policy.policies
        else:
            members = (policy,)
        for member in members:
            if isinstance(member, NoCache):
                continue
            # Configuration lives on the compound; parts are kept bare so duplicates compare equal.
            configured = any(value is not None for value in member._config().values())
            bare = (
                dataclasses.replace(member, key_storage=None, isolation_level=None, lock_manager=None)
                if configured
                else member
            )
            if isinstance(bare, Inputs):
                inputs.append(bare)
            elif bare not in flat:
                flat.append(bare)
    if inputs:
        # Merged Inputs exclude what any of them excluded: an exclusion usually means
        # "this argument cannot or must not be hashed".
        flat.append(Inputs(exclude=[name for i in inputs for name in i.exclude]))
    # Canonical order, so policies composed in any order compare equal.
    flat.sort(key=lambda policy: policy._part_label())
    return tuple(flat)


def _merge_configs(configs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = dict.fromkeys(_CONFIG_FIELDS)
    for config in configs:
        for name, value in config.items():
            if value is None:
                continue
            current = merged[name]
            if current is not None and current is not value and current != value:
                raise ValueError(
                    f"cannot combine cache policies configured with different {name}: "
                    f"{current!r} and {value!r}; configure only one of them, or both alike"
                )
            merged[name] = value
    return merged


NO_CACHE = NoCache()
INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID
