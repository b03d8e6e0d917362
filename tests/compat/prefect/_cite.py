"""Cite the line of docs/migrating-from-prefect.md that documents a deliberate difference.

Each ``xfail(strict=True)`` in this folder names the difference it stands for by a phrase
that must occur on exactly one line of the migration guide; :func:`differs` turns the
phrase into ``docs/migrating-from-prefect.md:LINE: phrase``. A phrase that is missing or
ambiguous fails at import, so a citation can never point at the wrong line.

>>> import pytest
>>> mark = pytest.mark.xfail(strict=True, reason=differs("Keys are type-aware"))
"""

from __future__ import annotations

from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "migrating-from-prefect.md"
_LINES = GUIDE.read_text(encoding="utf-8").splitlines()


def cited_line(phrase: str) -> int:
    """The 1-based line of the migration guide holding ``phrase`` (it must hold it once)."""
    hits = [number for number, line in enumerate(_LINES, start=1) if phrase in line]
    if len(hits) != 1:
        raise AssertionError(
            f"phrase {phrase!r} is on {len(hits)} lines of {GUIDE.name} (lines {hits}); "
            "cite a phrase that occurs on exactly one line"
        )
    return hits[0]


def differs(phrase: str) -> str:
    """An xfail reason citing the guide's line that documents ``phrase``."""
    return f"docs/migrating-from-prefect.md:{cited_line(phrase)}: {phrase}"


def xfail_differs(phrase: str) -> pytest.MarkDecorator:
    """``pytest.mark.xfail(strict=True)`` for a deliberate difference, citing its guide line."""
    return pytest.mark.xfail(strict=True, reason=differs(phrase))
