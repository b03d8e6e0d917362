"""``Task.explain()``: why a call would hit or miss, from the key parts stored in records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["Explanation", "explain_call"]

_HEADER_READ = 64 * 1024


@dataclass
class Explanation:
    """The answer of ``t.explain(...)``; ``str()`` gives a readable sentence."""

    #: True when the call would return a stored record.
    hit: bool
    #: The call's cache key, or None when the call is not cached.
    cache_key: str | None
    #: The record answering a hit, or the nearest stored record of the task for a miss.
    record_key: str | None = None
    #: For a miss, what differs from ``record_key`` (or why nothing can match).
    differences: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.hit:
            return f"hit: record {self.record_key} answers key {self.cache_key}"
        head = f"miss: key {self.cache_key}"
        if self.record_key is not None:
            head += f"; nearest record {self.record_key}"
        return head + ("; " + "; ".join(self.differences) if self.differences else "")


def explain_call(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Explanation:
    """Explain a call of ``task`` with ``args``/``kwargs`` without running it."""
    from ._call import TaskCall, plan_for

    plan = plan_for(task)
    if plan.store is None:
        why = ("caching is disabled (RESULTKIT_DISABLE_CACHING)" if plan.settings.disable_caching
               else "the task does not persist results, so nothing is looked up; set persist_result=True "
                    "or a cache_policy")
        return Explanation(False, None, differences=[why])
    call = TaskCall(task, plan, args, kwargs)
    key = call.compute_key()
    if key is None:
        return Explanation(False, None, differences=["the cache policy gives no key for this call (NO_CACHE, "
                                                     "or cache_key_fn returned None)"])
    store = plan.store
    if store.exists(key):
        return Explanation(True, key, record_key=key)
    header = _header(store.storage, key)
    if header is not None:
        expiration = header.expiration
        if expiration is not None and expiration <= datetime.now(timezone.utc):
            return Explanation(False, key, key, [f"the record at this key expired at {expiration.isoformat()}"])
        return Explanation(False, key, key, ["the record at this key is unreadable (corrupt); it will be rewritten"])
    parts = _flatten(call.key_parts() or {})
    best: tuple[int, str, list[str]] | None = None
    for other_key, metadata in _task_records(store.storage, task.identity):
        other = _flatten(metadata.extra.get("key_parts") or {})
        differences = [_describe(name, call) for name in sorted(set(parts) | set(other))
                       if parts.get(name) != other.get(name)]
        if metadata.is_expired():
            differences.append(f"it expired at {metadata.expiration.isoformat()}")  # type: ignore[union-attr]
        if best is None or len(differences) < best[0]:
            best = (len(differences), other_key, differences)
    if best is None:
        return Explanation(False, key, None, [f"no stored record of task {task.identity!r} in "
                                              f"{plan.storage_label}"])
    return Explanation(False, key, best[1], best[2])


def _describe(part: str, call: Any) -> str:
    """A readable name for a differing key part."""
    lowered = part.lower()
    leaf = part.rsplit(".", 1)[-1]
    if "input" in lowered:
        return f"argument {leaf!r} differs"
    if "source" in lowered:
        return "the task's source code differs"
    if "run" in lowered:
        run_id = call.cache_context().run_id
        if run_id is None:
            return ("the run id differs (outside a flow RUN_ID uses each call's own id, so such calls "
                    "never hit; use e.g. INPUTS + TASK_SOURCE)")
        return f"the run id differs (this run is {run_id})"
    if "flow" in lowered:
        return f"flow parameter {leaf!r} differs"
    return f"key part {part!r} differs"


def _flatten(parts: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in parts.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _header(storage: Any, key: str) -> Any:
    """The record header at ``key`` even when expired, or None if absent or unreadable."""
    from .results.record import decode_header

    try:
        head = storage.read_head(key, _HEADER_READ)
        return decode_header(head.split(b"\n", 1)[0])[1]
    except Exception:  # absent, unreadable or corrupt: explain() reports, never raises
        return None


def _task_records(storage: Any, identity: str) -> Iterator[tuple[str, Any]]:
    for key in storage.list():
        metadata = _header(storage, key)
        if metadata is not None and (metadata.extra or {}).get("task_name") == identity:
            yield key, metadata
