"""resultkit's log lines under Prefect: visible in a Prefect run's console without settings.

Prefect's logging config leaves the root logger at WARNING, so the ``resultkit``
logger's INFO lines (cache hits and misses) are dropped unless the user sets
``PREFECT_LOGGING_EXTRA_LOGGERS`` and a level. When Prefect has configured logging in
this process, :func:`adopt_prefect_logging` sets the ``resultkit`` logger to INFO (if
the user left it unset), so its lines reach Prefect's console handler on the root
logger, once, with no other change.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["adopt_prefect_logging"]

_adopted = False


def adopt_prefect_logging() -> None:
    """Let ``resultkit`` INFO lines through when Prefect configured this process's logging."""
    global _adopted
    if _adopted or "prefect" not in sys.modules:
        return
    configuration = sys.modules.get("prefect.logging.configuration")
    if configuration is None or not getattr(configuration, "PROCESS_LOGGING_CONFIG", None):
        return  # Prefect is imported but has not set logging up (yet): look again later
    _adopted = True
    resultkit_logger = logging.getLogger("resultkit")
    if resultkit_logger.level == logging.NOTSET:
        resultkit_logger.setLevel(logging.INFO)
