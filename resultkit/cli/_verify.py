"""``resultkit verify``: check every record's size, checksum and signature.

Each record is checked by :meth:`ResultStore.verify`, which streams the payload
through the checksum and never deserializes it, so verifying a store of pickles
runs no code from it and needs no more memory than one chunk per worker.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from ..errors import RecordCorruptError, RecordNotFound, ResultkitError
from ..results.store import ResultStore
from ._output import (
    EXIT_FAILURE,
    EXIT_OK,
    format_size,
    print_json,
    print_table,
    say,
    with_progress,
)
from ._scan import parallel_map
from ._target import open_storage

__all__ = ["VerifyOutcome", "cmd_verify", "verify_record"]

SignatureState = Literal["valid", "unchecked", "unsigned", "-"]


@dataclass(frozen=True)
class VerifyOutcome:
    """The verdict on one record: ``problem`` is None when it is intact."""

    key: str
    size: int | None
    problem: str | None
    signature: SignatureState = "-"

    @property
    def ok(self) -> bool:
        """Whether the record passed every check."""
        return self.problem is None


def verify_record(store: ResultStore, key: str) -> VerifyOutcome | None:
    """Check the record at ``key`` (None if it vanished since it was listed)."""
    try:
        metadata, size = store.verified_metadata(key)
    except RecordNotFound:
        return None
    except RecordCorruptError as exc:
        return VerifyOutcome(key, None, f"corrupt: {exc}")
    except (ResultkitError, OSError) as exc:
        return VerifyOutcome(key, None, f"cannot read: {exc}")
    signature: SignatureState
    if store.signing:
        signature = "valid"
    else:
        signature = "unsigned" if metadata.signature is None else "unchecked"
    return VerifyOutcome(key, size, None, signature)


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify every record; exit 1 listing the corrupt ones."""
    storage = open_storage(args.storage, args.option)
    store = ResultStore(storage)  # checks signatures when RESULTKIT_SIGNING_KEY is set
    keys = sorted(storage.list(""))
    outcomes = [
        outcome
        for outcome in with_progress(
            parallel_map(storage, lambda key: verify_record(store, key), keys),
            len(keys), "verifying records",
        )
        if outcome is not None
    ]
    bad = [o for o in outcomes if not o.ok]
    if args.json:
        print_json({
            "storage": storage.describe(),
            "checked": len(outcomes),
            "ok": len(outcomes) - len(bad),
            "signatures_checked": store.signing,
            # Of the intact records: "valid" (key set), "unchecked" (signed, no key), "unsigned".
            "signatures": dict(Counter(o.signature for o in outcomes if o.ok)),
            "problems": [{"key": o.key, "size": o.size, "problem": o.problem} for o in bad],
        })
    else:
        if bad:
            print_table("problems", ("key", "size", "problem"),
                        [(o.key, format_size(o.size), o.problem or "") for o in bad],
                        right_aligned=("size",))
        note = "" if store.signing else " (signatures not checked: RESULTKIT_SIGNING_KEY is unset)"
        say(
            f"checked {len(outcomes)} record(s) in {storage.describe()}: "
            f"{len(outcomes) - len(bad)} ok, {len(bad)} with problems{note}"
        )
    return EXIT_FAILURE if bad else EXIT_OK
