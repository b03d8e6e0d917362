"""resultkit under Prefect: its log lines in Prefect's console, its hits as Prefect's ``Cached``.

Prefect's logging config leaves the root logger at WARNING, so the ``resultkit``
logger's INFO lines (cache hits and misses) are dropped unless the user sets
``PREFECT_LOGGING_EXTRA_LOGGERS`` and a level. When Prefect has configured logging in
this process, :func:`adopt_prefect_logging` sets the ``resultkit`` logger to INFO (if
the user left it unset), so its lines reach Prefect's console handler on the root
logger, once, with no other change.

A resultkit task wrapped by ``@prefect.task`` is the function Prefect's task run calls;
on a hit it returns Prefect's ``Completed`` state named ``Cached`` (:func:`cached_for_prefect`),
so Prefect records and shows the run as ``Cached`` and hands on the same value.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

__all__ = ["adopt_prefect_logging", "cached_for_prefect", "prefect_is_configured"]

_adopted = False


def prefect_is_configured() -> bool:
    """Whether Prefect is imported and has configured this process's logging."""
    configuration = sys.modules.get("prefect.logging.configuration")
    return configuration is not None and bool(getattr(configuration, "PROCESS_LOGGING_CONFIG", None))


def adopt_prefect_logging() -> None:
    """Let ``resultkit`` INFO lines through when Prefect configured this process's logging."""
    global _adopted
    if _adopted or not prefect_is_configured():
        return  # not under Prefect (yet): look again at the next plan
    _adopted = True
    resultkit_logger = logging.getLogger("resultkit")
    if resultkit_logger.level == logging.NOTSET:
        resultkit_logger.setLevel(logging.INFO)


def cached_for_prefect(task: Any, value: Any) -> Any:
    """``value``, or Prefect's ``Cached`` state of it when ``task`` is the function of the
    Prefect task run in progress (``@prefect.task`` stacked on the resultkit task)."""
    context = sys.modules.get("prefect.context")
    run = context.TaskRunContext.get() if context is not None else None
    if run is None or getattr(getattr(run, "task", None), "fn", None) is not task:
        return value
    states = importlib.import_module("prefect.states")  # loaded by the run in progress
    return states.Completed(data=value, name="Cached")
