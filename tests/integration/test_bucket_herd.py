"""Single flight across "machines" that share only a bucket (moto S3, fake-gcs-server): no Redis,
no lock manager configured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .workload import executing_pids, executions

TIMEOUT = 120
MACHINE = Path(__file__).with_name("machine.py")


def start_machines(count, bucket, endpoint, tmp_path, runs, gate, kind="s3"):
    machines = []
    for index in range(count):
        env = {**os.environ, "RESULTKIT_HOME": str(tmp_path / f"home-{index}"),
               "RESULTKIT_ISOLATION_LEVEL": "SERIALIZABLE", "RESULTKIT_LOCK_LEASE_SECONDS": "2"}
        env.pop("RESULTKIT_DEFAULT_STORAGE", None)
        machines.append(subprocess.Popen(
            [sys.executable, str(MACHINE), kind, bucket, endpoint, str(runs), str(gate)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return machines


def wait_until(condition, what):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def started(tmp_path):
    return len(list(tmp_path.glob("started-*")))


def finish(machines):
    outputs = []
    for machine in machines:
        out, err = machine.communicate(timeout=TIMEOUT)
        outputs.append((machine.returncode, out.strip(), err))
    return outputs


def test_four_machines_on_s3_run_the_body_once(s3_bucket, s3_endpoint, tmp_path, runs):
    gate = tmp_path / "gate"
    machines = start_machines(4, s3_bucket, s3_endpoint, tmp_path, runs, gate)
    wait_until(lambda: started(tmp_path) == 4 and executions(runs), "all four machines and one body")
    gate.touch()  # every machine has asked; let the one body finish
    outputs = finish(machines)
    assert all(code == 0 for code, _, _ in outputs), [err for _, _, err in outputs]
    assert sorted(out for _, out, _ in outputs) == ["Cached 30"] * 3 + ["Completed 30"]
    assert executions(runs) == ["gated3"]


def test_a_killed_holder_is_taken_over_within_its_lease_and_the_body_runs_once_more(
        s3_bucket, s3_endpoint, tmp_path, runs):
    gate = tmp_path / "gate"
    machines = start_machines(4, s3_bucket, s3_endpoint, tmp_path, runs, gate)
    wait_until(lambda: started(tmp_path) == 4 and executions(runs), "all four machines and one body")
    (holder_pid,) = executing_pids(runs)
    holder = next(m for m in machines if m.pid == holder_pid)
    holder.send_signal(signal.SIGKILL)  # mid-body, holding the lock: it never releases
    holder.wait(TIMEOUT)
    gate.touch()
    # Its lease (2 s) stops being renewed; a waiter takes the lock over and runs the body.
    wait_until(lambda: len(executions(runs)) == 2, "a waiter to take over the lock")
    outputs = finish([m for m in machines if m is not holder])
    assert all(code == 0 for code, _, _ in outputs), [err for _, _, err in outputs]
    assert sorted(out for _, out, _ in outputs) == ["Cached 30"] * 2 + ["Completed 30"]
    assert executions(runs) == ["gated3", "gated3"]  # once more, not more


def test_four_machines_on_gcs_run_the_body_once(gcs_bucket, gcs_endpoint, tmp_path, runs):
    gate = tmp_path / "gate"
    machines = start_machines(4, gcs_bucket, gcs_endpoint, tmp_path, runs, gate, kind="gcs")
    wait_until(lambda: started(tmp_path) == 4 and executions(runs), "all four machines and one body")
    gate.touch()
    outputs = finish(machines)
    assert all(code == 0 for code, _, _ in outputs), [err for _, _, err in outputs]
    assert sorted(out for _, out, _ in outputs) == ["Cached 30"] * 3 + ["Completed 30"]
    assert executions(runs) == ["gated3"]
