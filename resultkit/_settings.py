"""Defaults for a block of code: ``settings()`` blocks, flows, environment, config file.

Precedence, highest first: task option > innermost flow or ``settings`` block >
environment (``RESULTKIT_*``) > ``[tool.resultkit]`` in ``pyproject.toml`` > built-in.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import _env
from ._enums import isolation_level_of
from .errors import ConfigurationError

__all__ = ["SETTING_NAMES", "EffectiveSettings", "current_layer", "effective_settings",
           "layer_token", "layer_values", "pushed_layer", "restored_layer", "settings",
           "settings_fingerprint"]

#: Option names a ``settings()`` block (and a flow) may set.
SETTING_NAMES = ("result_storage", "result_serializer", "persist_result", "refresh_cache",
                 "isolation_level", "task_runner")

# Environment variables that change what a task call resolves to; read on every call
# (cheap) so a changed environment is honoured without restarting.
_ENV_NAMES = tuple("RESULTKIT_" + n for n in (
    "HOME", "DEFAULT_STORAGE", "DEFAULT_SERIALIZER", "PERSIST_BY_DEFAULT",
    "REFRESH_CACHE", "DISABLE_CACHING", "SIGNING_KEY", "ISOLATION_LEVEL",
))


class _Layer:
    """The merged defaults of every open flow and ``settings`` block (innermost wins).

    Hashed by identity: a layer is created once per block, so it keys resolution caches.
    ``token`` names it across processes (see :func:`layer_token`).
    """

    __slots__ = ("token", "values")

    def __init__(self, values: Mapping[str, Any], token: str | None = None) -> None:
        self.values = dict(values)
        self.token = token

    def __repr__(self) -> str:
        return f"_Layer({self.values!r})"


_EMPTY = _Layer({})
_current: contextvars.ContextVar[_Layer] = contextvars.ContextVar("resultkit_settings", default=_EMPTY)


def _validate(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(SETTING_NAMES))
    if unknown:
        raise ConfigurationError(
            f"{where} got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid options are {', '.join(SETTING_NAMES)}"
        )
    for name in ("persist_result", "refresh_cache"):
        value = options.get(name)
        if value is not None and not isinstance(value, bool):
            raise ConfigurationError(
                f"{where}: {name} must be True, False or None, got {type(value).__name__} {value!r}"
            )
    if options.get("isolation_level") is not None:
        options = {**options, "isolation_level": isolation_level_of(options["isolation_level"], where)}
    runner = options.get("task_runner")
    if runner is not None:
        from .task_runners import TaskRunner

        if not isinstance(runner, TaskRunner):
            raise ConfigurationError(
                f"{where}: task_runner must be a TaskRunner such as ThreadPoolTaskRunner() or "
                f"DaskTaskRunner() from resultkit.task_runners, got {type(runner).__name__} {runner!r}"
            )
    return {k: v for k, v in options.items() if v is not None}


@contextmanager
def pushed_layer(options: Mapping[str, Any], where: str = "settings()") -> Iterator[None]:
    """Open a block whose non-None ``options`` override the enclosing block's."""
    values = _validate(options, where)
    outer = _current.get()
    token = _current.set(_Layer({**outer.values, **values}) if values else outer)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def settings(**defaults: Any) -> Iterator[None]:
    """Give a block of code the same defaults a flow gives its tasks, without a flow.

    Options: ``result_storage``, ``result_serializer``, ``persist_result``,
    ``refresh_cache``, ``isolation_level`` (the default for every task call, e.g.
    ``"SERIALIZABLE"``) and ``task_runner`` (what ``t.submit``/``t.map`` run on).

    >>> with settings(result_storage="/tmp/results", persist_result=True):  # doctest: +SKIP
    ...     expensive(1)
    """
    with pushed_layer(defaults, "settings()"):
        yield


def current_layer() -> _Layer:
    """The innermost flow or ``settings`` block's merged defaults."""
    return _current.get()


def layer_values() -> dict[str, Any]:
    """A copy of the merged defaults of the open flows and ``settings`` blocks."""
    return dict(_current.get().values)


_layer_tokens = itertools.count()
_TOKEN_PREFIX = uuid.uuid4().hex[:16]


def layer_token() -> str | None:
    """A name for the defaults in force here, the same for every call made under them.

    Unique across processes; None when no flow or ``settings`` block is open.
    """
    layer = _current.get()
    if layer is _EMPTY:
        return None
    if layer.token is None:
        layer.token = f"{_TOKEN_PREFIX}-{next(_layer_tokens)}"
    return layer.token


# Layers rebuilt from snapshots, by token: every call restored from the same caller's
# defaults gets the same layer, so its resolved plan (and memory tier) is reused.
_restored: dict[str, _Layer] = {}
_restored_guard = threading.Lock()


@contextmanager
def restored_layer(values: Mapping[str, Any], token: str | None = None) -> Iterator[None]:
    """Make ``values`` (from :func:`layer_values`, maybe elsewhere) the defaults in force.

    Replaces, rather than merges with, whatever is open here: the block looks as it did
    where the values were taken. ``token`` (from :func:`layer_token`) names the values,
    so restoring them again reuses one layer.
    """
    if not values:
        layer = _EMPTY
    elif token is None:
        layer = _Layer(values)
    else:
        with _restored_guard:
            layer = _restored.get(token)  # type: ignore[assignment]
            if layer is None:
                if len(_restored) >= 256:
                    _restored.clear()
                layer = _restored[token] = _Layer(values, token)
    reset = _current.set(layer)
    try:
        yield
    finally:
        _current.reset(reset)


# os.environ.get encodes the name and decodes the value on every call (~1 us each); the
# hot path reads the raw bytes dict behind it instead (kept in sync by os.environ itself).
_RAW_ENVIRON: dict[bytes, bytes] | None = getattr(os.environ, "_data", None)
_RAW_ENV_NAMES = tuple(os.fsencode(name) for name in _ENV_NAMES)
if not isinstance(_RAW_ENVIRON, dict) or not all(isinstance(k, bytes) for k in list(_RAW_ENVIRON)[:1]):
    _RAW_ENVIRON = None  # pragma: no cover - not CPython on POSIX


_N0, _N1, _N2, _N3, _N4, _N5, _N6, _N7 = _RAW_ENV_NAMES


def settings_fingerprint() -> tuple[Any, ...]:
    """Everything the effective settings depend on; equal fingerprints, equal settings."""
    raw = _RAW_ENVIRON
    if raw is None:  # pragma: no cover - not CPython on POSIX
        return (_current.get(), os.getcwd(), *[os.environ.get(name) for name in _ENV_NAMES])
    # Unrolled: this runs on every task call, and a loop costs more than the lookups.
    get = raw.get
    return (_current.get(), os.getcwd(), get(_N0), get(_N1), get(_N2), get(_N3), get(_N4),
            get(_N5), get(_N6), get(_N7))


@dataclass(frozen=True)
class EffectiveSettings:
    """Defaults after merging the block, environment, config file and built-ins."""

    #: A storage spec (instance, path, URL or slug) for ``resolve_storage``.
    result_storage: Any
    #: A serializer spec (instance or name) for ``resolve_serializer``.
    result_serializer: Any
    persist_result: bool
    refresh_cache: bool
    disable_caching: bool
    #: The default ``IsolationLevel`` for task calls, or None (each policy's own, else
    #: ``READ_COMMITTED``).
    isolation_level: Any = None


def effective_settings() -> EffectiveSettings:
    """The defaults in force here (cached per fingerprint)."""
    return _resolve(settings_fingerprint())


@lru_cache(maxsize=64)
def _resolve(fingerprint: tuple[Any, ...]) -> EffectiveSettings:
    block = fingerprint[0].values
    storage = block.get("result_storage")
    if storage is None:
        storage = _env.env_setting("default_storage") or (_env.resultkit_home() / "storage")
    serializer = block.get("result_serializer")
    if serializer is None:
        serializer = _env.env_setting("default_serializer") or "pickle"
    persist = block.get("persist_result")
    if persist is None:
        persist = _env.env_bool("persist_by_default", False)
    refresh = block.get("refresh_cache")
    if refresh is None:
        refresh = _env.env_bool("refresh_cache", False)
    isolation = block.get("isolation_level")
    if isolation is None:
        configured = _env.env_setting("isolation_level")
        if configured not in (None, ""):
            isolation = isolation_level_of(
                configured, "RESULTKIT_ISOLATION_LEVEL (or [tool.resultkit] isolation_level)")
    return EffectiveSettings(
        isolation_level=isolation,
        result_storage=storage,
        result_serializer=serializer,
        persist_result=persist,
        refresh_cache=refresh,
        disable_caching=_env.env_bool("disable_caching", False),
    )
