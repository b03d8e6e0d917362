"""The storage registry: one table from URL schemes and block types to storage classes.

Each entry names its class as ``"module:Class"`` and is imported only when a URL or a
saved block needs it, so registering costs nothing and ``import resultkit`` imports no
backend. An entry may name the resultkit extra (or the pip requirement) that installs
what the class needs; a missing package is then a ``ConfigurationError`` saying what to
install. Register a backend of your own with :func:`register_storage`:

>>> register_storage("dict", "my_package.storage:DictStorage")  # doctest: +SKIP
>>> resolve_storage("dict://scratch")                           # doctest: +SKIP

A scheme registered here resolves URLs (``"dict://..."`` goes to
``DictStorage.from_url(url, **options)``) and loads saved blocks whose type it is (a
storage saves itself under its class's ``block_type``, so give the class
``block_type = "dict"``). URLs of other schemes go to ``FsspecStorage``.

The lazy import itself (and the install hint) is ``resultkit._targets``, shared with the
serializer and lock-manager tables, so a hint for a missing package reads the same everywhere.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from .._targets import install_hint, load_target, target_path
from ..errors import ConfigurationError

__all__ = [
    "StorageEntry",
    "block_types",
    "generation",
    "install_hint",
    "register_storage",
    "storage_class",
    "storage_entry",
]

_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*\Z")


@dataclass(frozen=True)
class StorageEntry:
    """One row of the registry: ``scheme`` -> ``target`` (``"module:Class"``)."""

    scheme: str
    target: str
    #: The resultkit extra (``"s3"``) or pip requirement (``"my-package[dict]"``) it needs, or None.
    extra: str | None = None
    #: Whether ``scheme://...`` URLs resolve to it.
    url: bool = True
    #: Whether saved blocks of type ``scheme`` load with it.
    block: bool = True


_entries: dict[str, StorageEntry] = {}
_guard = threading.Lock()
_generation = 0


def _add(entry: StorageEntry) -> None:
    global _generation
    with _guard:
        _entries[entry.scheme] = entry
        _generation += 1


def register_storage(scheme: str, target: str | type[Any], *, extra: str | None = None) -> None:
    """Make ``scheme://...`` URLs and saved blocks of type ``scheme`` build ``target``.

    ``target`` is the class or its ``"module:Class"`` path (imported on first use);
    ``extra`` is what to suggest installing when importing it fails: one of resultkit's
    extras (``"s3"`` suggests ``pip install 'resultkit[s3]'``) or any pip requirement
    (``"my-package[dict]"``). Registering a scheme again
    replaces its entry.

    >>> register_storage("dict", "my_package.storage:DictStorage", extra="my-package")  # doctest: +SKIP
    """
    if not isinstance(scheme, str) or not _SCHEME.match(scheme) or len(scheme) < 2:
        raise ConfigurationError(
            f"register_storage scheme must be a lowercase URL scheme of two or more letters, digits, "
            f"'+', '-' or '.' (e.g. 'dict'), got {scheme!r}"
        )
    if extra is not None and (not isinstance(extra, str) or not extra.strip()):
        raise ConfigurationError(
            f"register_storage extra must be None or the extra/requirement to install, e.g. 's3', got {extra!r}"
        )
    _add(StorageEntry(scheme, target_path(target), extra))


def storage_entry(name: str, *, url: bool = False, block: bool = False) -> StorageEntry | None:
    """The entry for ``name`` that resolves URLs (``url=True``) or loads blocks (``block=True``)."""
    entry = _entries.get(name)
    if entry is None or (url and not entry.url) or (block and not entry.block):
        return None
    return entry


def storage_class(entry: StorageEntry) -> type[Any]:
    """The class ``entry`` names, imported now."""
    cls = load_target(entry.target, f"storage {entry.scheme!r}", entry.extra)
    if not isinstance(cls, type):
        raise ConfigurationError(
            f"storage {entry.scheme!r} is registered as {entry.target!r}, which is not a class"
        )
    return cls


def block_types() -> list[str]:
    """Every block type a saved block may have, sorted."""
    return sorted(name for name, entry in _entries.items() if entry.block)


def generation() -> int:
    """A number that changes whenever the table does (so resolutions cached before are dropped)."""
    return _generation


for _entry in (
    StorageEntry("local", "resultkit.storage.local:LocalStorage"),
    StorageEntry("file", "resultkit.storage.local:LocalStorage", block=False),
    # Spelled out, so the hint is right even where resultkit's metadata is not installed.
    StorageEntry("s3", "resultkit.storage.s3:S3Storage", "resultkit[s3]"),
    StorageEntry("s3a", "resultkit.storage.s3:S3Storage", "resultkit[s3]", block=False),
    StorageEntry("gcs", "resultkit.storage.gcs:GCSStorage", "resultkit[gcs]"),
    StorageEntry("gs", "resultkit.storage.gcs:GCSStorage", "resultkit[gcs]", block=False),
    # Block types only: any other URL scheme goes to FsspecStorage anyway, and "cached://"
    # is fsspec's own caching file system.
    StorageEntry("fsspec", "resultkit.storage.fsspec:FsspecStorage", url=False),
    StorageEntry("cached", "resultkit.storage.cached:CachedStorage", url=False),
):
    _add(_entry)
del _entry
