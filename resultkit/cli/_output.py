"""How the CLI talks: rich tables for people, JSON for machines, one-line errors, progress.

Progress bars and prompts only appear on a terminal; on a pipe the CLI is silent on
stderr unless something fails.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, TextIO, TypeVar

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "PLAIN_TABLE_ROWS",
    "PROGRESS_THRESHOLD",
    "CliError",
    "format_size",
    "format_time",
    "parse_duration",
    "print_json",
    "print_json_array",
    "print_table",
    "say",
    "stderr_console",
    "stdout_console",
    "with_progress",
]

EXIT_OK = 0
#: The command ran but found a problem (corrupt records, missing keys, storage faults).
EXIT_FAILURE = 1
#: The command line or the configuration is wrong; nothing was done.
EXIT_USAGE = 2

#: Scans longer than this show a progress bar (on a terminal only).
PROGRESS_THRESHOLD = 300
#: Tables longer than this are printed as plain aligned columns instead of rich tables.
PLAIN_TABLE_ROWS = 2000

_T = TypeVar("_T")

# Wide enough that no key or message wraps; tables only take the width they need.
_PIPE_WIDTH = 4096


class CliError(Exception):
    """A failure reported as one line on stderr with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def stdout_console() -> Console:
    """A console on the current ``sys.stdout`` (looked up per call so capture works)."""
    if sys.stdout.isatty():
        return Console(file=sys.stdout)
    # On a pipe or in a file, one row per line (grep-able) beats fitting 80 columns.
    return Console(file=sys.stdout, width=_PIPE_WIDTH, soft_wrap=True)


def say(message: str) -> None:
    """Print one plain line (no markup, no colour) to stdout."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def stderr_console() -> Console:
    """A console on the current ``sys.stderr``."""
    return Console(file=sys.stderr, stderr=True)


class _TextAsBinary:
    """Bytes in, text out: for a stdout without ``.buffer`` (e.g. pytest's capsys)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        self._stream.write(data.decode())

    def flush(self) -> None:
        self._stream.flush()


def _binary_stdout() -> BinaryIO | _TextAsBinary:
    out = sys.stdout
    out.flush()  # anything rich printed first stays first
    buffer: BinaryIO | None = getattr(out, "buffer", None)
    return buffer if buffer is not None else _TextAsBinary(out)


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON (datetimes as ISO 8601) and a newline to stdout."""
    out = _binary_stdout()
    out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE))
    out.flush()


def print_json_array(items: Iterable[Any], batch: int = 1000) -> None:
    """Stream ``items`` to stdout as a JSON array, one compact item per line.

    Rows are written as they come, so listing a million records needs no more memory
    than a thousand, and every line is one item for ``grep``.
    """
    out = _binary_stdout()
    out.write(b"[")
    lines: list[bytes] = []
    separator = b"\n"
    for item in items:
        lines.append(orjson.dumps(item, option=orjson.OPT_UTC_Z))
        if len(lines) >= batch:
            out.write(separator + b",\n".join(lines))
            separator, lines = b",\n", []
    if lines:
        out.write(separator + b",\n".join(lines))
    out.write(b"\n]\n")
    out.flush()


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[str]],
                right_aligned: Sequence[str] = ()) -> None:
    """Print a table with ``columns`` headers to stdout (rich, or plain columns when long)."""
    materialized = [tuple(row) for row in rows]
    if len(materialized) > PLAIN_TABLE_ROWS:
        _print_plain_table(title, columns, materialized, right_aligned)
        return
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right_aligned else "left",
                         overflow="fold")
    for row in materialized:
        # Text, not str: a key like "runs[3]/x" must not be read as rich markup.
        table.add_row(*(Text(cell) for cell in row))
    stdout_console().print(table)


def _print_plain_table(title: str | None, columns: Sequence[str], rows: list[tuple[str, ...]],
                       right_aligned: Sequence[str]) -> None:
    # rich lays out every cell (about 1 ms per row): 100,000 rows would take minutes.
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, name in enumerate(columns)]
    right = [name in right_aligned for name in columns]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) if r else cell.ljust(w)
                         for cell, w, r in zip(cells, widths, right, strict=True)).rstrip()

    parts = [title] if title else []
    parts.append(line(columns))
    parts.append("  ".join("-" * w for w in widths))
    parts.extend(line(row) for row in rows)
    sys.stdout.write("\n".join(parts) + "\n")
    sys.stdout.flush()


def with_progress(items: Sequence[_T] | Iterator[_T], total: int, description: str) -> Iterator[_T]:
    """Yield ``items``, showing a progress bar on stderr when it is a terminal and the scan is long."""
    if total <= PROGRESS_THRESHOLD or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import Progress  # only paid for when a bar is shown

    with Progress(console=stderr_console(), transient=True) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def format_size(size: int | None) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_time(moment: datetime | None, empty: str = "-") -> str:
    """An aware datetime as ``2026-11-22 16:40:05Z`` (UTC, second precision)."""
    if moment is None:
        return empty
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"1w"`` or ``"1h30m"`` as a timedelta.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(_DURATION_PART.sub("", compact).split()):
        raise CliError(
            f"--older-than {text!r} is not a duration; use a number and a unit s/m/h/d/w, "
            "e.g. 30m, 12h, 7d or 1h30m",
            EXIT_USAGE,
        )
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
