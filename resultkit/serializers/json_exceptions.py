"""Exceptions in type-tagged JSON: ``{"__rk__": "exception", "cls": ..., "base": ..., "args": [...]}``.

Built-in exception types (``ValueError``, ``KeyError``, ``OSError`` and the rest of
``builtins``) are rebuilt by calling them with their stored arguments. Other exception
classes are rebuilt only when registered or already imported, without running their
``__init__`` (as pickle would not run it either); otherwise the nearest built-in base
class is rebuilt with the same arguments, with a warning, so ``except ValueError`` still
catches it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from ._json_lookup import imported_object, warn_missing_class

__all__ = ["decode_exception", "encode_exception"]

_BUILTINS_PREFIX = "builtins:"


def _builtin_base(cls: type[BaseException]) -> type[BaseException]:
    for base in cls.__mro__:
        builtin = _builtin_class(base.__name__) if base.__module__ == "builtins" else None
        if builtin is base:
            return builtin
    return BaseException  # pragma: no cover - every exception class derives from it


def encode_exception(
    obj: BaseException, tag: str, encode: Callable[[Any], Any], tag_key: str
) -> dict[str, Any]:
    """The tagged object for ``obj``; ``tag`` names its class, ``encode`` encodes its parts."""
    tagged: dict[str, Any] = {
        tag_key: "exception",
        "cls": tag,
        "base": _builtin_base(type(obj)).__name__,
        "args": encode(list(obj.args)),
    }
    if isinstance(obj, OSError) and (obj.filename is not None or obj.filename2 is not None):
        # OSError keeps its file names out of .args; they are part of its message.
        tagged["filenames"] = encode([obj.filename, obj.filename2])
    notes = getattr(obj, "__notes__", None)
    if isinstance(notes, list) and notes:
        tagged["notes"] = encode(notes)
    return tagged


def _builtin_class(name: Any) -> type[BaseException] | None:
    cls = vars(builtins).get(name) if isinstance(name, str) else None
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else None


def decode_exception(obj: dict[str, Any], find_class: Callable[[str], type | None]) -> BaseException:
    """Rebuild an exception from its tagged object (children already decoded)."""
    tag, args = obj["cls"], obj["args"]
    if not isinstance(tag, str) or not isinstance(args, list):
        raise ValueError("an exception needs a 'cls' string and an 'args' list")
    exc: BaseException
    builtin = _builtin_class(tag[len(_BUILTINS_PREFIX):]) if tag.startswith(_BUILTINS_PREFIX) else None
    found = builtin or find_class(tag)  # an exception class, or None
    if builtin is not None:
        exc = _call_builtin(builtin, args, obj.get("filenames"))
    elif found is not None and issubclass(found, BaseException):
        exc = BaseException.__new__(found, *args)  # no __init__: the data chose the class
        exc.args = tuple(args)
    elif imported_object(tag) is not None:  # the data names something, but no exception class
        raise ValueError(f"{tag!r} is not an exception class")
    else:
        base = _builtin_class(obj.get("base")) or Exception
        warn_missing_class("exception class", tag, f"an instance of {base.__name__} with the same arguments")
        exc = _call_builtin(base, args, obj.get("filenames"))
    notes = obj.get("notes")
    if isinstance(notes, list):
        exc.__notes__ = [note for note in notes if isinstance(note, str)]
    return exc


def _call_builtin(cls: type[BaseException], args: list[Any], filenames: Any) -> BaseException:
    if issubclass(cls, OSError) and isinstance(filenames, list) and len(filenames) == 2 and len(args) == 2:
        # OSError(errno, strerror, filename, winerror, filename2)
        return cls(args[0], args[1], filenames[0], None, filenames[1])
    try:
        return cls(*args)
    except TypeError:
        # A built-in whose constructor wants other arguments than its .args hold: keep the args.
        exc = BaseException.__new__(cls)
        exc.args = tuple(args)
        return exc
