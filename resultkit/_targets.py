"""Lazy imports by ``"module:Qualname"`` strings, with a hint naming what to install.

What every registry of resultkit uses (storage schemes, serializer types, lock managers
named by a storage), so registering imports nothing and a missing package reads the same
everywhere: ``pip install 'resultkit[s3]'`` or the requirement a third party names.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from .errors import ConfigurationError

__all__ = ["install_hint", "load_target", "target_path"]

_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\Z")


def _resultkit_extras() -> frozenset[str]:
    from importlib import metadata  # only when a hint is shown: it costs milliseconds to import

    try:
        return frozenset(metadata.metadata("resultkit").get_all("Provides-Extra") or ())
    except metadata.PackageNotFoundError:  # run from a source tree
        return frozenset()


def install_hint(extra: str | None) -> str | None:
    """What to run to install ``extra``: one of resultkit's extras (``"s3"``) or a pip requirement.

    >>> install_hint("their-package[fast]")
    "pip install 'their-package[fast]'"
    """
    if not extra:
        return None
    requirement = f"resultkit[{extra}]" if extra in _resultkit_extras() else extra
    return f"pip install '{requirement}'"


def target_path(target: str | type[Any], argument: str = "target") -> str:
    """``"module:Qualname"`` for a class (or the string itself once checked)."""
    if isinstance(target, type):
        return f"{target.__module__}:{target.__qualname__}"
    if not isinstance(target, str) or not _TARGET.match(target):
        raise ConfigurationError(
            f"{argument} must be a class or a 'module:Class' string such as "
            f"'my_package.storage:DictStorage', got {type(target).__name__} {target!r}"
        )
    return target


def load_target(target: str, what: str, extra: str | None = None) -> Any:
    """Import ``"module:Qualname"``; a missing package is a ``ConfigurationError`` with its hint."""
    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        hint = install_hint(extra) or f"install the package that provides {module_name!r}"
        raise ConfigurationError(f"{what} needs a package that is not installed: {hint} ({exc})") from None
    try:
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ConfigurationError(
            f"{what} is registered as {target!r}, but {module_name} has no {qualname!r}; "
            "register the class's real 'module:Class' path"
        ) from None
    return obj
