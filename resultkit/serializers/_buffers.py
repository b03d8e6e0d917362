"""Payload buffers for large loads: allocated untouched, and able to give back consumed pages.

A loaded value keeps its payload buffer alive while numpy arrays view it. Parts that
a rebuild function copied out entirely (the UTF-8 text of a string column) would stay
resident as dead weight; :func:`release_consumed` returns their pages to the kernel.
It acts only on buffers made by :func:`allocate_payload_buffer`, whose one reader is
the load in progress.
"""

from __future__ import annotations

import contextlib
import mmap
from typing import Any

from .._types import Buffer

__all__ = ["PayloadMapping", "allocate_payload_buffer", "release_consumed"]

# Below this, a bytearray's zero-fill costs less than a mapping's two system calls.
_MAPPED_FROM = 1 << 20
_CAN_MAP_PRIVATE = hasattr(mmap, "MAP_PRIVATE") and hasattr(mmap, "MAP_ANONYMOUS")
_MADV_HUGEPAGE: int | None = getattr(mmap, "MADV_HUGEPAGE", None)
_MADV_DONTNEED: int | None = getattr(mmap, "MADV_DONTNEED", None)


class PayloadMapping(mmap.mmap):
    """A private anonymous mapping holding one payload being loaded (see module docstring)."""

    #: The one reader of this mapping is the load in progress: consumed pages may be given back.
    #: storage's MappedFile (a record file mapped copy-on-write) says so too.
    releasable_pages = True


def allocate_payload_buffer(size: int) -> Buffer:
    """A writable buffer of ``size`` bytes whose pages are not touched until written.

    ``bytearray(size)`` zero-fills every page before a read fills it again (a second
    pass over the whole payload). A private anonymous mapping is zeroed lazily by the
    kernel as ``readinto`` first writes each page, and huge pages cut the page faults
    512-fold. The returned view keeps the mapping alive; it is unmapped when the last
    view into it (e.g. a loaded numpy array) goes.
    """
    if size < _MAPPED_FROM or not _CAN_MAP_PRIVATE:
        return bytearray(size)
    mapping = PayloadMapping(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if _MADV_HUGEPAGE is not None:
        with contextlib.suppress(OSError):  # huge pages may be disabled: still correct
            mapping.madvise(_MADV_HUGEPAGE)
    return memoryview(mapping)


def release_consumed(data: Any) -> None:
    """Give back the whole pages under ``data`` if it lies in a :class:`PayloadMapping`.

    A payload mapped copy-on-write from its record file (storage's ``MappedFile``) qualifies
    too: dropped pages of a private file mapping are simply reread from the file if touched.
    Call it only on a part of the payload that nothing will read again. Pages shared
    with neighbouring parts (the partial pages at either end) are kept.
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    mapping = view.obj
    if not (isinstance(mapping, mmap.mmap) and getattr(mapping, "releasable_pages", False)) or _MADV_DONTNEED is None or view.nbytes < mmap.PAGESIZE:
        return
    try:  # numpy reads the address of read-only views too (parts loaded as READONLY_BUFFER)
        import numpy
    except ImportError:
        return
    try:
        start = _address(numpy, view) - _address(numpy, mapping)
    except (TypeError, ValueError):  # a non-contiguous view of it: keep the pages
        return
    first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    end = (start + view.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if end > first:
        with contextlib.suppress(OSError):  # an optimisation only
            mapping.madvise(_MADV_DONTNEED, first, end - first)


def _address(numpy: Any, buffer: Any) -> int:
    return int(numpy.frombuffer(buffer, dtype=numpy.uint8).__array_interface__["data"][0])
