"""Where records live: bytes at relative keys, on local disk, in memory or in object stores."""

from __future__ import annotations

from .base import RESERVED_PREFIX, Storage, validate_key
from .local import LocalStorage
from .memory import MemoryStorage

__all__ = ["RESERVED_PREFIX", "LocalStorage", "MemoryStorage", "Storage", "validate_key"]
