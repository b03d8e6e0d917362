"""``resultkit storage save|ls|rm``: saved storage blocks (slugs such as ``s3/prod``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ResultkitError
from ..storage.blocks import blocks_file, delete_block, list_blocks, load_storage, save_block
from ._output import EXIT_OK, print_json, print_table, say
from ._target import open_storage

__all__ = ["cmd_ls", "cmd_rm", "cmd_save"]


def cmd_save(args: argparse.Namespace) -> int:
    """Save a path or URL (with options) as a block; prints its slug."""
    storage = open_storage(args.location, args.option)
    slug = save_block(storage, args.name, overwrite=args.overwrite)
    say(f"saved {slug}: {storage.describe()}")
    return EXIT_OK


def _describe(slug: str) -> dict[str, Any]:
    try:
        storage = load_storage(slug)
    except ResultkitError as exc:
        return {"slug": slug, "location": None, "options": None, "problem": str(exc)}
    return {"slug": slug, "location": storage.describe(), "options": storage.to_block(),
            "problem": None}


def cmd_ls(args: argparse.Namespace) -> int:
    """List saved blocks with their locations."""
    blocks = [_describe(slug) for slug in list_blocks()]
    if args.json:
        print_json(blocks)
        return EXIT_OK
    if not blocks:
        say(f"no saved storage blocks in {blocks_file()}; save one with "
            "`resultkit storage save NAME URL_OR_PATH`")
        return EXIT_OK
    print_table(None, ("slug", "location", "options"),
                [(b["slug"], b["location"] or f"? ({b['problem']})",
                  ", ".join(f"{k}={v}" for k, v in (b["options"] or {}).items()))
                 for b in blocks])
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    """Forget a saved block (the records it points to are untouched)."""
    delete_block(args.slug)
    say(f"deleted block {args.slug} (its records are untouched)")
    return EXIT_OK
