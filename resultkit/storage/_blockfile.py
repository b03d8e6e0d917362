"""The saved-blocks file: ``$RESULTKIT_HOME/blocks.toml`` (mode 0600), one table per block.

``[s3.prod]`` holds the options that rebuild ``S3Storage``. Credentials are never
written: a block may hold only the *names* of environment variables to read them from
(``key_env = "MY_KEY_ID"``); options that look secret are refused.

This module knows the file and the registry's block types, never a storage class:
``Storage.save`` writes through it, and ``blocks.py`` (above the storage classes)
rebuilds storages from what it reads, so the package's imports form no cycle.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import Any, Protocol

import tomli_w
from filelock import FileLock

from .._env import read_toml, resultkit_home
from ..errors import ConfigurationError, ResultkitError
from .registry import block_types, storage_entry

__all__ = ["Savable", "blocks_file", "delete_block", "generation", "list_blocks", "read_block", "save_storage"]

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
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
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


class Savable(Protocol):
    """What saving needs of a storage: its block type and its TOML-safe options."""

    @property
    def block_type(self) -> str: ...

    def to_block(self) -> dict[str, Any]: ...


# Bumped by every save and delete: resolutions of slugs cached before are stale.
_generation = 0


def _changed() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    """A number that changes whenever this process saves or deletes a block."""
    return _generation


def save_storage(storage: Savable, name: str, overwrite: bool = False) -> str:
    """Save ``storage``'s configuration as ``"<type>/<name>"`` and return that slug."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"block name {name!r} is not usable; use letters, digits, '_', '-' and '.', e.g. 'prod'"
        )
    block_type = storage.block_type
    if storage_entry(block_type, block=True) is None:
        raise ConfigurationError(
            f"{type(storage).__name__} cannot be saved as a block (its block_type {block_type!r} is "
            f"not registered: it lives only in this process, or needs "
            f"resultkit.storage.register_storage({block_type!r}, ...)); save one of "
            f"{', '.join(block_types())} storages instead"
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
    _changed()
    return slug


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


def read_block(slug: str) -> tuple[str, dict[str, Any]]:
    """``(block_type, options)`` of the block saved under ``slug``; ``ConfigurationError`` if none."""
    block_type, name = _split_slug(slug)
    blocks = _read_blocks(blocks_file())
    config = blocks.get(block_type, {}).get(name)
    if config is None or storage_entry(block_type, block=True) is None:
        raise _unknown(slug, blocks)
    return block_type, dict(config)


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
    _changed()
