"""Every ``>>>`` example in every resultkit module runs and shows what it claims.

Each example runs once, in the namespace of the module that defines it, also for a class
a package re-exports under its own name (its ``__module__`` rewritten, so doctest's own
test of where an object comes from would find it nowhere). Examples that need a server or
a user's project say ``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resultkit

PACKAGE_DIR = Path(resultkit.__file__).parent
MODULES = sorted(["resultkit", *(info.name for info in pkgutil.walk_packages([str(PACKAGE_DIR)], "resultkit."))])
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _defining_module(cls: type) -> ModuleType | None:
    """The module whose code defines ``cls``: the one its methods' globals belong to."""
    for value in vars(cls).values():
        function = getattr(value, "__func__", getattr(value, "fget", value))
        if inspect.isfunction(function) and function.__qualname__.startswith(cls.__qualname__ + "."):
            return sys.modules.get(function.__globals__["__name__"])
    return sys.modules.get(cls.__module__)  # no methods: where it says it lives


class _DefiningModuleFinder(doctest.DocTestFinder):
    """Finds an object's examples in the module whose code defines it, whatever its ``__module__``."""

    def _from_module(self, module: ModuleType | None, object: Any) -> bool:
        if module is not None and inspect.isfunction(object):
            return inspect.unwrap(object).__globals__ is module.__dict__  # decorated: the code inside
        if module is not None and inspect.isclass(object):
            return _defining_module(object) is module
        return bool(super()._from_module(module, object))


def _examples(module_name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(module_name)
    return [test for test in _DefiningModuleFinder().find(module) if test.examples]


@pytest.mark.parametrize("module_name", MODULES)
def test_module_examples_run(module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in _examples(module_name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {module_name} failed (output above)"


def test_every_example_in_the_source_is_found() -> None:
    """No example hides where the finder does not look (a name not exported, a comment)."""
    written = sum(len(re.findall(r"^\s*>>> ", path.read_text(), re.M)) for path in PACKAGE_DIR.rglob("*.py"))
    found = sum(len(test.examples) for name in MODULES for test in _examples(name))
    assert found == written
