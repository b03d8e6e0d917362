"""The public names of resultkit.results are part of the interface: changing them is visible."""

from __future__ import annotations

import resultkit.results


def test_exported_names() -> None:
    assert sorted(resultkit.results.__all__) == [
        "ResultLiteral",
        "ResultRecord",
        "ResultRecordMetadata",
        "ResultReference",
        "ResultStore",
    ]
    for name in resultkit.results.__all__:
        assert getattr(resultkit.results, name).__module__ == "resultkit.results"
