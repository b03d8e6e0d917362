"""Run every benchmark workload and write ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/run.py            # full run (~15 min), what `make bench` does
    .venv/bin/python benchmarks/run.py --quick    # small sizes, few repeats (~2 min)
    .venv/bin/python benchmarks/run.py --only hits --only herd

Prefect 3 runs in its own virtual environment, ``benchmarks/.venv-prefect``, created on
first use; if it cannot be installed its rows read "n/a: not installed".
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BENCH_DIR,
    REPO_DIR,
    Config,
    Row,
    Section,
    machine_info,
    render_markdown,
    render_sections,
)

#: Workload modules in report order (module, name used by --only).
WORKLOADS = {
    "persist": "bench_persist",
    "small": "bench_small",
    "hits": "bench_hits",
    "hashing": "bench_hashing",
    "herd": "bench_herd",
    "s3": "bench_s3",
    "locks": "bench_locks",
    "engines": "bench_engines",
    "cli": "bench_cli",
    "invalidation": "bench_invalidation",
}
PREFECT_VENV = BENCH_DIR / ".venv-prefect"
# A known-good pair: prefect 3.8.8 with the newest fastapi (0.165) fails to start its
# ephemeral server (fastapi dropped Body(min_items=)); 3.9.x needs a newer certifi than
# this machine's index has.
PREFECT_PACKAGES = ("prefect==3.8.8", "fastapi==0.139.0", "numpy", "pandas")


def ensure_prefect() -> tuple[Path | None, str]:
    """The Prefect venv's python (creating the venv on first use), or None and why not."""
    python = PREFECT_VENV / "bin" / "python"
    probe = [str(python), "-c", "import numpy, pandas; from importlib.metadata import version; "
             "assert (version('prefect'), version('fastapi')) == ('3.8.8', '0.139.0')"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, ""
    if shutil.which("python3") is None:
        return None, "not installed (no python3 to create its venv)"
    print(f"creating {PREFECT_VENV} and installing {' '.join(PREFECT_PACKAGES)} ...", flush=True)
    try:
        if not python.exists():
            subprocess.run(["python3", "-m", "venv", str(PREFECT_VENV)],
                           check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PREFECT_PACKAGES], check=True, capture_output=True, timeout=900)
        subprocess.run(probe, check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"not installed ({type(exc).__name__})"
    return python, ""


def run_workload(name: str, config: Config) -> list[Section]:
    """One workload's sections; a workload that cannot run becomes one "n/a" section."""
    module_name = WORKLOADS[name]
    if not (BENCH_DIR / f"{module_name}.py").exists():
        section = Section(title=f"{name} workload")
        section.rows.append(Row("resultkit", note=f"n/a: benchmarks/{module_name}.py does not exist yet"))
        return [section]
    try:
        module = importlib.import_module(module_name)
        if not hasattr(module, "run"):
            return [_external(name, module_name, config)]
        sections: list[Section] = module.run(config)
        return sections
    except Exception as exc:  # a broken workload must not sink the others' results
        traceback.print_exc()
        section = Section(title=f"{name} workload")
        section.rows.append(Row("resultkit", note=f"n/a: {type(exc).__name__}: {exc}"[:300]))
        return [section]


def _external(name: str, module_name: str, config: Config) -> Section:
    """A workload script with no ``run()`` (e.g. bench_cli.py): run it and quote its output."""
    argv = [sys.executable, str(BENCH_DIR / f"{module_name}.py")]
    if config.quick:
        argv += ["--records", "10000", "--repeat", "1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1200, cwd=REPO_DIR)
    section = Section(title=f"{name} workload (output of benchmarks/{module_name}.py)")
    if proc.returncode != 0:
        section.rows.append(Row("resultkit", note=f"n/a: exit {proc.returncode}: "
                                + (proc.stderr.strip().splitlines() or [""])[-1][:200]))
        return section
    section.description = proc.stdout.strip()
    section.rows = []
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke run)")
    parser.add_argument("--only", action="append", choices=sorted(WORKLOADS), metavar="NAME",
                        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="where to write the report (default: benchmarks/RESULTS.md)")
    parser.add_argument("--no-prefect", action="store_true", help="skip Prefect (no venv is created)")
    args = parser.parse_args(argv)

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    started = time.monotonic()
    if args.no_prefect:
        prefect_python, prefect_reason = None, "skipped (--no-prefect)"
    elif args.quick:
        # each Prefect process starts an ephemeral API server (~45 s here): not a smoke test
        prefect_python, prefect_reason = None, "skipped in --quick"
    else:
        prefect_python, prefect_reason = ensure_prefect()
    scratch = Path(tempfile.mkdtemp(prefix="resultkit-bench-"))
    config = Config(quick=args.quick, prefect_python=prefect_python, prefect_reason=prefect_reason,
                    scratch=scratch)
    header = machine_info()
    header.append(f"- mode: {'--quick (small sizes, few repeats)' if args.quick else 'full'}")
    header.append("- prefect: " + ("3.8.8 (fastapi 0.139.0) in benchmarks/.venv-prefect, ephemeral API, "
                                   "PREFECT_HOME in a temp dir" if prefect_python else prefect_reason))
    header.append("- children run with bytecode caching on (this machine's shell sets "
                  "PYTHONDONTWRITEBYTECODE=1, which would triple every cold start)")
    header.append("- peers: " + _peer_versions())

    sections: list[Section] = []
    try:
        for name in args.only or list(WORKLOADS):
            t0 = time.monotonic()
            print(f"== {name}", flush=True)
            new = run_workload(name, config)
            sections += new
            print(render_sections(new), flush=True)
            print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    header.append(f"- total run time: {time.monotonic() - started:.0f} s")
    args.output.write_text(render_markdown(sections, header) + _kept_notes(args.output))
    print(f"wrote {args.output}")
    return 0


#: Hand-written findings (profiles, analyses) after this line survive a rewrite of the report.
KEPT_NOTES = "<!-- notes below this line are kept when benchmarks/run.py rewrites this file -->"


def _kept_notes(path: Path) -> str:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    index = text.find(KEPT_NOTES)
    return "" if index < 0 else "\n" + text[index:]


def _peer_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for dist in ("resultkit", "joblib", "diskcache", "cachier", "checkpointer", "numpy", "pandas"):
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            found.append(f"{dist} missing")
    return ", ".join(found)


if __name__ == "__main__":
    sys.exit(main())
