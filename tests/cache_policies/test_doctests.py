"""The examples in the cache_policies docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "resultkit.cache_policies",
    "resultkit.cache_policies.context",
    "resultkit.cache_policies.hashing",
    "resultkit.cache_policies.policies",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
