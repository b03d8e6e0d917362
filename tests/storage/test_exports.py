"""Pins the public names of resultkit.storage: adding or losing one is a visible change."""

from __future__ import annotations

import resultkit.storage as storage_module

PUBLIC = {
    "RESERVED_PREFIX", "CachedStorage", "FsspecStorage", "GCSStorage", "LocalStorage",
    "MemoryStorage", "S3Storage", "Storage", "delete_block", "list_blocks", "load_storage",
    "resolve_storage", "save_block", "validate_key", "register_storage", "LockManagerSpec", "TempFile",
}


def test_public_names_are_pinned_and_importable() -> None:
    assert set(storage_module.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(storage_module, name) is not None

