"""``resolve_storage``: turn what users pass (instance, path, URL, slug) into a ``Storage``.

- a ``Storage`` instance is returned as is;
- a plain path or ``os.PathLike`` -> ``LocalStorage``;
- a URL whose scheme is in the storage registry (``registry.py``: ``file://`` -> ``LocalStorage``,
  ``s3://`` -> ``S3Storage``, ``gs://`` -> ``GCSStorage``, and what ``register_storage`` adds)
  -> that class's ``from_url(url, **options)``;
- ``memory://name`` -> ``FsspecStorage`` on fsspec's process-wide memory file system, so two
  resolutions of the same URL see the same objects (``MemoryStorage()`` is private to its
  instance);
- any other fsspec protocol -> ``FsspecStorage``;
- ``"<type>/<name>"`` (``"s3/prod"``) of a registered block type that is not an existing
  path -> the saved block.

String resolutions are cached: the task hit path calls this on every call.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..errors import ConfigurationError
from . import _blockfile, registry
from .base import Storage
from .local import LocalStorage

# fsspec-based backends and saved blocks are imported where a URL or slug needs them, so
# resolving a local path (the default storage) imports neither fsspec nor the block files.

__all__ = ["check_not_a_broken_url", "clear_resolve_cache", "resolve_storage"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
# "s3:/bucket", "s3:bucket", "s3//bucket", "gs:/x", "gcs:x": an object-store URL missing a slash.
_BROKEN_OBJECT_URL = re.compile(r"(s3a?|gs|gcs)(?::/?|//)(.*)\Z", re.IGNORECASE | re.DOTALL)
# "memory:/x", "file:data": a scheme before the first slash, with no "://" after it.
_SCHEME_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]+):(.*)\Z", re.DOTALL)
_SLUG = re.compile(r"([a-z0-9_]+)/([A-Za-z0-9][A-Za-z0-9_.-]*)\Z")
_CACHE_LIMIT = 256
_cache: dict[tuple[Any, ...], Storage] = {}
_cache_lock = threading.Lock()
# What the cache was filled under: the registry's and this process's saved blocks' generations.
_cached_under = registry.generation() + _blockfile.generation() * (1 << 32)


def clear_resolve_cache() -> None:
    """Forget cached string resolutions (e.g. after editing saved blocks by hand)."""
    with _cache_lock:
        _cache.clear()


def _forget_stale_resolutions() -> None:
    global _cached_under
    with _cache_lock:
        _cache.clear()
        _cached_under = _cache_generation()


def _cache_generation() -> int:
    return registry.generation() + _blockfile.generation() * (1 << 32)


def _from_url(url: str, options: Mapping[str, Any] | None = None) -> Storage:
    options = options or {}
    scheme = url.partition("://")[0]
    if not _SCHEME.match(scheme) or len(scheme) < 2:
        raise ConfigurationError(
            f"storage URL {url!r} has a malformed scheme {scheme!r}; use e.g. 's3://bucket/prefix'"
        )
    protocol = scheme.lower()
    entry = registry.storage_entry(protocol, url=True)
    if entry is None:
        from .fsspec import FsspecStorage

        return _construct(FsspecStorage, url, url, **options)
    storage_cls = registry.storage_class(entry)
    storage = _construct(storage_cls.from_url, url, url, name=storage_cls.__name__, **options)
    if not isinstance(storage, Storage):
        raise ConfigurationError(
            f"storage URL {url!r} built a {type(storage).__name__} ({entry.target}), which is not a Storage"
        )
    return storage


def _construct(storage_class: Callable[..., Storage], location: str, *args: Any, name: str | None = None,
               **options: Any) -> Storage:
    """``storage_class(*args, **options)``; an option it does not take is a ``ConfigurationError``."""
    try:
        return storage_class(*args, **options)
    except TypeError as exc:
        name = name or getattr(storage_class, "__name__", str(storage_class))
        raise ConfigurationError(
            f"storage {location!r} ({name}) does not take options {sorted(options)}: {exc}"
        ) from None


def check_not_a_broken_url(value: str) -> None:
    """``ConfigurationError`` for a string that is a URL missing a slash (``s3:/b``, ``s3//b``).

    Such strings would otherwise name a local folder (``./s3:/b``). A local path whose
    first segment holds a ``:`` must be written ``./name:...``.
    """
    if "://" in value:
        return
    broken = _BROKEN_OBJECT_URL.match(value)
    if broken:
        scheme, rest = broken.group(1).lower(), broken.group(2).lstrip("/")
        raise ConfigurationError(
            f"storage {value!r} is a malformed URL; did you mean {f'{scheme}://{rest}'!r}? "
            f"(for a local folder of that name, write './{value}')"
        )
    prefixed = _SCHEME_PREFIX.match(value)
    if prefixed and "/" not in prefixed.group(1):
        scheme, rest = prefixed.group(1), prefixed.group(2).lstrip("/")
        raise ConfigurationError(
            f"storage {value!r} looks like a URL without '://'; write {f'{scheme.lower()}://{rest}'!r} "
            f"for a URL, or './{value}' for a local folder whose name holds ':'"
        )


def _missing_slug(value: str, name: str) -> ConfigurationError:
    from .blocks import list_blocks

    saved = ", ".join(list_blocks()) or "none yet"
    return ConfigurationError(
        f"{value!r} looks like a saved storage slug but no such block exists (saved blocks: "
        f"{saved}); save it with e.g. S3Storage(...).save({name!r}), or for a local folder of "
        f"that name pass './{value}' or a pathlib.Path"
    )


def _resolve_string(value: str, options: Mapping[str, Any] | None = None) -> Storage:
    if not value.strip():
        raise ConfigurationError("storage is an empty string; pass a path, a URL or a saved block's slug")
    if ":" in value or "//" in value:
        check_not_a_broken_url(value)
    if options:
        return _resolve_with_options(value, options)
    if _cache_generation() != _cached_under:  # a registration, save or delete since: start afresh
        _forget_stale_resolutions()
    make: Callable[[], Storage]
    if "://" in value:
        key: tuple[Any, ...] = ("url", value)
        make = partial(_from_url, value)
    else:
        slug = _SLUG.match(value)
        if slug:
            from .blocks import blocks_file, list_blocks, load_storage
        if slug and registry.storage_entry(slug.group(1), block=True) and not os.path.exists(value):
            path = blocks_file()
            try:
                # Part of the cache key, so re-saving a block is seen at once.
                st = os.stat(path)
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                raise _missing_slug(value, slug.group(2)) from None
            key = ("slug", value, str(path), stamp)
            make = partial(load_storage, value)
        else:
            # Relative paths mean relative to the working directory at resolution time.
            key = ("path", value, os.getcwd())
            make = partial(LocalStorage, value)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        storage = make()
    except ConfigurationError:
        if key[0] == "slug" and slug is not None and value not in list_blocks():
            raise _missing_slug(value, slug.group(2)) from None
        raise
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = storage
    return storage


def _resolve_with_options(value: str, options: Mapping[str, Any]) -> Storage:
    # Not cached: options may be unhashable, and this is the one-off path (CLI, scripts).
    if "://" in value:
        return _from_url(value, options)
    from .blocks import list_blocks

    slug = _SLUG.match(value)
    if slug and registry.storage_entry(slug.group(1), block=True) and not os.path.exists(value):
        if value not in list_blocks():
            raise _missing_slug(value, slug.group(2))
        raise ConfigurationError(
            f"{value!r} is a saved block, which carries its own options; drop the options "
            f"{sorted(options)}, or save the block again with the options it needs"
        )
    return _construct(LocalStorage, value, value, **options)


def resolve_storage(value: Storage | str | os.PathLike[str], **options: Any) -> Storage:
    """A ``Storage`` from an instance, a local path, a URL or a saved block's slug.

    ``options`` go to the storage class a path or URL names (``endpoint_url`` for S3,
    ``fsync`` for a local folder, ...); an instance or a saved block carries its own.

    >>> resolve_storage("s3://my-bucket/results", endpoint_url="http://localhost:9000")  # doctest: +SKIP
    S3Storage(bucket='my-bucket', prefix='results')
    >>> resolve_storage("memory://scratch")
    FsspecStorage('memory://scratch')
    """
    if isinstance(value, Storage):
        if options:
            raise ConfigurationError(
                f"options {sorted(options)} cannot apply to the storage instance {value!r}; pass "
                "them to its constructor instead"
            )
        return value
    if isinstance(value, str):
        return _resolve_string(value, options) if options else _resolve_string(value)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return _construct(LocalStorage, path, path, **options)
    raise ConfigurationError(
        f"storage must be a Storage instance, a path, a URL or a saved block's slug, got "
        f"{type(value).__name__} {value!r}"
    )
