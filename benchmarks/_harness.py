"""Shared benchmark machinery: timing, medians, peak memory, child processes, tables.

Stdlib only, so the Prefect virtual environment's children can import it too.
Nothing here asserts on timings: the harness measures and reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "REPO_DIR",
    "Config",
    "PeakMemory",
    "Row",
    "Section",
    "Unavailable",
    "child_env",
    "emit_child_result",
    "fmt_bytes",
    "fmt_seconds",
    "free_port",
    "machine_info",
    "median_time",
    "render_markdown",
    "render_sections",
    "run_child",
    "scratch_dir",
    "time_per_call",
    "wait_http",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
#: Marks the one line of a child's stdout that carries its JSON result.
RESULT_MARK = "@@bench-result@@ "


class Unavailable(Exception):
    """A workload (or one library in it) cannot run here; the message says why."""


@dataclass
class Config:
    """What a workload run may spend: ``quick`` shrinks sizes and repeats."""

    quick: bool
    prefect_python: Path | None  # None: Prefect is not installed
    prefect_reason: str = ""
    scratch: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    def repeats(self, full: int, quick: int = 3) -> int:
        return quick if self.quick else full


@dataclass
class Row:
    """One library's (or floor's) figure in a section's table.

    ``seconds`` is the median per operation; ``nbytes`` turns it into a throughput;
    ``extra`` fills the section's extra columns (body runs, peak memory, ...).
    """

    library: str
    seconds: float | None = None
    n: int = 0
    nbytes: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    note: str = ""
    is_floor: bool = False

    @property
    def gbps(self) -> float | None:
        if self.seconds is None or not self.nbytes or self.seconds <= 0:
            return None
        return self.nbytes / self.seconds / 1e9


@dataclass
class Section:
    """One workload's table: rows per library, ratios to resultkit, the target."""

    title: str
    description: str = ""
    target: str = ""
    target_met: bool | None = None
    extra_columns: Sequence[str] = ()
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def unavailable(self, library: str, reason: str) -> Row:
        return self.add(Row(library, note=f"n/a: {reason}"))

    def resultkit_row(self) -> Row | None:
        for row in self.rows:
            if row.library == "resultkit" and row.seconds is not None:
                return row
        return None


# -- timing -----------------------------------------------------------------------------


def median_time(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> tuple[float, int]:
    """Median wall time of ``fn()`` over ``repeat`` runs (``setup()`` runs untimed before each)."""
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), repeat


def time_per_call(fn: Callable[[], Any], repeat: int, budget: float = 0.02) -> tuple[float, int]:
    """Median per-call time of a fast ``fn``: calls are batched so each sample takes ~``budget`` s.

    Returns (median seconds per call, number of samples).
    """
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= budget / 4 or number >= 1_000_000:
            break
        number *= 4
    number = max(1, int(number * budget / max(elapsed, 1e-9)))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples), repeat


# -- peak memory (Linux /proc, stdlib only) -------------------------------------------------


class PeakMemory:
    """Peak RSS of this process around an operation.

    Writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's high-water mark
    (VmHWM), so the peak of one phase is measured without the phases before it.
    Where that is refused, ``ru_maxrss`` (peak since start) is the fallback.
    """

    def __init__(self) -> None:
        self.exact = self._reset()
        self.baseline = self.rss()

    @staticmethod
    def _status(field_name: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
        raise Unavailable(f"/proc/self/status has no {field_name}")

    def rss(self) -> int:
        return self._status("VmRSS")

    def _reset(self) -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def reset(self) -> None:
        """Start a new phase: the peak from now on is what :meth:`peak` reports."""
        self.exact = self._reset()

    def peak(self) -> int:
        if self.exact:
            return self._status("VmHWM")
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def ratio(self, nbytes: int) -> float:
        """(peak RSS - baseline RSS) / ``nbytes``: 1.0 means no memory beyond the value itself."""
        return (self.peak() - self.baseline) / nbytes


# -- child processes ------------------------------------------------------------------------


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a benchmark child: offline cloud credentials, no stray config."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",
    )
    for name in list(env):
        if name.startswith(("RESULTKIT_", "PREFECT_")):
            del env[name]
    # This machine's shell sets it; a normal install caches bytecode, and without the cache
    # every child would recompile every module it imports (cold-start figures tripled).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), str(REPO_DIR)])
    env.update(overrides)
    return env


def emit_child_result(result: dict[str, Any]) -> None:
    """Called by a child to hand its JSON result to :func:`run_child`."""
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_child(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300) -> dict[str, Any]:
    """Run a child process and return the JSON it emitted; ``Unavailable`` with its error otherwise."""
    try:
        proc = subprocess.run(
            list(argv), env=env or child_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"child timed out after {timeout:.0f} s") from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK):])
            if "unavailable" in result:
                raise Unavailable(result["unavailable"])
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise Unavailable(f"child failed (exit {proc.returncode}): {tail[:200]}")


@contextlib.contextmanager
def scratch_dir(config: Config, name: str) -> Iterator[Path]:
    """A fresh directory under the run's scratch area, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=config.scratch))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise Unavailable(f"server at {url} did not come up") from None
            time.sleep(0.05)  # polling a server's start-up, not synchronising workers


# -- formatting -------------------------------------------------------------------------------


def fmt_seconds(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


def machine_info() -> list[str]:
    """Lines describing where and when the run happened."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    load = ", load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs{mem}{load}",
        f"- python: {platform.python_version()} ({sys.executable})",
    ]


def _ratio(row: Row, reference: Row | None) -> str:
    if reference is None or row.seconds is None or reference.seconds is None or row is reference:
        return ""
    base_time = reference.seconds
    row_time = row.seconds
    if row.nbytes and reference.nbytes:
        # compare per byte, so floors measured on a differently sized buffer still compare
        base_time = reference.seconds / reference.nbytes
        row_time = row.seconds / row.nbytes
    if base_time <= 0:
        return ""
    return f"{row_time / base_time:.3g}x"


def _render_section(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""]
    if section.description:
        lines += [section.description, ""]
    if section.target:
        verdict = {True: "met", False: "**MISSED**", None: "not measured"}[section.target_met]
        lines += [f"Target: {section.target} ({verdict})", ""]
    if not section.rows:
        return lines
    has_throughput = any(row.gbps is not None for row in section.rows)
    header = ["library", "median"] + (["GB/s"] if has_throughput else [])
    header += ["n", "time vs resultkit", *section.extra_columns, "note"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    reference = section.resultkit_row()
    for row in section.rows:
        name = f"*{row.library}*" if row.is_floor else row.library
        if row.library == "resultkit":
            name = "**resultkit**"
        cells = [name, fmt_seconds(row.seconds) if row.seconds is not None else "n/a"]
        if has_throughput:
            cells.append(f"{row.gbps:.2f}" if row.gbps is not None else "")
        cells += [str(row.n) if row.n else "", _ratio(row, reference)]
        cells += [row.extra.get(col, "") for col in section.extra_columns]
        cells.append(row.note)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for note in section.notes:
        lines.append(f"- {note}")
    if section.notes:
        lines.append("")
    return lines


def render_sections(sections: Sequence[Section]) -> str:
    """Just the sections' tables (for progress output)."""
    return "\n".join(line for section in sections for line in _render_section(section))


def render_markdown(sections: Sequence[Section], header_lines: Sequence[str]) -> str:
    """The whole RESULTS.md: machine info, then one table per section."""
    lines = ["# resultkit benchmark results", ""]
    lines += list(header_lines)
    lines += [
        "",
        "Medians of repeated runs (n). \"time vs resultkit\" is each row's time per operation "
        "(per byte for throughput rows) divided by resultkit's: above 1 is slower than resultkit. "
        "Rows in *italics* are physical floors measured in the same run. "
        "Generated by `make bench` (`benchmarks/run.py`); no figure here is asserted by a test.",
        "",
    ]
    for section in sections:
        lines += _render_section(section)
    return "\n".join(lines).rstrip() + "\n"
