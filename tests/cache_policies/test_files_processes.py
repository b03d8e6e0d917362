"""Files in fresh interpreters: data edited on disk between runs of a pipeline."""

from __future__ import annotations

import os
from pathlib import Path

from _projects import Project

PIPELINE = '''
from pathlib import Path

from resultkit import task
from resultkit.cache_policies import CODE, INPUTS, Files


@task(cache_policy=INPUTS + CODE + Files("path"), result_storage="results")
def load_data(path):
    return Path(path).read_text()


@task(cache_policy=INPUTS + Files("folder"), result_storage="results")
def count_files(folder):
    return sorted(p.name for p in Path(folder).iterdir())
'''


def test_a_rewrite_with_the_same_size_and_mtime_restored_is_detected(tmp_path: Path) -> None:
    project = Project(tmp_path / "proj")
    project.write("iris.py", PIPELINE)
    data = project.write("data/iris.csv", "5.1,3.5,1.4,0.2,setosa\n")
    assert project.call("iris", "load_data", "data/iris.csv")["state"] == "Completed"
    assert project.call("iris", "load_data", "data/iris.csv")["state"] == "Cached"
    stat = data.stat()
    data.write_text("5.1,3.5,1.4,0.2,SETOSA\n")
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (data.stat().st_size, data.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    run = project.call("iris", "load_data", "data/iris.csv")
    assert run["state"] == "Completed" and "SETOSA" in run["value"]
    assert run["differences"] == ["file `data/iris.csv` changed"]
    assert run["explain"].startswith("miss: file `data/iris.csv` changed (key ")
    assert project.call("iris", "load_data", "data/iris.csv")["state"] == "Cached"


def test_a_directory_with_one_file_added(tmp_path: Path) -> None:
    project = Project(tmp_path / "proj")
    project.write("iris.py", PIPELINE)
    project.write("data/raw/a.csv", "1\n")
    assert project.call("iris", "count_files", "data/raw")["state"] == "Completed"
    assert project.call("iris", "count_files", "data/raw")["state"] == "Cached"
    project.write("data/raw/b.csv", "2\n")
    run = project.call("iris", "count_files", "data/raw")
    assert run["state"] == "Completed" and run["value"] == "['a.csv', 'b.csv']"
    assert run["differences"] == ["directory `data/raw` changed"]
