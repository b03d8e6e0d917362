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
    """The answer of ``t.explain(...)``; ``str()`` gives a readable sentence.

    A miss reads ``miss: <what differs>; ... (key K; nearest record R)``.
    """

    #: True when the call would return a stored record.
    hit: bool
    #: The call's cache key, or None when the call is not cached.
    cache_key: str | None
    #: The record answering a hit, or the nearest stored record of the task for a miss.
    record_key: str | None = None
    #: For a miss, what differs from ``record_key`` (or why nothing can match).
    differences: list[str] = field(default_factory=list)
    #: What the key does not cover (e.g. globals ``CODE`` does not track), hit or miss.
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.hit:
            text = f"hit: record {self.record_key} answers key {self.cache_key}"
        else:
            where = f"key {self.cache_key}"
            if self.record_key is not None:
                where += f"; nearest record {self.record_key}"
            text = f"miss: {'; '.join(self.differences)} ({where})" if self.differences else f"miss: {where}"
        return text + "".join(f"; note: {note}" for note in self.notes)


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
    notes = _untracked_notes(task, plan.policy)
    if key is None:
        return Explanation(False, None, differences=["the cache policy gives no key for this call (NO_CACHE, "
                                                     "or cache_key_fn returned None)"], notes=notes)
    store = plan.store
    if store.exists(key):
        return Explanation(True, key, record_key=key, notes=notes)
    header = _header(store.storage, key)
    if header is not None:
        expiration = header.expiration
        if expiration is not None and expiration <= datetime.now(timezone.utc):
            return Explanation(False, key, key, [f"the record at this key expired at {expiration.isoformat()}"],
                               notes)
        return Explanation(False, key, key, ["the record at this key is unreadable (corrupt); it will be "
                                             "rewritten"], notes)
    parts = _flatten(call.key_parts() or {})
    best: tuple[int, str, list[str]] | None = None
    for other_key, metadata in _task_records(store.storage, task.identity):
        other = _flatten(metadata.extra.get("key_parts") or {})
        differing = [path for path in sorted(set(parts) | set(other)) if parts.get(path) != other.get(path)]
        differences = _describe_all(differing, parts, other, call)
        if metadata.is_expired():
            differences.append(f"it expired at {metadata.expiration.isoformat()}")  # type: ignore[union-attr]
        if best is None or len(differences) < best[0]:
            best = (len(differences), other_key, differences)
    if best is None:
        return Explanation(False, key, None, [f"no stored record of task {task.identity!r} in "
                                              f"{plan.storage_label}"], notes)
    return Explanation(False, key, best[1], best[2], notes)


_Path = tuple[str, ...]


def _describe_all(paths: list[_Path], current: Mapping[_Path, Any], stored: Mapping[_Path, Any],
                  call: Any) -> list[str]:
    """One sentence per differing key part, in key order; repeats (one per argument) merged."""
    sentences: list[str] = []
    for path in paths:
        sentence = _describe(path, current.get(path), stored.get(path), call)
        if sentence not in sentences:
            sentences.append(sentence)
    return sentences


def _describe(path: _Path, now: Any, was: Any, call: Any) -> str:
    """A readable sentence for the key part at ``path`` that is ``now`` here and ``was`` in the record."""
    part = path[0].split("#", 1)[0]  # "packages#2": a second part of one kind
    leaf = path[-1]
    if part == "inputs":
        return f"argument {leaf!r} differs"
    if part == "task_source":
        return "the task's source code differs"
    if part == "code":
        return _describe_code(path, now, was, call)
    if part in ("packages", "packages_auto"):
        if was is None:
            return f"{leaf} {now} is now used (the record did not depend on it)"
        if now is None:
            return f"{leaf} is no longer used (the record used {was})"
        return f"{leaf} {was} -> {now}"
    if part == "files":
        return _describe_file(leaf, call)
    if part == "run_id":
        run_id = call.cache_context().run_id
        if run_id is None:
            return ("the run id differs (outside a flow RUN_ID uses each call's own id, so such calls "
                    "never hit; use e.g. INPUTS + TASK_SOURCE)")
        return f"the run id differs (this run is {run_id})"
    if part == "flow_parameters":
        return f"flow parameter {leaf!r} differs"
    return f"key part {'.'.join(path)!r} differs"


def _describe_code(path: _Path, now: Any, was: Any, call: Any) -> str:
    if len(path) < 3:
        return "the task's code changed"
    kind, name = path[1], _short_name(path[2], call.task.identity)
    noun = "constant" if kind == "constants" else "helper"
    if was is None:
        return f"{noun} `{name}` is new to the task's code"
    if now is None:
        return f"{noun} `{name}` is no longer used by the task's code"
    return f"{noun} `{name}` changed"


def _short_name(qualified: str, task_identity: str) -> str:
    """``module:qualname`` as ``qualname`` in the task's own module, else ``module.qualname``."""
    module, _, qualname = qualified.partition(":")
    qualname = qualname.split("#", 1)[0]
    if task_identity.startswith(module + ".") or module == "__main__":
        return qualname
    return f"{module}.{qualname}"


def _describe_file(argument: str, call: Any) -> str:
    import os

    value = call.inputs.get(argument)
    if isinstance(value, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(value))
        kind = "directory" if "://" not in path and os.path.isdir(path) else "file"
        return f"{kind} `{path}` changed"
    return f"the files named by argument {argument!r} changed"


def _untracked_notes(task: Any, policy: Any) -> list[str]:
    """What ``CODE`` saw the task's code read but does not key on (when the policy has ``CODE``)."""
    from .cache_policies.code import Code

    capture = getattr(task, "captured", {}).get("code")
    members = getattr(policy, "policies", (policy,))
    if capture is None or not any(isinstance(member, Code) for member in members):
        return []
    trace = capture.trace
    notes = []
    if trace.untracked:
        described = [f"`{_short_name(label, task.identity)}` ({what})" for label, what in trace.untracked.items()]
        notes.append("CODE does not track " + ", ".join(described)
                     + ": values other than plain constants are not part of the key")
    if trace.unresolved:
        names = ", ".join(f"`{_short_name(label, task.identity)}`" for label in trace.unresolved)
        notes.append(f"CODE found {names} undefined when it traced the task")
    return notes


def _flatten(parts: Mapping[str, Any], prefix: _Path = ()) -> dict[_Path, Any]:
    flat: dict[_Path, Any] = {}
    for name, value in parts.items():
        path = (*prefix, str(name))
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def _header(storage: Any, key: str) -> Any:
    """The record header at ``key`` even when expired, or None if absent or unreadable."""
    from .results.record import decode_header, read_header

    try:
        head, payload_offset, _ = read_header(storage.read_head, key, _HEADER_READ)
        return decode_header(head[: payload_offset - 1])[1]
    except Exception:  # absent, unreadable or corrupt: explain() reports, never raises
        return None


def _task_records(storage: Any, identity: str) -> Iterator[tuple[str, Any]]:
    for key in storage.list():
        metadata = _header(storage, key)
        if metadata is not None and (metadata.extra or {}).get("task_name") == identity:
            yield key, metadata
