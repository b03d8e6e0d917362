"""Copy-on-write mappings of whole local files, for zero-copy loads of large records.

A record file is mapped ``MAP_PRIVATE`` (``mmap.ACCESS_COPY``): the loaded value may be
mutated by its owner (the kernel copies the touched pages), and the file never changes.
The mapping stays valid while the value lives, whatever happens to the record meanwhile,
because no resultkit writer truncates or rewrites a file in place: records are replaced
by renaming a new file over them and deleted by unlinking, which leave the mapped inode
intact. A file truncated by something else while mapped would fault (SIGBUS) on access:
that is when a user turns mapping off (``RESULTKIT_MMAP=0`` or ``mmap=False``).
"""

from __future__ import annotations

import mmap
import os
import stat

from .._env import env_bool

__all__ = ["MappedFile", "map_descriptor", "mapping_enabled"]

# Windows cannot rename over or delete a mapped file, so a live value would block writers there.
_CAN_MAP = os.name == "posix" and hasattr(mmap, "ACCESS_COPY")


class MappedFile(mmap.mmap):
    """A private copy-on-write mapping of one record file; unmapped when its last view goes."""

    #: Read by the serializers' ``release_consumed``: the load in progress is its one reader.
    releasable_pages = True


def mapping_enabled(option: bool | None) -> bool:
    """Whether reads may map files: the storage's ``mmap`` option, else ``RESULTKIT_MMAP`` (default on)."""
    if not _CAN_MAP:
        return False
    if option is not None:
        return option
    return env_bool("mmap", default=True)


def map_descriptor(fd: int, size: int) -> memoryview | None:
    """A writable copy-on-write view of the regular file ``fd`` if it is exactly ``size`` bytes, else None.

    The size is checked with ``fstat`` before mapping, so the mapping never reaches past
    the end of the file (a short file is reported by the caller's streamed read as a
    corrupt record, never a SIGBUS). ``fd`` stays open and owned by the caller.
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size != size or size == 0:
        return None
    return memoryview(MappedFile(fd, size, access=mmap.ACCESS_COPY))
