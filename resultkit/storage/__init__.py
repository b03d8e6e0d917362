"""Where records live: bytes at relative keys, on local disk, in memory or in object stores.

The fsspec-based backends, blocks and resolution load on first use, so ``import
resultkit`` does not pay for importing fsspec.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import RESERVED_PREFIX, LockManagerSpec, Storage, TempFile, validate_key
from .local import LocalStorage
from .memory import MemoryStorage
from .registry import register_storage

if TYPE_CHECKING:
    from .blocks import delete_block, list_blocks, load_storage, save_block
    from .cached import CachedStorage
    from .fsspec import FsspecStorage
    from .gcs import GCSStorage
    from .resolve import resolve_storage
    from .s3 import S3Storage

__all__ = [
    "RESERVED_PREFIX",
    "CachedStorage",
    "FsspecStorage",
    "GCSStorage",
    "LocalStorage",
    "LockManagerSpec",
    "MemoryStorage",
    "S3Storage",
    "Storage",
    "TempFile",
    "delete_block",
    "list_blocks",
    "load_storage",
    "register_storage",
    "resolve_storage",
    "save_block",
    "validate_key",
]

_LAZY = {
    "CachedStorage": "cached",
    "FsspecStorage": "fsspec",
    "GCSStorage": "gcs",
    "S3Storage": "s3",
    "delete_block": "blocks",
    "list_blocks": "blocks",
    "load_storage": "blocks",
    "save_block": "blocks",
    "resolve_storage": "resolve",
}


# Users see resultkit.storage.LocalStorage, not the implementation module's path.
for _name in ("Storage", "validate_key", "LocalStorage", "MemoryStorage", "LockManagerSpec", "TempFile",
              "register_storage"):
    globals()[_name].__module__ = __name__
del _name


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    value.__module__ = __name__  # as the eager names above, on first use
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
