"""resultkit tasks inside a real Prefect 3 flow, in Prefect's own virtual environment.

Answers issue 14's "Under Prefect itself": ``@prefect.task`` stacked on a resultkit task runs
under ``ProcessPoolTaskRunner`` (Prefect copies and pickles the task's ``__dict__``), and
the cache hits show in Prefect's logs with no logging settings. Prefect's pins conflict with
ours, so it lives in ``.venv-prefect`` (``make test`` creates it; so does this test when it
is missing). One Prefect server is started for the test, so worker processes do not each
start their own.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv-prefect"
REQUIREMENTS = Path(__file__).with_name("prefect-requirements.txt")
PIPELINE = Path(__file__).with_name("under_prefect") / "pipeline.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server at {url} did not come up") from None
            time.sleep(0.2)  # polling a server's start-up, not synchronising threads


def _prefect_python() -> Path:
    """The venv's python with the pinned Prefect and resultkit's dependencies, made if missing."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "from importlib.metadata import version; import orjson, xxhash, "
             "blake3, filelock, diskcache; assert version('prefect') == '3.8.8'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "-r", str(REQUIREMENTS), "-e", str(ROOT)], check=True, timeout=900)
    subprocess.run(probe, check=True, timeout=120)
    return python


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for Prefect processes, with one Prefect server of their own running."""
    python = _prefect_python()
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RESULTKIT_"))}
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(home), RESULTKIT_HOME=str(home / "resultkit"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_UI_ENABLED="false")
    server = subprocess.Popen([str(python), "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port), "--no-services"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/api/health", server, timeout=240)
        env["PREFECT_PYTHON"] = str(python)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.timeout(600)
def test_stacked_prefect_task_under_process_pool_with_hits_in_the_logs(prefect_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    storage = tmp_path / "results"
    run = subprocess.run([prefect_env["PREFECT_PYTHON"], str(PIPELINE), str(storage)], env=prefect_env,
                         capture_output=True, text=True, timeout=540, cwd=tmp_path)
    logs = run.stdout + run.stderr
    assert run.returncode == 0, logs[-4000:]
    assert "RESULT ([1, 4, 9], [1, 4, 9])" in run.stdout
    # Prefect's console shows resultkit's lines without PREFECT_LOGGING_EXTRA_LOGGERS:
    # three misses (the first map), then three hits (the second), from the worker processes.
    misses = re.findall(r"INFO +\| resultkit - cache miss: task square", logs)
    hits = re.findall(r"INFO +\| resultkit - cache hit: task square", logs)
    assert (len(misses), len(hits)) == (3, 3), logs[-4000:]
    assert "cannot pickle" not in logs
    # Prefect records the hits' task runs as Cached (the second map), the misses as Completed.
    states = re.findall(r"Task run 'square-\w+' - Finished in state (\w+)\(", logs)
    assert sorted(states) == ["Cached"] * 3 + ["Completed"] * 3, logs[-4000:]
    records = sorted(p for p in storage.iterdir() if not p.name.startswith("."))
    assert len(records) == 3
    header = orjson.loads(records[0].read_bytes().split(b"\n", 1)[0])
    assert header["metadata"]["extra"]["tags"] == ["under-prefect"]
    assert urllib.request.urlopen(prefect_env["PREFECT_API_URL"] + "/health", timeout=10).status == 200
