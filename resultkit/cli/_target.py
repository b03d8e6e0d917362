"""Which storage a command works on: a path, a URL, a saved slug, or the default.

Without options this is exactly what ``ResultStore`` resolves (``resolve_storage``, or
the default storage when STORAGE is omitted). With ``--option NAME=VALUE`` a URL or path
is built into its storage class with those options, since a URL cannot carry them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..results.store import resolve_storage_value
from ..storage.base import Storage
from ._output import EXIT_USAGE, CliError

__all__ = ["open_storage", "parse_options", "storage_with_options"]


def parse_options(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``["endpoint_url=http://x", "fsync=true"]`` -> ``{"endpoint_url": "http://x", "fsync": True}``.

    Values that parse as JSON (numbers, true/false/null, quoted strings, objects) take
    that type; anything else is a string.
    """
    options: dict[str, Any] = {}
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise CliError(f"--option {pair!r} is not NAME=VALUE; use e.g. --option "
                           "endpoint_url=http://127.0.0.1:9000", EXIT_USAGE)
        try:
            options[name] = orjson.loads(text)
        except orjson.JSONDecodeError:
            options[name] = text
    return options


def storage_with_options(location: str, options: Mapping[str, Any]) -> Storage:
    """The storage at URL or path ``location``, built with ``options`` (e.g. ``endpoint_url``)."""
    from ..storage import FsspecStorage, GCSStorage, LocalStorage, S3Storage

    scheme, sep, rest = location.partition("://")
    protocol = scheme.lower() if sep else "file"
    try:
        if not sep or protocol in ("file", "local"):
            return LocalStorage(rest if sep else location, **options)
        if protocol in ("s3", "s3a", "gs", "gcs"):
            bucket, _, prefix = rest.partition("/")
            storage_class = S3Storage if protocol in ("s3", "s3a") else GCSStorage
            return storage_class(bucket, prefix, **options)
        return FsspecStorage(location, **options)
    except TypeError as exc:
        raise CliError(f"storage {location!r} does not take options {sorted(options)}: {exc}",
                       EXIT_USAGE) from None


def open_storage(spec: str | None, options: Sequence[str] | None = None) -> Storage:
    """The storage named by ``spec`` (None: the default storage the results store uses)."""
    parsed = parse_options(options)
    if not parsed:
        return resolve_storage_value(spec)
    if spec is None:
        raise CliError("--option needs a STORAGE path or URL to apply to", EXIT_USAGE)
    from ..storage.blocks import list_blocks

    if "://" not in spec and spec in list_blocks():
        raise CliError(f"{spec!r} is a saved block, which carries its own options; drop --option, "
                       "or save the block again with the options it needs", EXIT_USAGE)
    return storage_with_options(spec, parsed)
