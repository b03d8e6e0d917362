"""Saved storage configurations ("blocks"), addressed by slugs such as ``"s3/prod"``.

All blocks live in one TOML file, ``$RESULTKIT_HOME/blocks.toml`` (mode 0600), one table
per block: ``[s3.prod]`` holds the options that rebuild ``S3Storage``. Credentials are
never written: a block may hold only the *names* of environment variables to read them
from (``key_env = "MY_KEY_ID"``); options that look secret are refused. A block's type
names its class through the storage registry (``registry.py``), so a block saved by a
registered third-party backend loads like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError, ResultkitError
from ._blockfile import blocks_file, delete_block, list_blocks, read_block, save_storage
from .base import Storage
from .registry import block_types, storage_class, storage_entry

__all__ = ["blocks_file", "delete_block", "list_blocks", "load_storage", "save_block", "storage_from_config"]


def save_block(storage: Storage, name: str, overwrite: bool = False) -> str:
    """Save ``storage``'s configuration as ``"<type>/<name>"`` and return that slug.

    >>> save_block(S3Storage("my-bucket", "results"), "prod")   # doctest: +SKIP
    's3/prod'
    """
    if not isinstance(storage, Storage):
        raise ConfigurationError(f"save_block needs a Storage instance, got {type(storage).__name__}")
    return save_storage(storage, name, overwrite=overwrite)


def storage_from_config(config: Mapping[str, Any], where: str = "storage config") -> Storage:
    """Build a storage from ``{"type": <block type>, **options}`` (a block, or a nested one)."""
    options = dict(config)
    block_type = options.pop("type", None)
    entry = storage_entry(block_type, block=True) if isinstance(block_type, str) else None
    if entry is None:
        raise ConfigurationError(
            f"{where} has storage type {block_type!r}; expected one of {', '.join(block_types())} "
            "(register others with resultkit.storage.register_storage)"
        )
    storage_cls = storage_class(entry)
    try:
        storage = storage_cls(**options)
    except ConfigurationError:
        raise
    except (TypeError, ValueError, ResultkitError) as exc:
        raise ConfigurationError(
            f"{where} does not rebuild a {storage_cls.__name__}: {exc}; save it again"
        ) from exc
    if not isinstance(storage, Storage):
        raise ConfigurationError(
            f"{where} built a {type(storage).__name__}, which is not a Storage; register a Storage subclass"
        )
    return storage


def load_storage(slug: str) -> Storage:
    """The storage saved under ``slug``, e.g. ``load_storage("s3/prod")``."""
    block_type, config = read_block(slug)
    return storage_from_config({"type": block_type, **config}, where=f"saved block {slug!r}")
