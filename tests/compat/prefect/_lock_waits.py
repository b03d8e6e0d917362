"""A sync point for the lock tests: an event set when a lock wait begins."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def lock_wait_started() -> Iterator[threading.Event]:
    """An event set when resultkit.locking logs (at debug) that a caller started waiting."""
    event = threading.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting" in record.getMessage():
                event.set()

    logger = logging.getLogger("resultkit.locking")
    handler, level = Handler(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield event
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
