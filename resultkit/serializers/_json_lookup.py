"""Finding a class named by JSON data without importing or running anything, and saying why not.

A record names classes as ``"module:qualname"``. They are looked up in modules the
reading process has already imported (``sys.modules``), attribute by attribute
through ``vars()``, so no import and no module ``__getattr__`` runs.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

__all__ = ["class_origin", "imported_object", "qualified_name", "warn_missing_class"]


def qualified_name(cls: type) -> str:
    """``"module:qualname"``, the default tag of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def class_origin(cls: type) -> type:
    """The class a parameterized pydantic generic (``Result[str]``) was made from, else ``cls``.

    ``Result[str]`` is a class of its own whose name holds brackets, so no lookup can
    find it; its origin ``Result`` can be found, and rebuilds an equal model.
    """
    metadata = vars(cls).get("__pydantic_generic_metadata__")
    origin = metadata.get("origin") if isinstance(metadata, dict) else None
    return origin if isinstance(origin, type) else cls


def imported_object(name: str) -> Any:
    """The object ``"module:qualname"`` names in an already-imported module, or None."""
    module_name, _, qualname = name.partition(":")
    target: Any = sys.modules.get(module_name)
    for part in qualname.split(".") if qualname else ():
        # vars() rather than getattr(): a module __getattr__ could import or run code.
        target = vars(target).get(part) if hasattr(target, "__dict__") else None
        if target is None:
            return None
    return target if qualname else None


def _why_missing(tag: str) -> tuple[str, bool]:
    """Why ``tag`` names no usable class here, and whether importing its module would help."""
    module_name, colon, qualname = tag.partition(":")
    if not colon:
        return "is not registered in this process", False
    if "<locals>" in qualname.split("."):
        return (f"is not registered and, defined inside a function ({qualname}), cannot be looked "
                "up by name"), False
    if module_name not in sys.modules:
        return f"is not registered and its module {module_name!r} is not imported", True
    return f"is not registered and module {module_name!r} has no class {qualname!r}", False


def warn_missing_class(kind: str, tag: str, fallback: str, stacklevel: int = 5) -> None:
    """Warn that the ``kind`` named ``tag`` comes back as ``fallback``, saying why and what to do."""
    reason, import_helps = _why_missing(tag)
    fix = "import it or register it" if import_helps else "register it"
    warnings.warn(
        f"JSONSerializer: {kind} {tag!r} {reason}, so it is returned as {fallback}; {fix} with "
        "resultkit.serializers.register_json_type() before loading",
        UserWarning,
        stacklevel=stacklevel,
    )
