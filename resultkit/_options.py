"""Task and flow options: one frozen object each, validated once at decoration."""

from __future__ import annotations

import dataclasses
import os
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import ConfigurationError

__all__ = ["STORAGE_KEY_FIELDS", "FlowOptions", "TaskOptions", "retry_delay"]

#: Names a ``result_storage_key`` template may use.
STORAGE_KEY_FIELDS = ("parameters", "task_name", "flow_name", "flow_run_id", "task_run_id", "flow_run",
                      "task_run")

# Setting any of these makes a task persist when persist_result is None (SPEC 1).
_PERSIST_IMPLYING = ("cache_policy", "cache_key_fn", "result_storage", "result_serializer",
                     "result_storage_key")


def _check_bool(where: str, name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise ConfigurationError(f"{where}: {name} must be True, False or None, got {type(value).__name__} {value!r}")


def _check_retries(where: str, retries: Any, delay: Any) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(f"{where}: retries must be an int >= 0, got {retries!r}")
    delays = delay if isinstance(delay, (list, tuple)) else [delay]
    for d in delays:
        if isinstance(d, bool) or not isinstance(d, (int, float)) or d < 0:
            raise ConfigurationError(
                f"{where}: retry_delay_seconds must be a number >= 0 or a list of them, got {delay!r}"
            )


def _check_storage(where: str, value: Any) -> None:
    from .storage.base import Storage

    if value is not None and not isinstance(value, (Storage, str, os.PathLike)):
        raise ConfigurationError(
            f"{where}: result_storage must be a Storage, a path, a URL or a saved slug, "
            f"got {type(value).__name__} {value!r}"
        )


def _check_serializer(where: str, value: Any) -> None:
    if value is None:
        return
    from .serializers.base import resolve_serializer

    try:
        resolve_serializer(value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _check_timeout(where: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ConfigurationError(
            f"{where}: timeout_seconds must be a number of seconds > 0 or None, got {value!r}"
        )


def _check_labels(where: str, description: Any, version: Any, tags: Any) -> None:
    for name, value in (("description", description), ("version", version)):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{where}: {name} must be a str or None, got {type(value).__name__} {value!r}")
    if not all(isinstance(tag, str) and tag for tag in tags):
        raise ConfigurationError(f"{where}: tags must be non-empty strs, e.g. tags=['nightly'], got {list(tags)!r}")


def _tags(value: Any) -> tuple[str, ...]:
    """``tags=`` as given (None, a str or an iterable of them) -> sorted unique tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise ConfigurationError(f"tags must be an iterable of strs, e.g. tags=['nightly'], got {value!r}") from None
    if not all(isinstance(tag, str) for tag in items):
        raise ConfigurationError(f"tags must be strs, e.g. tags=['nightly'], got {items!r}")
    return tuple(sorted(set(items)))


def _replace(options: Any, kind: str, overrides: dict[str, Any]) -> Any:
    valid = {f.name for f in dataclasses.fields(options)} - {"given"}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigurationError(
            f"unknown {kind} option(s) {', '.join(map(repr, unknown))}; valid options are "
            f"{', '.join(sorted(valid))}"
        )
    if "tags" in overrides:
        overrides = {**overrides, "tags": _tags(overrides["tags"])}
    return dataclasses.replace(options, **overrides, given=options.given | frozenset(overrides))


def retry_delay(delay: float | Sequence[float], attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based); a list's last entry repeats."""
    if isinstance(delay, (list, tuple)):
        return float(delay[min(attempt, len(delay) - 1)]) if delay else 0.0
    return float(delay)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TaskOptions:
    """Every ``@task`` option; None means "inherit" (from flow, settings, environment)."""

    name: str | None = None
    cache_policy: Any = None
    cache_key_fn: Callable[..., str | None] | None = None
    cache_expiration: timedelta | None = None
    refresh_cache: bool | None = None
    persist_result: bool | None = None
    result_storage: Any = None
    result_serializer: Any = None
    result_storage_key: str | None = None
    cache_result_in_memory: bool = True
    retries: int = 0
    retry_delay_seconds: float | Sequence[float] = 0
    description: str | None = None
    tags: tuple[str, ...] = ()
    version: str | None = None
    timeout_seconds: float | None = None
    #: None: as the enclosing flow says (default False).
    log_prints: bool | None = None
    #: The option names set explicitly (``cache_policy=None`` differs from not given).
    given: frozenset[str] = dataclasses.field(default=frozenset(), compare=False)

    def replace(self, **overrides: Any) -> TaskOptions:
        """A copy with ``overrides``; unknown names raise ``ConfigurationError``."""
        result: TaskOptions = _replace(self, "task", overrides)
        return result

    def implies_persistence(self) -> bool:
        """True when an explicitly set option means the task persists (SPEC 1)."""
        return any(getattr(self, name) is not None for name in _PERSIST_IMPLYING)

    def validate(self, task_label: str) -> None:
        """Raise ``ConfigurationError`` naming the first bad option."""
        where = f"@task {task_label}"
        from .cache_policies.policies import NO_CACHE, CachePolicy

        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ConfigurationError(f"{where}: name must be a non-empty str, got {self.name!r}")
        if self.cache_policy is not None and not isinstance(self.cache_policy, CachePolicy):
            raise ConfigurationError(
                f"{where}: cache_policy must be a CachePolicy such as INPUTS, TASK_SOURCE or "
                f"INPUTS + TASK_SOURCE, got {type(self.cache_policy).__name__} {self.cache_policy!r}"
            )
        if self.cache_key_fn is not None and not callable(self.cache_key_fn):
            raise ConfigurationError(
                f"{where}: cache_key_fn must be a callable (context, parameters) -> str | None, "
                f"got {type(self.cache_key_fn).__name__} {self.cache_key_fn!r}"
            )
        if self.cache_expiration is not None and (
            not isinstance(self.cache_expiration, timedelta) or self.cache_expiration <= timedelta(0)
        ):
            raise ConfigurationError(
                f"{where}: cache_expiration must be a positive datetime.timedelta, e.g. "
                f"timedelta(days=1), got {self.cache_expiration!r}"
            )
        for flag in ("refresh_cache", "persist_result", "log_prints"):
            _check_bool(where, flag, getattr(self, flag))
        _check_timeout(where, self.timeout_seconds)
        _check_labels(where, self.description, self.version, self.tags)
        if not isinstance(self.cache_result_in_memory, bool):
            raise ConfigurationError(
                f"{where}: cache_result_in_memory must be True or False, got {self.cache_result_in_memory!r}"
            )
        _check_retries(where, self.retries, self.retry_delay_seconds)
        _check_storage(where, self.result_storage)
        _check_serializer(where, self.result_serializer)
        if self.result_storage_key is not None:
            _check_storage_key_template(where, self.result_storage_key)
        caching = self.cache_key_fn is not None or (
            self.cache_policy is not None and not isinstance(self.cache_policy, type(NO_CACHE))
        )
        if self.persist_result is False and caching:
            raise ConfigurationError(
                f"{where}: persist_result=False cannot be combined with a cache policy "
                f"({self.cache_key_fn or self.cache_policy!r}): a cache needs stored results. "
                "Drop persist_result=False, or use cache_policy=NO_CACHE"
            )
        if self.persist_result is False and self.result_storage_key is not None:
            raise ConfigurationError(
                f"{where}: persist_result=False cannot be combined with result_storage_key "
                f"{self.result_storage_key!r}; drop one of them"
            )


def _check_storage_key_template(where: str, template: Any) -> None:
    if not isinstance(template, str) or not template:
        raise ConfigurationError(f"{where}: result_storage_key must be a non-empty str template, got {template!r}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigurationError(f"{where}: result_storage_key {template!r} is not a valid str.format template: {exc}") from None
    for field_name in fields:
        root = field_name.split(".", 1)[0].split("[", 1)[0]
        if root not in STORAGE_KEY_FIELDS:
            raise ConfigurationError(
                f"{where}: result_storage_key {template!r} uses unknown field {{{field_name}}}; "
                f"available: {', '.join(STORAGE_KEY_FIELDS)} (e.g. '{{parameters[x]}}')"
            )


@dataclass(frozen=True)
class FlowOptions:
    """Every ``@flow`` option."""

    name: str | None = None
    persist_result: bool | None = None
    result_storage: Any = None
    result_serializer: Any = None
    retries: int = 0
    retry_delay_seconds: float | Sequence[float] = 0
    description: str | None = None
    tags: tuple[str, ...] = ()
    version: str | None = None
    timeout_seconds: float | None = None
    log_prints: bool | None = None
    #: False: a persisted flow's state reads its value back from the record, not memory.
    cache_result_in_memory: bool = True
    #: The option names set explicitly.
    given: frozenset[str] = dataclasses.field(default=frozenset(), compare=False)
    #: A ``resultkit.task_runners.TaskRunner`` for ``t.submit``/``t.map`` in the flow.
    task_runner: Any = None

    def replace(self, **overrides: Any) -> FlowOptions:
        """A copy with ``overrides``; unknown names raise ``ConfigurationError``."""
        result: FlowOptions = _replace(self, "flow", overrides)
        return result

    def validate(self, flow_label: str) -> None:
        """Raise ``ConfigurationError`` naming the first bad option."""
        where = f"@flow {flow_label}"
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ConfigurationError(f"{where}: name must be a non-empty str, got {self.name!r}")
        _check_bool(where, "persist_result", self.persist_result)
        _check_bool(where, "log_prints", self.log_prints)
        if not isinstance(self.cache_result_in_memory, bool):
            raise ConfigurationError(
                f"{where}: cache_result_in_memory must be True or False, got {self.cache_result_in_memory!r}"
            )
        _check_timeout(where, self.timeout_seconds)
        _check_labels(where, self.description, self.version, self.tags)
        _check_retries(where, self.retries, self.retry_delay_seconds)
        _check_storage(where, self.result_storage)
        _check_serializer(where, self.result_serializer)
        if self.task_runner is not None:
            from .task_runners import TaskRunner

            if not isinstance(self.task_runner, TaskRunner):
                raise ConfigurationError(
                    f"{where}: task_runner must be a TaskRunner such as ThreadPoolTaskRunner() or "
                    f"DaskTaskRunner() from resultkit.task_runners, got "
                    f"{type(self.task_runner).__name__} {self.task_runner!r}"
                )
