"""``make demo``: the example pipeline runs, its claims hold on disk, and it stays in its folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from resultkit.storage import LocalStorage

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"
TASKS = ["load_and_clean", "engineer_features", "train", "evaluate"]


def test_demo_runs_twice_from_cache_rolls_back_and_stays_in_its_folder(tmp_path):
    home = tmp_path / ".resultkit-demo"
    (home / "storage").mkdir(parents=True)
    (home / "storage" / "left-over-from-last-time").write_bytes(b"not a record")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESULTKIT_")}
    env["DEMO_ROWS"] = "20000"  # a fifth of the data: same steps and claims, seconds faster

    done = subprocess.run([sys.executable, str(DEMO)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert str(home) in out.splitlines()[0]  # it says where everything lives
    for name in TASKS:  # run 1 computed every task, run 2 read every one back
        assert re.search(rf"^\s+{name}\s+Completed\s+[\d.]+ s\s+Cached\s+[\d.]+ s$", out, re.M), out
    assert "run 2: 4 of 4 tasks were cache hits" in out
    assert "report.txt (exists: True)" in out
    assert "validate failed: R² " in out
    assert "after the rollback: .resultkit-demo/exports/report.txt exists: False" in out
    assert "export_report's state: RolledBack; its record exists: False; " \
           "records in the store: 4 -> 4" in out

    # What it printed matches what it left: a clean store of the four task records...
    keys = sorted(LocalStorage(home / "storage").list())
    assert len(keys) == 4 and "left-over-from-last-time" not in keys
    assert not (home / "exports" / "report.txt").exists()
    # ...which `resultkit ls` listed and `resultkit stats` counted.
    assert all(key in out for key in keys)
    assert out.count("4 record(s)") == 2
    # Nothing outside .resultkit-demo/ in the working directory.
    assert sorted(os.listdir(tmp_path)) == [".resultkit-demo"]
