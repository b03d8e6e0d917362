"""Checking ``JSONSerializer``'s Prefect-named options: hooks, ``dumps_kwargs``, ``loads_kwargs``.

Every record stores its serializer's config as JSON and a reader rebuilds the
serializer from it, so the options must be JSON values that only shape the text:
indentation, key order, ASCII escaping. Hooks (functions, or import paths to them)
are refused: resultkit never imports code named by configuration or data, and custom
types are taught with ``register_json_type`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigurationError

__all__ = ["check_dumps_kwargs", "check_hook", "check_loads_kwargs"]


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_indent(value: Any) -> bool:
    return value is None or isinstance(value, str) or (type(value) is int and value >= 0)


def _is_separators(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _orjson_formatting_options() -> int:
    import orjson

    return int(orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def _is_orjson_option(value: Any) -> bool:
    return type(value) is int and value >= 0 and value & ~_orjson_formatting_options() == 0


# jsonlib -> {keyword: (check, what it must be)}
_DUMPS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "json": {
        "indent": (_is_indent, "None, a non-negative int or a string"),
        "sort_keys": (_is_bool, "True or False"),
        "ensure_ascii": (_is_bool, "True or False"),
        "separators": (_is_separators, "a pair of strings, e.g. [',', ': ']"),
    },
    "orjson": {
        "option": (_is_orjson_option, "orjson.OPT_INDENT_2, OPT_SORT_KEYS and/or OPT_APPEND_NEWLINE"),
    },
}
_LOADS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "json": {"strict": (_is_bool, "True or False")},
    "orjson": {},
}
_REFUSED = {
    "default": "dumps_kwargs may not set 'default': resultkit's type tags encode values JSON cannot hold",
    "object_hook": "loads_kwargs may not set 'object_hook': resultkit's type tags decode values",
    "object_pairs_hook": "loads_kwargs may not set 'object_pairs_hook': resultkit's type tags decode values",
    "cls": "a custom encoder or decoder class cannot be set",
}
_REGISTER_HINT = (
    "teach JSONSerializer a type with resultkit.serializers.register_json_type(cls, encode=..., "
    "decode=...) instead"
)


def check_hook(name: str, hook: object) -> None:
    """``ConfigurationError`` unless ``hook`` (``object_encoder``/``object_decoder``) is None."""
    if hook is None:
        return
    what = f"names the import path {hook!r}" if isinstance(hook, str) else f"is {type(hook).__name__} {hook!r}"
    raise ConfigurationError(
        f"JSONSerializer({name}=...) {what}: resultkit never imports or calls code named by "
        f"configuration or data (a reader rebuilds the serializer from the record). Leave {name}=None "
        f"(exceptions, dataclasses, pydantic models, UUIDs, datetimes, bytes and more are built in), and "
        f"{_REGISTER_HINT}"
    )


def _checked(
    argument: str, kwargs: Mapping[str, Any] | None, jsonlib: str,
    allowed: dict[str, tuple[Callable[[Any], bool], str]],
) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise ConfigurationError(f"{argument} must be a dict of keyword arguments, got {type(kwargs).__name__}")
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in _REFUSED:
            raise ConfigurationError(f"JSONSerializer: {_REFUSED[key]}; {_REGISTER_HINT}")
        if key not in allowed:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise ConfigurationError(
                f"JSONSerializer({argument}=...) does not accept {key!r} with jsonlib={jsonlib!r}; "
                f"accepted: {accepted}. Options must be JSON values that only shape the text, because "
                "every record stores them for its reader"
            )
        check, expected = allowed[key]
        if not check(value):
            raise ConfigurationError(f"JSONSerializer({argument}={{{key!r}: {value!r}}}): {key} must be {expected}")
        checked[key] = list(value) if key == "separators" else value
    return checked


def check_dumps_kwargs(kwargs: Mapping[str, Any] | None, jsonlib: str) -> dict[str, Any]:
    """The checked ``dumps_kwargs`` (a new dict), or ``ConfigurationError`` naming the bad one."""
    return _checked("dumps_kwargs", kwargs, jsonlib, _DUMPS[jsonlib])


def check_loads_kwargs(kwargs: Mapping[str, Any] | None, jsonlib: str) -> dict[str, Any]:
    """The checked ``loads_kwargs`` (a new dict), or ``ConfigurationError`` naming the bad one."""
    return _checked("loads_kwargs", kwargs, jsonlib, _LOADS[jsonlib])
