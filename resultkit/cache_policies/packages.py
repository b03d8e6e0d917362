"""``Packages``: keys on the installed versions of named distributions, or of those the code imports.

>>> from resultkit.cache_policies import INPUTS, Packages
>>> policy = INPUTS + Packages("numpy", "pandas")
>>> Packages("NumPy", "numpy").distributions
('numpy',)
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigurationError
from .code import CAPTURE_KEY, CodeCapture, code_capture
from .context import CacheKeyContext
from .policies import CachePolicy

__all__ = ["Packages", "distributions_of", "installed_version"]


def _canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: Scikit_Learn == scikit-learn


@dataclass(frozen=True, init=False)
class Packages(CachePolicy):
    """The installed versions of ``distributions`` (pip names, e.g. ``"scikit-learn"``).

    ``Packages.auto()`` keys on the distributions whose modules the task's code (traced
    as ``CODE`` traces it) uses. Versions are read where the key is computed, once per
    process, with :mod:`importlib.metadata`.
    """

    distributions: tuple[str, ...] = ()
    #: Also key on the distributions the task's traced code uses (``Packages.auto()``).
    from_code: bool = False

    part_name: ClassVar[str] = "packages"

    def __init__(self, *names: str, distributions: Iterable[str] = (), from_code: bool = False,
                 key_storage: Any = None, isolation_level: Any = None, lock_manager: Any = None) -> None:
        given = (*names, *distributions)
        for name in given:
            if not isinstance(name, str) or not name.strip():
                raise ConfigurationError(
                    f"Packages() takes distribution names (non-empty str), got {type(name).__name__} "
                    f"{name!r}; write e.g. Packages('numpy', 'scikit-learn')"
                )
        if not given and not from_code:
            raise ConfigurationError(
                "Packages() needs at least one distribution name, e.g. Packages('numpy'), or use "
                "Packages.auto() for the distributions the task's code uses"
            )
        if not isinstance(from_code, bool):
            raise ConfigurationError(f"Packages(from_code=...) must be True or False, got {from_code!r}")
        object.__setattr__(self, "distributions", tuple(sorted({_canonical_name(n) for n in given})))
        object.__setattr__(self, "from_code", from_code)
        object.__setattr__(self, "key_storage", key_storage)
        object.__setattr__(self, "isolation_level", isolation_level)
        object.__setattr__(self, "lock_manager", lock_manager)

    @classmethod
    def auto(cls) -> Packages:
        """The distributions whose modules the task's code uses, found as ``CODE`` traces it.

        >>> Packages.auto().from_code
        True
        """
        return cls(from_code=True)

    def _part_label(self) -> str:
        return "packages_auto" if self.from_code and not self.distributions else self.part_name

    def capture(self, fn: Callable[..., Any], captured: dict[str, Any]) -> None:
        """Decoration hook: ``auto`` needs the task's traced code."""
        if self.from_code and CAPTURE_KEY not in captured:
            captured[CAPTURE_KEY] = code_capture(fn)

    def constant_key_parts(self, captured: Mapping[str, Any]) -> dict[str, Any] | None:
        """The key part, the same for every call in this process (for compiled keys)."""
        capture = captured.get(CAPTURE_KEY)
        if self.from_code and not (isinstance(capture, CodeCapture) and capture.is_final):
            return None
        try:
            return self.key_parts(CacheKeyContext(task_name="", task_source="", captured=captured), {})
        except ConfigurationError:  # not installed: raised by the per-call path, at the call
            return None

    def key_parts(self, context: CacheKeyContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        versions = {name: installed_version(name) for name in self.distributions}
        if self.from_code:
            capture = context.captured.get(CAPTURE_KEY)
            if isinstance(capture, CodeCapture):
                for name in distributions_of(capture.trace.modules):
                    versions.setdefault(name, installed_version(name))
        return {self._part_label(): versions}


@functools.cache
def installed_version(name: str) -> str:
    """The installed version of distribution ``name``; ``ConfigurationError`` if it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    hint = ""
    owners = _module_owners().get(name.replace("-", "_")) or _module_owners().get(name)
    if owners:
        hint = f" ({name!r} is a module of distribution {', '.join(map(repr, sorted(set(owners))))})"
    raise ConfigurationError(
        f"Packages: distribution {name!r} is not installed in this environment{hint}; pass the name "
        "pip installs it under (e.g. 'scikit-learn', not 'sklearn'), or install it"
    ) from None


@functools.lru_cache(maxsize=1)
def _module_owners() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=256)
def distributions_of(modules: tuple[str, ...]) -> tuple[str, ...]:
    """Canonical names of the installed distributions providing ``modules`` (dotted names)."""
    owners = _module_owners()
    found: set[str] = set()
    for module in modules:
        candidates = sorted(set(owners.get(module.partition(".")[0], ())))
        if len(candidates) > 1:  # a namespace package (google.*): keep the ones holding the module
            candidates = _holding(module, tuple(candidates)) or candidates
        found.update(_canonical_name(name) for name in candidates)
    return tuple(sorted(found))


@functools.lru_cache(maxsize=1024)
def _holding(module: str, candidates: tuple[str, ...]) -> list[str]:
    prefix = module.replace(".", "/")
    holding = []
    for name in candidates:
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            continue
        if any(str(f).startswith((prefix + "/", prefix + ".")) for f in files):
            holding.append(name)
    return holding
