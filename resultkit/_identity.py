"""A task's identity in cache keys: the name its module has when imported, whatever ran it.

A script run as ``python pipeline.py`` is the module ``__main__``; imported (by a notebook,
a test, a worker), the same file is ``pipeline``. Keys must not depend on how the code was
launched, so a function of ``__main__`` gets the module name of the file it came from:

- ``python -m pkg.mod``: the main module's ``__spec__.name`` (``pkg.mod``);
- ``python path/to/pkg/mod.py``: the file's name, prefixed by every enclosing folder that is
  a package (holds ``__init__.py``): ``pkg.mod``, the name it has when ``path/to`` is on
  ``sys.path``; a lone ``pipeline.py`` is ``pipeline``;
- no file (an interactive session, ``python -c``): ``__main__``.

The ``name=`` option of ``@task`` overrides all of this.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["importable_module_name", "task_identity"]


def importable_module_name(module: str) -> str:
    """``module``, or for ``"__main__"`` the name the main script has when imported.

    ``"__mp_main__"`` (the main script re-imported by a multiprocessing spawn worker) is
    named the same way, so workers agree with the parent.
    """
    if module != "__main__" and module != "__mp_main__":
        return module
    main = sys.modules.get(module)
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name not in ("__main__", "__mp_main__"):
        return name  # python -m pkg.mod
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return module
    folder, filename = os.path.split(os.path.abspath(path))
    parts = [filename[:-3]]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        if not package.isidentifier():
            break
        parts.append(package)
    if not all(part.isidentifier() for part in parts):
        return module  # not importable under any name: keep __main__
    return ".".join(reversed(parts))


def task_identity(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of ``fn``, with the module as it is named when imported."""
    module = getattr(fn, "__module__", None)
    label = getattr(fn, "__qualname__", repr(fn))
    return f"{importable_module_name(module) if isinstance(module, str) else '?'}.{label}"
