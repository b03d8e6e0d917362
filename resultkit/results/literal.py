"""Literal results: ``True``, ``False`` and ``None`` live in the record header.

Their records have an empty payload, so reading them needs no serializer (and no
unpickling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ResultkitError

__all__ = ["ResultLiteral"]


@dataclass(frozen=True)
class ResultLiteral:
    """A ``True``/``False``/``None`` result, stored in the header as JSON ``true``/``false``/``null``.

    >>> ResultLiteral.supports(None), ResultLiteral.supports(0)
    (True, False)
    """

    value: bool | None

    def __post_init__(self) -> None:
        if not self.supports(self.value):
            raise ResultkitError(
                f"ResultLiteral holds only True, False or None, got {type(self.value).__name__} "
                f"{self.value!r}; store other values with a serializer"
            )

    @staticmethod
    def supports(value: Any) -> bool:
        """Whether ``value`` is stored as a literal (exactly ``True``, ``False`` or ``None``; not 0 or 1)."""
        return value is None or value is True or value is False
