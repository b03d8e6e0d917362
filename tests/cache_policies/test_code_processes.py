"""CODE in fresh interpreters, with real edits on disk between runs.

Each step of a test is a new Python process in a small project directory, as a user
would run a pipeline again after editing it; ``explain()`` is asked first and must
predict what the call then does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _projects import Project

PIPELINE = '''
from resultkit import task
from resultkit.cache_policies import CODE, INPUTS, TASK_SOURCE
import helpers
from shapes import Scaler

FACTOR = 2
CONFIG = {"lr": 0.1}


def make_scaler(k):
    def scale(x):
        return x * k
    return scale


triple = make_scaler(3)


@task(cache_policy=INPUTS + CODE, result_storage="results")
def train(x):
    return prepare(x) + Scaler(FACTOR).apply(x) + triple(x) + CONFIG["lr"]


@task(cache_policy=INPUTS + TASK_SOURCE, result_storage="results")
def train_by_source(x):
    return prepare(x)


def prepare(x):
    return helpers.clean(x) + 1
'''

HELPERS = '''
def clean(x):
    return normalize(x) * 2


def normalize(x):
    return x + 10
'''

SHAPES = '''
class Scaler:
    def __init__(self, k):
        self.k = k

    def apply(self, x):
        return self.k * x
'''


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project after one run (a record stored) and a second run that hit it."""
    project = Project(tmp_path_factory.mktemp("template") / "proj")
    project.write("pipeline.py", PIPELINE)
    project.write("helpers.py", HELPERS)
    project.write("shapes.py", SHAPES)
    first = project.call("pipeline", "train", 1)
    assert first["state"] == "Completed"
    assert project.call("pipeline", "train", 1)["state"] == "Cached"
    return project


@pytest.fixture
def project(template: Project, tmp_path: Path) -> Project:
    """A copy of the template, records included (keys hold no paths, so they still hit)."""
    project = Project(tmp_path / "proj")
    shutil.copytree(template.root, project.root, dirs_exist_ok=True)
    return project


def test_a_helper_edited_calls_deep_in_another_module_invalidates(project: Project) -> None:
    # train -> prepare -> helpers.clean -> helpers.normalize
    project.edit("helpers.py", "return x + 10", "return x + 20")
    run = project.call("pipeline", "train", 1)
    assert run["state"] == "Completed"
    assert run["differences"] == ["helper `helpers.normalize` changed"]
    assert run["explain"].startswith("miss: helper `helpers.normalize` changed (key ")
    assert project.call("pipeline", "train", 1)["state"] == "Cached"


def test_task_source_alone_misses_the_helper_edit_that_code_sees(project: Project) -> None:
    before = project.call("pipeline", "train_by_source", 1)
    project.edit("helpers.py", "return x + 10", "return x + 20")
    stale = project.call("pipeline", "train_by_source", 1)
    assert stale["state"] == "Cached" and stale["value"] == before["value"]  # the hole CODE closes
    assert project.call("pipeline", "train", 1)["state"] == "Completed"


def test_comment_whitespace_and_docstring_edits_do_not_invalidate(project: Project) -> None:
    project.edit("helpers.py", "def normalize(x):\n    return x + 10",
                 'def normalize(x):\n    """Shift into range."""\n    # the offset\n\n    return (x +   10)  # why 10')
    project.edit("helpers.py", "def clean(x):", "def clean(x):  # noisy input")
    project.edit("pipeline.py", "def prepare(x):", "# prepare the input\ndef prepare( x ):")
    run = project.call("pipeline", "train", 1)
    assert run["state"] == "Cached", run


def test_a_class_method_used_by_the_task(project: Project) -> None:
    project.edit("shapes.py", "return self.k * x", "return self.k * x * 10")
    run = project.call("pipeline", "train", 1)
    assert run["state"] == "Completed"
    assert run["differences"] == ["helper `shapes.Scaler` changed"]


def test_a_closure_body_and_its_captured_constant(project: Project) -> None:
    project.edit("pipeline.py", "return x * k", "return x * k + 0.5")
    run = project.call("pipeline", "train", 1)
    assert run["differences"] == ["helper `make_scaler.<locals>.scale` changed"]
    project.edit("pipeline.py", "make_scaler(3)", "make_scaler(4)")
    run = project.call("pipeline", "train", 1)
    assert run["state"] == "Completed"
    assert run["differences"] == ["constant `make_scaler.<locals>.scale.k` changed"]


def test_a_plain_constant_is_in_the_key_and_a_dict_is_named_as_not_tracked(project: Project) -> None:
    project.edit("pipeline.py", "FACTOR = 2", "FACTOR = 3")
    run = project.call("pipeline", "train", 1)
    assert run["state"] == "Completed"
    assert run["differences"] == ["constant `FACTOR` changed"]
    (note,) = run["notes"]
    assert note.startswith("CODE does not track `CONFIG` (a dict)")
    assert "; note: CODE does not track `CONFIG` (a dict)" in run["explain"]
    project.edit("pipeline.py", '{"lr": 0.1}', '{"lr": 0.2}')
    assert project.call("pipeline", "train", 1)["state"] == "Cached"  # documented: not tracked


def test_a_helper_that_is_no_longer_called(project: Project) -> None:
    project.edit("pipeline.py", "return helpers.clean(x) + 1", "return x + 1")
    run = project.call("pipeline", "train", 1)
    assert run["state"] == "Completed"
    assert run["differences"] == [
        "helper `helpers.clean` is no longer used by the task's code",
        "helper `helpers.normalize` is no longer used by the task's code",
        "helper `prepare` changed",
    ]


def test_recursion_mutual_recursion_and_a_helper_defined_below_the_task(tmp_path: Path) -> None:
    project = Project(tmp_path / "proj")
    project.write("recursive.py", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS


        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2) + parity(n)


        def parity(n):
            return 0 if is_even(n) else 0


        def is_even(n):
            return True if n == 0 else is_odd(n - 1)


        def is_odd(n):
            return False if n == 0 else is_even(n - 1)
    ''')
    assert project.call("recursive", "fib", 5)["state"] == "Completed"
    assert project.call("recursive", "fib", 5)["state"] == "Cached"
    project.edit("recursive.py", "return False if n == 0", "return False if n <= 0")
    run = project.call("recursive", "fib", 5)
    assert run["state"] == "Completed"
    assert run["differences"] == ["helper `is_odd` changed"]
    assert run["notes"] == []  # every name resolved, recursion included


def test_an_installed_package_is_not_traced_but_packages_auto_covers_it(tmp_path: Path) -> None:
    # A distribution installed the way pip lays it out: the module and its .dist-info.
    site = tmp_path / "env" / "site-packages"
    (site / "fakestats").mkdir(parents=True)
    (site / "fakestats" / "__init__.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")

    def install(version: str) -> None:
        for old in site.glob("fakestats-*.dist-info"):
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        info = site / f"fakestats-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakestats\nVersion: {version}\n")
        (info / "top_level.txt").write_text("fakestats\n")
        (info / "RECORD").write_text("fakestats/__init__.py,,\n")

    install("1.0")
    project = Project(tmp_path / "proj", extra_path=(site,))
    project.write("model.py", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS, Packages
        import fakestats


        @task(cache_policy=INPUTS + CODE + Packages.auto(), result_storage="results")
        def fit(xs):
            return fakestats.mean(xs)
    ''')
    assert project.call("model", "fit", [1, 2])["state"] == "Completed"
    # The package's own code is not traced: editing it does not invalidate...
    (site / "fakestats" / "__init__.py").write_text("def mean(xs):\n    return sum(xs) / len(xs) + 0\n")
    assert project.call("model", "fit", [1, 2])["state"] == "Cached"
    # ...its version does.
    install("1.1")
    run = project.call("model", "fit", [1, 2])
    assert run["state"] == "Completed"
    assert run["differences"] == ["fakestats 1.0 -> 1.1"]
    assert run["explain"].startswith("miss: fakestats 1.0 -> 1.1 (key ")
    assert project.call("model", "fit", [1, 2])["state"] == "Cached"


def test_keys_agree_across_interpreters_and_hash_seeds(project: Project) -> None:
    keys = {project.call("pipeline", "train", 1, PYTHONHASHSEED=seed)["key"] for seed in ("0", "7")}
    assert len(keys) == 1


def test_a_checkout_in_another_directory_gives_the_same_key(project: Project, tmp_path: Path) -> None:
    moved = Project(tmp_path / "elsewhere" / "checkout")
    shutil.copytree(project.root, moved.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results"))
    assert moved.call("pipeline", "train", 1)["key"] == project.call("pipeline", "train", 1)["key"]


def test_a_task_typed_at_a_repl_traces_the_modules_in_the_working_directory(tmp_path: Path) -> None:
    project = Project(tmp_path / "proj")
    project.write("helpers.py", HELPERS)
    session = '''
        import helpers
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS

        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def train(x):
            return helpers.clean(x)

        answer = train.explain(1)
        print(train(1, return_state=True).name, answer.differences)
    '''
    assert project.script(session).split()[0] == "Completed"
    assert project.script(session).split()[0] == "Cached"
    project.edit("helpers.py", "return x + 10", "return x + 20")
    assert project.script(session).strip() == "Completed ['helper `helpers.normalize` changed']"


def test_a_project_module_imported_only_inside_the_task(tmp_path: Path) -> None:
    project = Project(tmp_path / "proj")
    project.write("helpers.py", HELPERS)
    project.write("lazy.py", '''
        from resultkit import task
        from resultkit.cache_policies import CODE, INPUTS


        @task(cache_policy=INPUTS + CODE, result_storage="results")
        def train(x):
            from helpers import clean
            return clean(x)
    ''')
    assert project.call("lazy", "train", 1)["state"] == "Completed"
    assert project.call("lazy", "train", 1)["state"] == "Cached"
    project.edit("helpers.py", "return x + 10", "return x + 20")
    run = project.call("lazy", "train", 1)
    assert run["state"] == "Completed" and run["differences"] == ["helper `helpers.normalize` changed"]
