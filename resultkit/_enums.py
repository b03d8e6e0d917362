"""Enums more than one layer needs: ``IsolationLevel`` (cache policies, settings, transactions).

``resultkit.transactions.IsolationLevel`` is this same object.
"""

from __future__ import annotations

import enum

from .errors import ConfigurationError

__all__ = ["IsolationLevel", "isolation_level_of"]


class IsolationLevel(str, enum.Enum):
    """How concurrent transactions on one key see each other.

    ``READ_COMMITTED`` takes no lock (the last whole write wins); ``SERIALIZABLE``
    holds the key's lock from BEGIN to the end of COMMIT or ROLLBACK.
    """

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


def isolation_level_of(value: object, where: str) -> IsolationLevel:
    """``value`` as an ``IsolationLevel`` (names are case-insensitive); ``ConfigurationError`` if not one.

    >>> isolation_level_of("serializable", "settings()")
    <IsolationLevel.SERIALIZABLE: 'SERIALIZABLE'>
    """
    if isinstance(value, IsolationLevel):
        return value
    if isinstance(value, str) and value.strip().upper() in IsolationLevel.__members__:
        return IsolationLevel[value.strip().upper()]
    choices = ", ".join(IsolationLevel.__members__)
    raise ConfigurationError(
        f"{where}: isolation_level={value!r} is not one of {choices}; use e.g. "
        "isolation_level=\"SERIALIZABLE\" (or IsolationLevel.SERIALIZABLE from resultkit.transactions)"
    )
