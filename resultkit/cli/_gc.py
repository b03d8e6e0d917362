"""``resultkit gc``: remove expired records, stale temporary files and abandoned uploads.

An expired record is a miss for every reader, so deleting it changes no result.
Before each deletion the header is read again, so a record rewritten since the scan
(fresh, unexpired) is kept. Temporary files (``.rk-tmp-*``) are what a writer that
died mid-write leaves behind on local storage; one untouched for an hour has no
writer left. Each storage finds and removes its own (``Storage.stale_temp_files``,
``remove_temp_file``), and names its default lock manager, whose idle lock files are swept. Lock files (``.rk-locks/*.lock`` and their ``.guard`` files) of keys no
longer locked are removed too: one would otherwise stay for every key ever locked.
On S3, a writer killed during a multipart upload leaves the upload open (its parts are
stored and billed, and never become an object): gc aborts uploads under the storage's
prefix started longer ago than ``--uploads-older-than`` (default one hour). GCS
resumable sessions expire by themselves after a week and leave nothing to sweep.
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timedelta

from ..results.journal import sweep_journals
from ..storage.base import IncompleteUpload, Storage, TempFile
from ._output import (
    EXIT_OK,
    CliError,
    format_size,
    format_time,
    parse_duration,
    print_json,
    print_table,
    say,
)
from ._scan import RecordSummary, parallel_map, scan, summarize, utc_now
from ._target import open_storage

__all__ = ["STALE_TEMP_SECONDS", "StaleTempFile", "cmd_gc", "stale_temp_files", "stale_uploads",
           "sweep_lock_files"]

#: Temporary files untouched for longer than this are removed.
STALE_TEMP_SECONDS = 3600.0

#: What ``stale_temp_files`` returns (the storage layer's ``TempFile``).
StaleTempFile = TempFile


def stale_temp_files(storage: Storage, min_age: float = STALE_TEMP_SECONDS) -> list[TempFile]:
    """Temporary files older than ``min_age`` seconds that ``storage`` finds (see ``Storage.stale_temp_files``).

    Object stores have no temporary files (see :func:`stale_uploads` for their leftovers).
    """
    return sorted(storage.stale_temp_files(min_age), key=lambda t: t.path)


def sweep_lock_files(storage: Storage, dry_run: bool = False) -> list[str]:
    """Remove (or list) the lock files of keys no longer locked by the storage's default ``FileLockManager``.

    Paths are relative to the folder holding the lock folder (``.rk-locks/...`` beside
    local storage's records).
    """
    from ..locking import FileLockManager, default_lock_manager

    manager = default_lock_manager(storage)
    if not isinstance(manager, FileLockManager):
        return []
    root = manager.directory.parent
    return [os.path.relpath(path, root).replace(os.sep, "/")
            for path in manager.sweep(dry_run=dry_run)]


def stale_uploads(storage: Storage, min_age: timedelta, now: datetime) -> list[IncompleteUpload]:
    """Multipart uploads under ``storage`` started more than ``min_age`` before ``now``."""
    return sorted((u for u in storage.incomplete_uploads() if now - u.initiated > min_age),
                  key=lambda u: (u.path, u.initiated))


def _upload_age(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except CliError as exc:
        raise CliError(str(exc).replace("--older-than", "--uploads-older-than"), exc.exit_code) from None


def _delete_if_still_expired(storage: Storage, key: str, now: datetime) -> bool:
    current = summarize(storage.read_head, key)
    if current is None or current.expiry_state(now) != "expired":
        return False
    return storage.delete(key)


def cmd_gc(args: argparse.Namespace) -> int:
    """Remove (or with ``--dry-run`` list) expired records, stale temporary files and abandoned uploads."""
    min_upload_age = _upload_age(args.uploads_older_than)  # a usage error before any work
    storage = open_storage(args.storage, args.option)
    # First: undo commits whose writer died, so their records are not counted as kept.
    unfinished = sweep_journals(storage, dry_run=args.dry_run)
    now = utc_now()
    expired: list[RecordSummary] = [
        s for s in scan(storage, description="finding expired records")
        if s.expiry_state(now) == "expired"
    ]
    temps = stale_temp_files(storage)
    lock_files = sweep_lock_files(storage, dry_run=args.dry_run)
    uploads = stale_uploads(storage, min_upload_age, now)
    removed_records: list[RecordSummary] = []
    removed_temps: list[TempFile] = []
    aborted: list[IncompleteUpload] = []
    if args.dry_run:
        removed_records, removed_temps, aborted = expired, temps, uploads
    else:
        aborted = [upload for upload in uploads if storage.abort_upload(upload)]
        deleted = parallel_map(
            storage, lambda s: _delete_if_still_expired(storage, s.key, now), expired)
        removed_records = [s for s, gone in zip(expired, deleted, strict=True) if gone]
        removed_temps = [temp for temp in temps if storage.remove_temp_file(temp)]
    record_bytes = sum(s.size or 0 for s in removed_records)
    temp_bytes = sum(t.size for t in removed_temps)
    if args.json:
        print_json({
            "storage": storage.describe(),
            "dry_run": args.dry_run,
            "expired_records": [
                {"key": s.key, "size": s.size,
                 "expiration": s.metadata.expiration if s.metadata else None}
                for s in removed_records
            ],
            "temp_files": [
                {"path": t.path, "size": t.size, "age_seconds": round(t.age_seconds, 1)}
                for t in removed_temps
            ],
            "lock_files": lock_files,
            "multipart_uploads": [
                {"path": u.path, "upload_id": u.upload_id, "initiated": u.initiated,
                 "age_seconds": round((now - u.initiated).total_seconds(), 1)}
                for u in aborted
            ],
            "bytes": record_bytes + temp_bytes,
            "unfinished_commits": unfinished,
        })
        return EXIT_OK
    verb = "would remove" if args.dry_run else "removed"
    if removed_records or removed_temps or lock_files or aborted:
        print_table(
            None,
            ("what", "key or path", "size", "expired / age"),
            [("record", s.key, format_size(s.size),
              format_time(s.metadata.expiration if s.metadata else None)) for s in removed_records]
            + [("temp file", t.path, format_size(t.size), f"{t.age_seconds / 3600:.1f} h")
               for t in removed_temps]
            + [("lock file", path, "-", "unlocked") for path in lock_files]
            + [("upload", u.path, "-", f"{(now - u.initiated).total_seconds() / 3600:.1f} h")
               for u in aborted],
            right_aligned=("size",),
        )
    say(
        f"{verb} {len(removed_records)} expired record(s) ({format_size(record_bytes)}), "
        f"{len(removed_temps)} temporary file(s) ({format_size(temp_bytes)}) and "
        f"{len(lock_files)} lock file(s) of unlocked keys"
        + (f", and {'would abort' if args.dry_run else 'aborted'} {len(aborted)} multipart upload(s)"
           if aborted else "")
        + f" in {storage.describe()}"
    )
    if unfinished:
        say(f"{'would undo' if args.dry_run else 'undid'} {len(unfinished)} unfinished commit(s) whose writer is gone "
            f"({', '.join(commit[:12] for commit in unfinished)})")
    return EXIT_OK
