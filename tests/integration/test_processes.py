"""resultkit across plain processes: a spawned process pool, and references sent as JSON text."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from resultkit.results import ResultReference
from resultkit.storage import LocalStorage, S3Storage

from .workload import executing_pids, executions, square_task

TIMEOUT = 120


def _state_of(square, x):
    state = square(x, return_state=True)
    return state.name, state.reference.to_json()


def test_a_spawned_process_pool_shares_a_cache_and_returns_references(shared_storage, runs):
    square = square_task(shared_storage, runs)
    ctx = multiprocessing.get_context("spawn")  # nothing inherited: the task travels pickled
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        first = list(pool.map(_state_of, [square] * 6, range(6), timeout=TIMEOUT))
        second = list(pool.map(_state_of, [square] * 6, range(6), timeout=TIMEOUT))
    assert [name for name, _ in first] == ["Completed"] * 6
    assert [name for name, _ in second] == ["Cached"] * 6
    assert [text for _, text in second] == [text for _, text in first]  # same records
    assert executions(runs) == sorted(f"square{x}" for x in range(6))
    assert os.getpid() not in executing_pids(runs)
    # The parent loads what the workers stored, from the JSON handles alone.
    values = [ResultReference.from_json(text).get() for _, text in first]
    assert [v["squares"].tolist() for v in values] == [[i * i for i in range(x + 1)] for x in range(6)]


PRODUCER = """
import json, sys
import numpy as np
from resultkit import task
from resultkit.cache_policies import INPUTS
from resultkit.storage import LocalStorage, S3Storage

where = json.loads(sys.argv[1])
storage = (LocalStorage(where["path"]) if "path" in where
           else S3Storage(where["bucket"], "refs", endpoint_url=where["endpoint"]))

@task(cache_policy=INPUTS, result_storage=storage)
def fit(n: int) -> dict:
    return {"weights": np.linspace(0.0, 1.0, n), "label": f"model-{n}", "tags": {"a", "b"}}

print(fit(int(sys.argv[2]), return_state=True).reference.to_json())
"""

CONSUMER = """
import json, sys
from resultkit.results import ResultReference

value = ResultReference.from_json(sys.stdin.read()).get()
print(json.dumps({"weights": value["weights"].tolist(), "label": value["label"],
                  "tags": sorted(value["tags"])}))
"""


def run_python(code, *args, stdin="", home):
    env = {**os.environ, "RESULTKIT_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", code, *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_reference_printed_by_one_process_loads_in_another(backend, tmp_path, request):
    if backend == "local":
        where = {"path": str(tmp_path / "store")}
    else:
        where = {"bucket": request.getfixturevalue("s3_bucket"),
                 "endpoint": request.getfixturevalue("s3_endpoint")}
    produced = run_python(PRODUCER, json.dumps(where), "5", home=tmp_path / "producer-home")
    assert produced.returncode == 0, produced.stderr
    text = produced.stdout.strip()
    assert len(text) < 1000 and "testing" not in text  # a small handle, no credentials in it

    # A different process, with its own RESULTKIT_HOME and no configuration, loads it.
    consumed = run_python(CONSUMER, stdin=text, home=tmp_path / "consumer-home")
    assert consumed.returncode == 0, consumed.stderr
    assert json.loads(consumed.stdout) == {"weights": [0.0, 0.25, 0.5, 0.75, 1.0],
                                           "label": "model-5", "tags": ["a", "b"]}

    # The handle names the record users can find by hand in the storage they chose.
    ref = ResultReference.from_json(text)
    storage = (LocalStorage(where["path"]) if backend == "local"
               else S3Storage(where["bucket"], "refs", endpoint_url=where["endpoint"]))
    assert list(storage.list()) == [ref.storage_key]


def test_a_reference_to_a_deleted_record_fails_clearly_in_the_consumer(tmp_path):
    where = {"path": str(tmp_path / "store")}
    produced = run_python(PRODUCER, json.dumps(where), "3", home=tmp_path / "home")
    assert produced.returncode == 0, produced.stderr
    ref = ResultReference.from_json(produced.stdout)
    assert LocalStorage(where["path"]).delete(ref.storage_key)
    consumed = run_python(CONSUMER, stdin=produced.stdout, home=tmp_path / "home")
    assert consumed.returncode != 0
    assert "RecordNotFound" in consumed.stderr and ref.storage_key in consumed.stderr
