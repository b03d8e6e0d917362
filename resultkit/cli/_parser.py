"""The command-line grammar (argparse): one sub-command per verb."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ._output import EXIT_USAGE, CliError

__all__ = ["build_parser"]

_STORAGE_HELP = ("a local path, a URL (s3://bucket/prefix, gs://..., any fsspec URL) or a saved "
                 "slug such as s3/prod")
_DEFAULT_HELP = "; default: RESULTKIT_DEFAULT_STORAGE or $RESULTKIT_HOME/storage"
_EPILOG = """examples:
  resultkit ls --expired                     expired records in the default storage
  resultkit ls s3/prod --older-than 30d --json
  resultkit show ./results mytask/3f2a...    one record's header
  resultkit rm s3/prod --prefix old-task/ --yes
  resultkit gc --dry-run                     what gc would remove
  resultkit verify s3/prod                   exit 1 if any record is corrupt
  resultkit storage save prod s3://bucket/results -o endpoint_url=http://127.0.0.1:9000

exit codes: 0 done, 1 the command found a problem (corrupt or missing records, storage
faults), 2 usage or configuration error (bad arguments, unknown slug)."""


class _Parser(argparse.ArgumentParser):
    """Reports usage errors as one line (``CliError``) instead of usage text and ``sys.exit``."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)", EXIT_USAGE)


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def _add_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("-o", "--option", action="append", default=[], metavar="NAME=VALUE",
                        help=help_text)


def _add_storage(parser: argparse.ArgumentParser, optional: bool = True) -> None:
    if optional:
        parser.add_argument("storage", nargs="?", default=None, metavar="STORAGE",
                            help=_STORAGE_HELP + _DEFAULT_HELP)
    else:
        parser.add_argument("storage", metavar="STORAGE", help=_STORAGE_HELP)
    _add_option(parser, "an option for a STORAGE path or URL, e.g. "
                        "endpoint_url=http://127.0.0.1:9000 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The ``resultkit`` argument parser."""
    from .. import __version__

    parser = _Parser(prog="resultkit", description="Inspect and maintain resultkit result stores.",
                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"resultkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ls = commands.add_parser("ls", help="list records: key, size, created, expiry, serializer")
    _add_storage(ls)
    ls.add_argument("--prefix", default="", help="only keys starting with PREFIX")
    ls.add_argument("--expired", action="store_true", help="only expired records")
    ls.add_argument("--older-than", metavar="DURATION",
                    help="only records created more than DURATION ago (e.g. 30m, 12h, 7d, 1h30m)")
    _add_json(ls)

    show = commands.add_parser("show", help="print one record's header")
    _add_storage(show, optional=False)
    show.add_argument("key", metavar="KEY", help="the record's storage key")
    _add_json(show)

    rm = commands.add_parser("rm", help="delete records by key or by prefix")
    _add_storage(rm, optional=False)
    rm.add_argument("keys", nargs="*", metavar="KEY", help="storage keys of the records to delete")
    rm.add_argument("--prefix", help="delete every record whose key starts with PREFIX")
    rm.add_argument("-y", "--yes", action="store_true",
                    help="do not ask before deleting more than one record")
    _add_json(rm)

    gc = commands.add_parser("gc", help="remove expired records and stale temporary files")
    _add_storage(gc)
    gc.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    gc.add_argument("--uploads-older-than", metavar="DURATION", default="1h",
                    help="abort multipart uploads (S3) under the storage started longer ago than this "
                         "(default 1h: a live writer finishes long before)")
    _add_json(gc)

    verify = commands.add_parser(
        "verify", help="check every record's size, checksum and signature (exit 1 if any is corrupt)")
    _add_storage(verify)
    _add_json(verify)

    stats = commands.add_parser("stats", help="count records and bytes by serializer and expiry state")
    _add_storage(stats)
    _add_json(stats)

    blocks = commands.add_parser("storage", help="manage saved storage blocks (slugs)")
    block_commands = blocks.add_subparsers(dest="block_command", metavar="COMMAND")
    save = block_commands.add_parser("save", help="save a storage location under a name")
    save.add_argument("name", metavar="NAME", help="the block's name; its slug is <type>/NAME")
    save.add_argument("location", metavar="URL_OR_PATH", help="a local path or a URL")
    _add_option(save, "a storage option, e.g. endpoint_url=http://127.0.0.1:9000 (repeatable); "
                      "secrets are refused: use the provider's credential chain")
    save.add_argument("--overwrite", action="store_true", help="replace a block of the same name")
    block_ls = block_commands.add_parser("ls", help="list saved blocks")
    _add_json(block_ls)
    block_rm = block_commands.add_parser("rm", help="delete a saved block")
    block_rm.add_argument("slug", metavar="SLUG", help="the block's slug, e.g. s3/prod")
    return parser
