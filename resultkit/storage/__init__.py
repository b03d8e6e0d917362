"""Where records live: bytes at relative keys, on local disk, in memory or in object stores."""

from __future__ import annotations

from .base import RESERVED_PREFIX, Storage, validate_key
from .blocks import delete_block, list_blocks, load_storage, save_block
from .fsspec import FsspecStorage
from .gcs import GCSStorage
from .local import LocalStorage
from .memory import MemoryStorage
from .resolve import resolve_storage
from .s3 import S3Storage

__all__ = [
    "RESERVED_PREFIX",
    "FsspecStorage",
    "GCSStorage",
    "LocalStorage",
    "MemoryStorage",
    "S3Storage",
    "Storage",
    "delete_block",
    "list_blocks",
    "load_storage",
    "resolve_storage",
    "save_block",
    "validate_key",
]
