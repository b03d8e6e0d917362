"""The ``resultkit`` command: inspect and maintain result stores.

``resultkit ls|show|rm|gc|verify|stats [STORAGE]`` and ``resultkit storage save|ls|rm``;
also ``python -m resultkit``. Exit codes: 0 success, 1 a failure the command found
(corrupt records, missing keys, storage faults), 2 a usage or configuration error.

>>> from resultkit.cli import main
>>> main(["stats", "/tmp/results", "--json"])      # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ..errors import ConfigurationError, ResultkitError
from ._output import EXIT_FAILURE, EXIT_USAGE, CliError
from ._parser import build_parser

__all__ = ["main"]

_Handler = Callable[[argparse.Namespace], int]


def _handler(args: argparse.Namespace) -> _Handler | None:
    # Imported per command so `resultkit --help` stays quick.
    if args.command in ("ls", "show", "rm", "stats"):
        from . import _records

        return {"ls": _records.cmd_ls, "show": _records.cmd_show, "rm": _records.cmd_rm,
                "stats": _records.cmd_stats}[args.command]
    if args.command == "gc":
        from ._gc import cmd_gc

        return cmd_gc
    if args.command == "verify":
        from ._verify import cmd_verify

        return cmd_verify
    if args.command == "storage" and args.block_command:
        from . import _blocks

        return {"save": _blocks.cmd_save, "ls": _blocks.cmd_ls, "rm": _blocks.cmd_rm}[
            args.block_command]
    return None


def _report(message: str) -> None:
    # One line, whatever the exception text holds: scripts grep for it.
    sys.stderr.write("resultkit: error: " + " ".join(message.splitlines()) + "\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``resultkit`` command with ``argv`` (default ``sys.argv[1:]``); the exit code."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version print and "exit"
            return exc.code if isinstance(exc.code, int) else 0
        handler = _handler(args)
        if handler is None:
            sub = args.command and f" {args.command}"
            _report(f"missing COMMAND; see `resultkit{sub or ''} --help`")
            return EXIT_USAGE
        return handler(args)
    except CliError as exc:
        _report(str(exc))
        return exc.exit_code
    except ConfigurationError as exc:
        _report(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error worth a message.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILURE
    except (ResultkitError, OSError) as exc:
        _report(f"{exc}" if isinstance(exc, ResultkitError) else f"{type(exc).__name__}: {exc}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _report("interrupted")
        return 130
