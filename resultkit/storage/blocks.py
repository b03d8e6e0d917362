"""Saved storage configurations ("blocks"), addressed by slugs such as ``"s3/prod"``.

All blocks live in one TOML file, ``$RESULTKIT_HOME/blocks.toml`` (mode 0600), one table
per block: ``[s3.prod]`` holds the options that rebuild ``S3Storage``. Credentials are
never written: a block may hold only the *names* of environment variables to read them
from (``key_env = "MY_KEY_ID"``); options that look secret are refused.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
from filelock import FileLock

from .._env import read_toml, resultkit_home
from ..errors import ConfigurationError, ResultkitError
from .base import Storage
from .local import write_all

__all__ = ["blocks_file", "delete_block", "list_blocks", "load_storage", "save_block", "storage_from_config"]

#: Block type -> the class that rebuilds it (imported on first use).
BLOCK_CLASSES = {
    "local": "resultkit.storage.local:LocalStorage",
    "s3": "resultkit.storage.s3:S3Storage",
    "gcs": "resultkit.storage.gcs:GCSStorage",
    "fsspec": "resultkit.storage.fsspec:FsspecStorage",
    "cached": "resultkit.storage.cached:CachedStorage",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_SECRET_WORDS = frozenset({
    "key", "secret", "token", "password", "passwd", "pwd", "passphrase", "credential",
    "credentials", "sas", "auth", "authorization", "cookie", "signature",
})
# gcsfs ``token`` values that select an auth method rather than hold a credential.
_SAFE_TOKEN_VALUES = frozenset({"anon", "google_default", "cache", "cloud", "browser"})


def blocks_file() -> Path:
    """The TOML file holding every saved block."""
    return resultkit_home() / "blocks.toml"


def _read_blocks(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    data = read_toml(path, "saved storage blocks")
    return {t: dict(blocks) for t, blocks in data.items() if isinstance(blocks, dict)}


def _write_blocks(path: Path, blocks: dict[str, dict[str, dict[str, Any]]]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = tomli_w.dumps({t: b for t, b in sorted(blocks.items()) if b}).encode()
    temp = path.with_name(f".rk-tmp-{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            write_all(fd, [text])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _slugs(blocks: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    return sorted(f"{block_type}/{name}" for block_type, named in blocks.items() for name in named)


def _looks_secret(option: str) -> bool:
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", option).lower())
    return bool(_SECRET_WORDS.intersection(words)) or "connection_string" in option.lower()


def _check_option(where: str, name: str, value: Any) -> Any:
    """Return ``value`` as TOML-safe, or raise if it is a secret or not representable."""
    if not isinstance(name, str):
        raise ConfigurationError(f"option names must be strings, got {name!r} in {where}")
    if name.endswith("_env") or name == "env_options":
        names = value.values() if isinstance(value, dict) else [value]
        if not all(isinstance(v, str) and v for v in names):
            raise ConfigurationError(
                f"option {name!r} in {where} must name environment variables, got {value!r}"
            )
        return dict(value) if isinstance(value, dict) else value
    if _looks_secret(name) and not (name == "token" and value in _SAFE_TOKEN_VALUES):
        raise ConfigurationError(
            f"refusing to save option {name!r} of {where}: it looks like a credential, and "
            "credentials are never written to disk; leave it out to use the provider's default "
            "chain (environment, config files, instance roles), or name an environment variable "
            "(e.g. S3Storage(..., key_env='MY_KEY_ID', secret_env='MY_SECRET'))"
        )
    if isinstance(value, dict):
        return {k: _check_option(f"{where}.{name}", k, v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_check_option(where, name, v) for v in value]
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ConfigurationError(
        f"option {name!r} of {where} is a {type(value).__name__} ({value!r}), which cannot be "
        "saved; blocks hold strings, numbers, booleans, lists and tables only"
    )


def save_block(storage: Storage, name: str, overwrite: bool = False) -> str:
    """Save ``storage``'s configuration as ``"<type>/<name>"`` and return that slug.

    >>> save_block(S3Storage("my-bucket", "results"), "prod")   # doctest: +SKIP
    's3/prod'
    """
    if not isinstance(storage, Storage):
        raise ConfigurationError(f"save_block needs a Storage instance, got {type(storage).__name__}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"block name {name!r} is not usable; use letters, digits, '_', '-' and '.', e.g. 'prod'"
        )
    block_type = storage.block_type
    if block_type not in BLOCK_CLASSES:
        raise ConfigurationError(
            f"{type(storage).__name__} cannot be saved as a block (it lives only in this process); "
            f"save one of {', '.join(sorted(BLOCK_CLASSES))} storages instead"
        )
    try:
        config = storage.to_block()
    except ConfigurationError:
        raise
    except ResultkitError as exc:
        raise ConfigurationError(str(exc)) from exc
    slug = f"{block_type}/{name}"
    where = f"{type(storage).__name__} block {slug!r}"
    safe = {k: _check_option(where, k, v) for k, v in config.items() if v is not None}
    path = blocks_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with FileLock(str(path.with_name(".rk-blocks.lock"))):
        blocks = _read_blocks(path)
        if name in blocks.get(block_type, {}) and not overwrite:
            raise ConfigurationError(
                f"a block named {slug!r} already exists in {path}; pass overwrite=True to replace it"
            )
        blocks.setdefault(block_type, {})[name] = safe
        _write_blocks(path, blocks)
    _forget_resolutions()
    return slug


def _forget_resolutions() -> None:
    # resolve.py imports this module; imported here to keep the import graph acyclic.
    from .resolve import clear_resolve_cache

    clear_resolve_cache()


def _split_slug(slug: object) -> tuple[str, str]:
    if not isinstance(slug, str) or slug.count("/") != 1:
        raise ConfigurationError(
            f"storage slug must look like '<type>/<name>' (e.g. 's3/prod'), got {slug!r}"
        )
    block_type, _, name = slug.partition("/")
    return block_type, name


def _unknown(slug: str, blocks: dict[str, dict[str, dict[str, Any]]]) -> ConfigurationError:
    saved = _slugs(blocks)
    listing = ", ".join(saved) if saved else "none yet (save one with e.g. S3Storage(...).save('prod'))"
    return ConfigurationError(f"no saved storage block {slug!r} in {blocks_file()}; saved blocks: {listing}")


def storage_from_config(config: Mapping[str, Any], where: str = "storage config") -> Storage:
    """Build a storage from ``{"type": <block type>, **options}`` (a block, or a nested one)."""
    options = dict(config)
    block_type = options.pop("type", None)
    if block_type not in BLOCK_CLASSES:
        raise ConfigurationError(
            f"{where} has storage type {block_type!r}; expected one of {', '.join(sorted(BLOCK_CLASSES))}"
        )
    module_name, _, class_name = BLOCK_CLASSES[block_type].partition(":")
    storage_class = getattr(importlib.import_module(module_name), class_name)
    try:
        storage: Storage = storage_class(**options)
    except ConfigurationError:
        raise
    except (TypeError, ValueError, ResultkitError) as exc:
        raise ConfigurationError(
            f"{where} does not rebuild a {class_name}: {exc}; save it again"
        ) from exc
    return storage


def load_storage(slug: str) -> Storage:
    """The storage saved under ``slug``, e.g. ``load_storage("s3/prod")``."""
    block_type, name = _split_slug(slug)
    blocks = _read_blocks(blocks_file())
    config = blocks.get(block_type, {}).get(name)
    if config is None or block_type not in BLOCK_CLASSES:
        raise _unknown(slug, blocks)
    return storage_from_config({"type": block_type, **config}, where=f"saved block {slug!r}")


def list_blocks() -> list[str]:
    """Slugs of every saved block, sorted."""
    return _slugs(_read_blocks(blocks_file()))


def delete_block(slug: str) -> None:
    """Forget the block saved under ``slug``; ``ConfigurationError`` if there is none."""
    block_type, name = _split_slug(slug)
    path = blocks_file()
    if not path.exists():
        raise _unknown(slug, {})
    with FileLock(str(path.with_name(".rk-blocks.lock"))):
        blocks = _read_blocks(path)
        if name not in blocks.get(block_type, {}):
            raise _unknown(slug, blocks)
        del blocks[block_type][name]
        _write_blocks(path, blocks)
    _forget_resolutions()
