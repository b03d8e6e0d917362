"""Which storage a command works on: a path, a URL, a saved slug, or the default.

Without options this is exactly what ``ResultStore`` resolves (``resolve_storage``, or
the default storage when STORAGE is omitted). ``--option NAME=VALUE`` pairs go to
``resolve_storage(STORAGE, **options)``, since a URL cannot carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import ConfigurationError
from ..results.store import resolve_storage_value
from ..storage.base import Storage
from ._output import EXIT_USAGE, CliError

__all__ = ["open_storage", "parse_options"]


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


def open_storage(spec: str | None, options: Sequence[str] | None = None) -> Storage:
    """The storage named by ``spec`` (None: the default storage the results store uses)."""
    parsed = parse_options(options)
    if not parsed:
        return resolve_storage_value(spec)
    if spec is None:
        raise CliError("--option needs a STORAGE path or URL to apply to", EXIT_USAGE)
    from ..storage.resolve import resolve_storage

    try:
        return resolve_storage(spec, **parsed)
    except ConfigurationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
