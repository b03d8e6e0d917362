"""Settings from the environment and ``[tool.resultkit]`` in ``pyproject.toml``.

This is the bottom of the settings stack; every layer may read it. The front door
(``resultkit._settings``) puts task options and ``settings()`` blocks on top.
Environment variables win over the config file.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["env_bool", "env_float", "env_setting", "read_toml", "resultkit_home"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML document at ``path`` ({} if absent); ``ConfigurationError`` naming ``what`` if unreadable."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {what} from {path}: {exc}; fix or remove that file") from exc


@lru_cache(maxsize=8)
def _config_file(cwd: str) -> dict[str, Any]:
    data = read_toml(Path(cwd) / "pyproject.toml", "[tool.resultkit]")
    section = data.get("tool", {}).get("resultkit", {})
    return section if isinstance(section, dict) else {}


def env_setting(name: str) -> Any:
    """The value of setting ``name`` (e.g. ``"default_storage"``) or None.

    Reads ``RESULTKIT_<NAME>`` from the environment, then ``name`` from
    ``[tool.resultkit]`` in the working directory's ``pyproject.toml``.
    """
    value = os.environ.get("RESULTKIT_" + name.upper())
    if value is not None:
        return value
    return _config_file(os.getcwd()).get(name)


def env_bool(name: str, default: bool = False) -> bool:
    """Setting ``name`` as a bool; accepts 1/0, true/false, yes/no, on/off."""
    value = env_setting(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(
        f"RESULTKIT_{name.upper()}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off"
    )


def env_float(name: str, default: float) -> float:
    """Setting ``name`` as a float."""
    value = env_setting(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"RESULTKIT_{name.upper()}={value!r} is not a number of seconds; use e.g. 300"
        ) from None


def resultkit_home() -> Path:
    """``$RESULTKIT_HOME``, default ``~/.resultkit`` (not created here)."""
    value = env_setting("home")
    return Path(value).expanduser() if value else Path.home() / ".resultkit"
