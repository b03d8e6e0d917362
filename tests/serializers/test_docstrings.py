"""The examples in the serializers' docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest


# The package re-exports its classes under its own name, so its doctests cover theirs.
@pytest.mark.parametrize("module_name", ["resultkit.serializers", "resultkit.serializers.base"])
def test_docstring_examples(module_name: str) -> None:
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 4
