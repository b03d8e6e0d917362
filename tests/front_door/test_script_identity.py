"""A task in a script has the identity it has when imported: ``python pipeline.py`` and
``import pipeline`` (a notebook, a test, a worker) share records."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle

from resultkit import task

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """
from resultkit import task
from resultkit.cache_policies import INPUTS, TASK_SOURCE

@task(cache_policy=INPUTS + TASK_SOURCE, result_storage={storage!r})
def load(n):
    print("ran load", n)
    return n * 2

@task(cache_policy=INPUTS, result_storage={storage!r}, name="fixed-name")
def named(n):
    print("ran named", n)
    return n

if __name__ == "__main__":
    print("result", load(3), named(1))
    print("identity", load.identity, named.identity)
"""


def _python(*args: str, cwd: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_script_run_as_main_and_then_imported_hits_the_same_records(tmp_path: Path) -> None:
    storage = tmp_path / "records"
    (tmp_path / "pipeline.py").write_text(PIPELINE.format(storage=str(storage)))
    first = _python("pipeline.py", cwd=tmp_path)
    assert first == ["ran load 3", "ran named 1", "result 6 1", "identity pipeline.load fixed-name"]
    imported = _python("-c", "import pipeline; print('result', pipeline.load(3), pipeline.named(1)); "
                             "print('identity', pipeline.load.identity)", cwd=tmp_path)
    assert imported == ["result 6 1", "identity pipeline.load"]  # both hits: no "ran"
    again = _python(str(tmp_path / "pipeline.py"), cwd=ROOT)  # run from elsewhere, by absolute path
    assert again == ["result 6 1", "identity pipeline.load fixed-name"]
    assert len(list(storage.iterdir())) == 2


def test_a_module_of_a_package_has_its_dotted_name_however_it_is_run(tmp_path: Path) -> None:
    storage = tmp_path / "records"
    package = tmp_path / "src" / "etl"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "steps.py").write_text(PIPELINE.format(storage=str(storage)))
    by_path = _python("src/etl/steps.py", cwd=tmp_path)
    assert by_path[-1] == "identity etl.steps.load fixed-name" and "ran load 3" in by_path
    as_module = _python("-m", "etl.steps", cwd=tmp_path / "src")
    assert as_module == ["result 6 1", "identity etl.steps.load fixed-name"]
    imported = _python("-c", "import etl.steps as s; print(s.load(3), s.load.identity)", cwd=tmp_path / "src")
    assert imported == ["6 etl.steps.load"]


def test_the_identity_travels_with_a_pickled_task_to_another_main(tmp_path: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec("def train(x):\n    return x\n", namespace)
    parent = task(namespace["train"])  # type: ignore[call-overload]
    assert parent.identity.endswith(".train")
    payload = tmp_path / "task.pkl"
    payload.write_bytes(cloudpickle.dumps(parent))
    child = _python("-c", textwrap.dedent(f"""
        import pickle
        print(pickle.loads(open({str(payload)!r}, "rb").read()).identity)
    """), cwd=tmp_path)
    assert child == [parent.identity]


SPAWNING = """
import multiprocessing
from resultkit import task

@task(result_storage={storage!r})
def load(n):
    return n

def identity_in_worker():
    return load.identity  # the worker's own copy, made when it re-imported this script

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(load.identity, pool.apply(identity_in_worker))
"""


def test_a_spawned_worker_reimporting_the_script_agrees_on_the_identity(tmp_path: Path) -> None:
    (tmp_path / "spawning.py").write_text(SPAWNING.format(storage=str(tmp_path / "records")))
    assert _python("spawning.py", cwd=tmp_path) == ["spawning.load spawning.load"]
