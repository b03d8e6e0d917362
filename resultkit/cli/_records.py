"""The record commands: ``ls``, ``show``, ``rm`` and ``stats``.

Each takes parsed arguments and returns an exit code; failures raise ``CliError``.
``gc`` and ``verify`` live in their own modules.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..errors import StorageError
from ..storage.base import Storage, validate_key
from ._output import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    format_size,
    format_time,
    parse_duration,
    print_json,
    print_json_array,
    print_table,
    say,
    stderr_console,
)
from ._scan import RecordSummary, parallel_map, scan, summarize, utc_now
from ._target import open_storage

__all__ = ["cmd_ls", "cmd_rm", "cmd_show", "cmd_stats", "expiry_text", "user_key"]


def user_key(key: str) -> str:
    """``key`` if it is a valid storage key, else a usage error saying why."""
    try:
        return validate_key(key)
    except StorageError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def expiry_text(summary: RecordSummary, now: datetime) -> str:
    """The ``expires`` column: a time, ``never``, or a time marked expired."""
    meta = summary.metadata
    if meta is None:
        return "?"
    if meta.expiration is None:
        return "never"
    text = format_time(meta.expiration)
    return f"{text} (expired)" if meta.is_expired(now) else text


# -- ls -------------------------------------------------------------------------------


def _selected(summary: RecordSummary, now: datetime, expired_only: bool,
              created_before: datetime | None) -> bool:
    if expired_only and summary.expiry_state(now) != "expired":
        return False
    if created_before is not None:
        return summary.metadata is not None and summary.metadata.created <= created_before
    return True


def cmd_ls(args: argparse.Namespace) -> int:
    """List records (key, task, size, created, expiry, serializer) from their headers."""
    older_than: timedelta | None = parse_duration(args.older_than) if args.older_than else None
    prefix = _prefix(args.prefix)
    storage = open_storage(args.storage, args.option)
    now = utc_now()
    created_before = None if older_than is None else now - older_than
    # Streamed JSON on a terminal would tear through a progress bar drawn on the same screen.
    progress = not (args.json and sys.stdout.isatty())
    selected = (s for s in scan(storage, prefix, progress=progress)
                if _selected(s, now, args.expired, created_before))
    if args.json:
        print_json_array(s.to_json(now) for s in selected)
        return EXIT_OK
    rows = list(selected)
    if not rows:
        say(f"no records in {storage.describe()}" + _filters_note(args))
        return EXIT_OK
    print_table(
        None,
        ("key", "task", "size", "created", "expires", "serializer"),
        ((s.key, s.task_name, format_size(s.size), format_time(s.metadata.created if s.metadata else None),
          expiry_text(s, now), s.serializer if s.problem is None else f"? ({s.problem})")
         for s in rows),
        right_aligned=("size",),
    )
    total = sum(s.size or 0 for s in rows)
    say(f"{len(rows)} record(s), {format_size(total)} in {storage.describe()}")
    return EXIT_OK


def _filters_note(args: argparse.Namespace) -> str:
    notes = []
    if args.prefix:
        notes.append(f"under prefix {args.prefix!r}")
    if args.expired:
        notes.append("expired")
    if args.older_than:
        notes.append(f"older than {args.older_than}")
    return f" ({', '.join(notes)})" if notes else ""


def _prefix(prefix: str | None) -> str:
    if not prefix:
        return ""
    user_key(prefix.rstrip("/") or "/")
    return prefix


# -- show -----------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    """Print one record's header."""
    key = user_key(args.key)
    storage = open_storage(args.storage, args.option)
    summary = summarize(storage.read_head, key, keep_header=True)
    if summary is None:
        raise CliError(f"no record at key {key!r} in {storage.describe()}; "
                       "run `resultkit ls` to see the keys")
    if summary.metadata is None or summary.header is None:
        raise CliError(f"record {key!r} in {storage.describe()} is unreadable: {summary.problem}")
    now = utc_now()
    if args.json:
        print_json({"key": key, "storage": storage.describe(), "size": summary.size,
                    "state": summary.expiry_state(now), "header": summary.header})
        return EXIT_OK
    meta = summary.metadata
    fields: list[tuple[str, str]] = [
        ("key", key),
        ("storage", storage.describe()),
        ("state", summary.expiry_state(now)),
        ("size", f"{format_size(summary.size)} ({summary.size} bytes)"),
        ("created", format_time(meta.created)),
        ("expires", expiry_text(summary, now)),
        ("serializer", _compact_json(meta.serializer)),
        ("payload size", str(meta.payload_size)),
        ("payload hash", meta.payload_hash),
    ]
    if meta.is_literal:
        fields.append(("literal", _compact_json(meta.literal)))
    fields += [
        ("format", f"{summary.header.get('format')} v{summary.header.get('version')}"),
        ("resultkit", meta.resultkit_version or "?"),
        ("python", meta.python_version or "?"),
        ("signature", meta.signature or "unsigned"),
    ]
    if meta.extra:
        fields.append(("extra", _compact_json(meta.extra)))
    print_table(None, ("field", "value"), fields)
    return EXIT_OK


def _compact_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# -- rm -------------------------------------------------------------------------------


def cmd_rm(args: argparse.Namespace) -> int:
    """Delete records by key or by prefix, confirming before deleting more than one."""
    if args.prefix is not None and args.keys:
        raise CliError("give record keys or --prefix, not both", EXIT_USAGE)
    if args.prefix is None and not args.keys:
        raise CliError("nothing to delete: give one or more record keys, or --prefix PREFIX",
                       EXIT_USAGE)
    explicit = [user_key(k) for k in args.keys]
    prefix = _prefix(args.prefix) if args.prefix is not None else None
    if args.prefix is not None and not prefix:
        raise CliError("--prefix is empty, which would delete every record; pass a non-empty "
                       "prefix such as 'mytask/'", EXIT_USAGE)
    storage = open_storage(args.storage, args.option)
    keys = sorted(storage.list(prefix)) if prefix else list(dict.fromkeys(explicit))
    if len(keys) > 1 and not args.yes:
        _confirm(len(keys), storage)
    deleted: list[str] = []
    missing: list[str] = []
    for key, was_there in zip(keys, parallel_map(storage, storage.delete, keys), strict=True):
        (deleted if was_there else missing).append(key)
    if args.json:
        print_json({"storage": storage.describe(), "deleted": deleted, "missing": missing})
    else:
        where = storage.describe()
        if prefix is not None and not keys:
            say(f"no records under prefix {prefix!r} in {where}")
        else:
            say(f"deleted {len(deleted)} record(s) from {where}")
    if missing:
        _error(f"no record at key(s) {', '.join(repr(k) for k in missing)} in {storage.describe()}")
        return EXIT_FAILURE
    return EXIT_OK


def _confirm(count: int, storage: Storage) -> None:
    where = storage.describe()
    if not sys.stdin.isatty():
        raise CliError(f"refusing to delete {count} records from {where} without confirmation "
                       "(stdin is not a terminal); pass --yes", EXIT_USAGE)
    from rich.prompt import Confirm

    if not Confirm.ask(f"Delete {count} records from {where}?", console=stderr_console(),
                       default=False):
        raise CliError("nothing deleted", EXIT_FAILURE)


def _error(message: str) -> None:
    sys.stderr.write(f"resultkit: error: {message}\n")


# -- stats ----------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    """Count records and bytes by serializer and by expiry state."""
    storage = open_storage(args.storage, args.option)
    now = utc_now()
    by_serializer: dict[str, dict[str, int]] = {}
    by_state: dict[str, dict[str, int]] = {
        state: {"records": 0, "bytes": 0} for state in ("live", "expired", "no-expiry")
    }
    total = {"records": 0, "bytes": 0}
    for summary in scan(storage, description="counting records"):
        size = summary.size or 0
        for bucket in (
            by_serializer.setdefault(summary.serializer, {"records": 0, "bytes": 0}),
            by_state.setdefault(summary.expiry_state(now), {"records": 0, "bytes": 0}),
            total,
        ):
            bucket["records"] += 1
            bucket["bytes"] += size
    if args.json:
        print_json({"storage": storage.describe(), "total": total,
                    "by_serializer": dict(sorted(by_serializer.items())), "by_state": by_state})
        return EXIT_OK
    for title, groups in (("by serializer", sorted(by_serializer.items())),
                          ("by expiry state", list(by_state.items()))):
        print_table(
            title,
            (title.removeprefix("by "), "records", "bytes", "size"),
            [(name, str(g["records"]), str(g["bytes"]), format_size(g["bytes"]))
             for name, g in groups],
            right_aligned=("records", "bytes", "size"),
        )
    say(
        f"{total['records']} record(s), {format_size(total['bytes'])} in {storage.describe()}"
    )
    return EXIT_OK
