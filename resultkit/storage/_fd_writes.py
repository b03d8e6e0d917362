"""Writing buffers to a file descriptor without joining them: one ``writev`` for a record's
header and chunks, positional writes from a thread for a large body, and a close left to a
thread (the last close of a replaced large file frees its page-cache pages).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence

from .._types import Buffer, as_byte_view

__all__ = ["BackgroundWrite", "close_later", "pwrite_all", "write_all"]

# Linux caps a single write() at about 2 GiB; slicing bigger views keeps each call bounded.
_MAX_WRITE = 1 << 30
# Up to this many chunks go to the kernel in one writev() (a record is header + a few chunks).
_WRITEV_MAX_CHUNKS = 16
_writev = getattr(os, "writev", None)

def write_all(fd: int, chunks: Iterable[Buffer]) -> int:
    """Write every chunk to ``fd`` without joining them, looping on partial writes; returns the bytes written."""
    # Only chunks already in memory (a list or tuple) are gathered: a generator may be
    # streaming more than fits, so it is written as it comes.
    if _writev is None or not isinstance(chunks, (list, tuple)) or not 0 < len(chunks) <= _WRITEV_MAX_CHUNKS:
        return _write_each(fd, chunks)
    views = [as_byte_view(chunk) for chunk in chunks]
    total = sum(view.nbytes for view in views)
    if total > _MAX_WRITE:
        return _write_each(fd, views)
    # One syscall for header + payload; a short write finishes chunk by chunk.
    written = _writev(fd, views)
    if written < total:
        _write_each(fd, _after(views, written))
    return total


def _after(views: list[memoryview], skip: int) -> list[memoryview]:
    """``views`` with their first ``skip`` bytes dropped."""
    rest: list[memoryview] = []
    for view in views:
        if skip >= view.nbytes:
            skip -= view.nbytes
            continue
        rest.append(view[skip:])
        skip = 0
    return rest


def _write_each(fd: int, chunks: Iterable[Buffer]) -> int:
    written = 0
    for chunk in chunks:
        view = as_byte_view(chunk)
        offset, total = 0, view.nbytes
        while offset < total:
            offset += os.write(fd, view[offset : offset + _MAX_WRITE])
        written += total
    return written


def pwrite_all(fd: int, chunks: Iterable[Buffer], offset: int) -> int:
    """Write every chunk to ``fd`` from ``offset`` on (not moving the file position); returns the end offset."""
    for chunk in chunks:
        view = as_byte_view(chunk)
        done, total = 0, view.nbytes
        while done < total:
            done += os.pwrite(fd, view[done : done + _MAX_WRITE], offset + done)
        offset += total
    return offset


class BackgroundWrite:
    """``pwrite_all(fd, body, offset)`` in a thread; :meth:`finish` waits and re-raises its error."""

    def __init__(self, fd: int, body: Sequence[memoryview], offset: int) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fd, body, offset), daemon=True,
                                        name="resultkit-write")
        self._thread.start()

    def _run(self, fd: int, body: Sequence[memoryview], offset: int) -> None:
        try:
            pwrite_all(fd, body, offset)
        except BaseException as exc:  # handed to the caller's thread by finish()
            self._error = exc

    def finish(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def close_later(fd: int) -> None:
    """Close ``fd`` in a background thread: the last close of a replaced file frees its pages."""
    threading.Thread(target=os.close, args=(fd,), daemon=True, name="resultkit-release").start()
