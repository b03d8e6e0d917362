"""Type aliases shared by every layer."""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["Buffer"]

#: A bytes-like object that can be written or hashed without copying.
Buffer: TypeAlias = bytes | bytearray | memoryview
