"""The citation helper refuses phrases that do not pin one line of the migration guide."""

from __future__ import annotations

import pytest

from ._cite import GUIDE, cited_line, differs


def test_a_phrase_on_one_line_cites_that_line() -> None:
    line = cited_line("Keys are type-aware")
    assert "Keys are type-aware" in GUIDE.read_text(encoding="utf-8").splitlines()[line - 1]
    assert differs("Keys are type-aware") == f"docs/migrating-from-prefect.md:{line}: Keys are type-aware"


def test_a_missing_phrase_fails() -> None:
    with pytest.raises(AssertionError, match="on 0 lines"):
        cited_line("no such phrase in the guide, surely")
