"""Which code a task runs: the project's functions, classes and constants it reaches by name.

:func:`trace_code` reads the bytecode of the task and, transitively, of every function
and class of the project it names (globals, closures, ``module.attribute`` chains,
imports inside functions), and digests each definition with :func:`source_digest`. It
stops at the standard library, builtins, resultkit itself and code outside the
project's source roots (installed packages), whose module names it records instead,
for ``Packages.auto()``.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import importlib.util
import os
import site
import sys
import sysconfig
import threading
import types
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._bytecode import Ref, references
from ._source import source_digest
from .hashing import hash_value

__all__ = ["CodeTrace", "module_label", "project_roots", "trace_code"]

_MISSING: Any = object()
#: Environment variable naming extra source roots (``os.pathsep``-separated).
ROOTS_ENV = "RESULTKIT_CODE_ROOTS"
# Never the project's, whatever their files: modules without files, resultkit. (The standard
# library's files are recognised by their directory, so a project module that happens to
# share a name with one, such as ``test``, is still traced.)
_NEVER_TRACED = frozenset({"builtins", "resultkit", "__future__"}) | frozenset(sys.builtin_module_names)
# Never an installed distribution, for Packages.auto().
_NOT_PACKAGES = _NEVER_TRACED | frozenset(sys.stdlib_module_names) | {"__main__"}
_CONSTANT_TYPES = (int, float, complex, str, bytes, bool, type(None))



@dataclass(frozen=True)
class CodeTrace:
    """The code a task reaches, as digests; JSON-safe apart from the tuples."""

    #: Digest of the task's own definition.
    task: str
    #: ``"module:qualname"`` of each project function or class reached -> its digest.
    helpers: dict[str, str] = field(default_factory=dict)
    #: ``"module:name"`` of each plain constant read (numbers, strings, tuples of them) -> digest.
    constants: dict[str, str] = field(default_factory=dict)
    #: ``"module:name"`` of what the code reads but the key does not cover -> what it is ("a dict").
    untracked: dict[str, str] = field(default_factory=dict)
    #: Dotted names of modules of installed packages the code uses.
    modules: tuple[str, ...] = ()
    #: Names the code reads that were not bound when it was traced.
    unresolved: tuple[str, ...] = ()


def trace_code(fn: Any, roots: Sequence[str] | None = None, *, final: bool = True) -> CodeTrace:
    """Trace ``fn``'s code; ``roots`` are the project's source directories (default: :func:`project_roots`).

    A project module imported inside a function but not imported yet is imported when
    ``final`` (as the function would import it), and counted as unresolved otherwise:
    at decoration, importing it could run into an import cycle.
    """
    tracer = _Tracer(tuple(roots) if roots is not None else project_roots(fn), final)
    return tracer.run(fn)


def project_roots(fn: Any) -> tuple[str, ...]:
    """The directory holding ``fn``'s top-level package or script, plus ``$RESULTKIT_CODE_ROOTS``.

    For code with no file (a notebook, a REPL), the working directory stands in.
    """
    roots = [p for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p]
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    filename = getattr(module, "__file__", None)
    if filename:
        directory = os.path.dirname(os.path.abspath(filename))
        while os.path.exists(os.path.join(directory, "__init__.py")):
            directory = os.path.dirname(directory)
        roots.append(directory)
    elif module is not None:  # a notebook's or REPL's __main__: its modules sit in the working directory
        roots.append(os.getcwd())
    return tuple(sorted({_with_sep(_real(p)) for p in roots}))


def module_label(module_name: str) -> str:
    """``module_name``, with ``__main__`` replaced by the name the script has when imported."""
    if module_name != "__main__":
        return module_name
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)  # python -m package.module
    filename = getattr(main, "__file__", None)
    if not filename:
        return "__main__"
    directory, base = os.path.split(os.path.abspath(filename))
    parts = [os.path.splitext(base)[0]]
    while os.path.exists(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return ".".join(parts)


def _with_sep(path: str) -> str:
    return path if path.endswith(os.sep) else path + os.sep


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    return os.path.realpath(path)


@functools.lru_cache(maxsize=1)
def _excluded_prefixes() -> tuple[str, ...]:
    """Directories whose code is never the project's: the standard library, site-packages, resultkit."""
    paths = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_paths().get(name)
        if value:
            paths.add(value)
    with contextlib.suppress(AttributeError):  # some embedded interpreters lack it
        paths.update(site.getsitepackages())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        paths.add(user_site)
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # resultkit's own package
    return tuple(sorted(_with_sep(_real(p)) for p in paths))


@functools.lru_cache(maxsize=4096)
def _is_installed_file(real: str) -> bool:
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return real.startswith(_excluded_prefixes())


def _top(module_name: str) -> str:
    return module_name.partition(".")[0]


def _is_dynamic(module: types.ModuleType) -> bool:
    """A module with no file that is not the standard library's: a REPL's or notebook's __main__, exec'd code."""
    if getattr(module, "__file__", None) is not None or hasattr(module, "__path__"):
        return False
    return module.__name__ == "__main__" or _top(module.__name__) not in sys.stdlib_module_names


_digest_cache: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _digest_of(obj: Any) -> str:
    try:
        digest = _digest_cache.get(obj)
    except TypeError:  # not weak-referenceable
        return source_digest(obj)
    if digest is None:
        digest = source_digest(obj)
        with _cache_lock:
            _digest_cache[obj] = digest
    return digest


# -- the walk ----------------------------------------------------------------------------------


def _is_constant(value: Any) -> bool:
    if type(value) in _CONSTANT_TYPES:
        return True
    if type(value) in (tuple, frozenset):
        return all(_is_constant(item) for item in value)
    return False


def _describe(value: Any) -> str:
    cls = type(value)
    name = cls.__qualname__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"


class _Tracer:
    def __init__(self, roots: tuple[str, ...], final: bool = True) -> None:
        self.roots = roots
        self.final = final
        self.helpers: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self.untracked: dict[str, str] = {}
        self.modules: set[str] = set()
        self.unresolved: set[str] = set()
        self.seen: dict[int, Any] = {}  # id -> object, kept alive while tracing
        self.queue: list[Any] = []

    # classification

    def _is_project_code(self, filename: str | None, module_name: str) -> bool:
        if not module_name or _top(module_name) in _NEVER_TRACED:
            return False
        module = sys.modules.get(module_name)
        if module is not None and _is_dynamic(module):
            return True  # a REPL's or notebook's __main__, a module built by exec
        return self._is_project_file(filename)

    def _is_project_file(self, filename: str | None) -> bool:
        if not filename or filename.startswith("<"):
            return False
        real = _real(os.path.abspath(filename))
        return real.startswith(self.roots) and not _is_installed_file(real)

    def _is_project_module(self, module: types.ModuleType) -> bool:
        filename = getattr(module, "__file__", None)
        return self._is_project_code(filename, module.__name__)

    def _is_project_class(self, cls: type) -> bool:
        module = sys.modules.get(cls.__module__)
        return self._is_project_code(getattr(module, "__file__", None), cls.__module__)

    def _package(self, module_name: Any) -> None:
        if isinstance(module_name, str) and module_name and _top(module_name) not in _NOT_PACKAGES:
            self.modules.add(module_name)

    # the walk

    def run(self, root: Any) -> CodeTrace:
        target = root.func if isinstance(root, functools.partial) else root
        if isinstance(target, types.MethodType):
            target = target.__func__
        if isinstance(target, types.FunctionType):
            self.seen[id(target)] = target
            task = _digest_of(target)
            self._follow(target)
            self._owning_class(target)
        else:  # a callable instance or class: its class is the code
            cls = target if isinstance(target, type) else type(target)
            self.seen[id(cls)] = cls
            task = _digest_of(cls)
            self._follow_class(cls)
        while self.queue:
            item = self.queue.pop(0)
            if isinstance(item, type):
                self.helpers[self._name(item)] = _digest_of(item)
                self._follow_class(item)
            else:
                self.helpers[self._name(item)] = _digest_of(item)
                self._follow(item)
        return CodeTrace(
            task=task,
            helpers=dict(sorted(self.helpers.items())),
            constants=dict(sorted(self.constants.items())),
            untracked=dict(sorted(self.untracked.items())),
            modules=tuple(sorted(self.modules)),
            unresolved=tuple(sorted(self.unresolved)),
        )

    def _owning_class(self, fn: types.FunctionType) -> None:
        """A task that is a method runs its class's code too (``self.helper()``): visit the class."""
        path = fn.__qualname__.split(".")[:-1]
        if not path or "<locals>" in path:
            return
        module = module_label(fn.__module__)
        value = fn.__globals__.get(path[0], _MISSING)
        if value is _MISSING:  # decorated inside the class body: the class is bound later
            self.unresolved.add(f"{module}:{path[0]}")
            return
        for attribute in path[1:]:
            value = getattr(value, attribute, _MISSING)
            if value is _MISSING:
                return
        if isinstance(value, type):
            self._visit(value, f"{module}:{'.'.join(path)}")

    def _outside_roots(self, label: str, filename: str | None, module_name: str) -> None:
        """Code that is neither installed nor the project's (a sibling directory on sys.path): say so."""
        if not filename or filename.startswith("<") or _top(module_name) in _NOT_PACKAGES:
            return
        if not _is_installed_file(_real(os.path.abspath(filename))):
            self.untracked[label] = ("code outside the project's source roots; add its directory to "
                                     f"{ROOTS_ENV}")

    def _constant(self, label: str, value: Any) -> None:
        digest = hash_value(value)
        unique, suffix = label, 2
        while self.constants.get(unique, digest) != digest:  # two closures of one factory
            unique, suffix = f"{label}#{suffix}", suffix + 1
        self.constants[unique] = digest

    def _name(self, obj: Any) -> str:
        name = f"{module_label(obj.__module__)}:{obj.__qualname__}"
        if name in self.helpers:  # two objects of one qualname (closures of one factory)
            name = f"{name}#{_digest_of(obj)[:8]}"
        return name

    def _enqueue(self, obj: Any) -> None:
        if id(obj) not in self.seen:
            self.seen[id(obj)] = obj
            self.queue.append(obj)

    def _follow(self, fn: types.FunctionType) -> None:
        """Resolve the references of the project function ``fn`` and visit what they name."""
        module = module_label(fn.__module__)
        for reference in references(fn):
            try:
                self._resolve(fn, module, reference)
            except Exception as exc:  # an exotic object (a proxy, a lazy module) must not break decoration
                self.untracked[f"{module}:{reference[1]}"] = f"could not be inspected: {type(exc).__name__}"

    def _resolve(self, fn: types.FunctionType, module: str, reference: Ref) -> None:
        """Find the object ``reference`` names in ``fn``'s scope and visit it."""
        kind, name, attributes = reference
        if kind == "global":
            value = fn.__globals__.get(name, _MISSING)
            if value is _MISSING:
                if not hasattr(builtins, name):
                    self.unresolved.add(f"{module}:{name}")
                return
            label = f"{module}:{name}"
        elif kind == "deref":
            if name not in fn.__code__.co_freevars or fn.__closure__ is None:
                return  # a variable of the function itself, seen from a nested one
            cell = fn.__closure__[fn.__code__.co_freevars.index(name)]
            try:
                value = cell.cell_contents
            except ValueError:  # not assigned yet
                self.unresolved.add(f"{module}:{fn.__qualname__}.{name}")
                return
            label = f"{module}:{fn.__qualname__}.{name}"
        else:
            value = sys.modules.get(name, _MISSING)
            if value is _MISSING:
                value = self._unimported(name, fn)
                if value is _MISSING:
                    return
            label = name
        for attribute in attributes:
            if not isinstance(value, types.ModuleType) or not self._is_project_module(value):
                break
            found = getattr(value, attribute, _MISSING)
            if found is _MISSING:
                break
            value, label = found, f"{module_label(value.__name__)}:{attribute}"
        self._visit(value, label)

    def _unimported(self, module_name: str, fn: types.FunctionType) -> Any:
        """An import inside ``fn`` of a module not imported yet: the module, once it may be imported.

        An installed module is recorded without importing it. A project module is imported
        by the final trace (on the task's first call, as its body would); before that it is
        unresolved, so the final trace happens.
        """
        top = _top(module_name)
        if top in _NOT_PACKAGES:
            return _MISSING
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if not self._is_project_file(getattr(spec, "origin", None)):
            self._package(module_name)
            return _MISSING
        if not self.final:
            self.unresolved.add(module_name)
            return _MISSING
        try:
            return importlib.import_module(module_name)
        except Exception as exc:  # the body would fail the same way; the key just cannot cover it
            self.untracked[module_name] = f"a module {fn.__qualname__} imports that failed to import: {exc!r:.80}"
            return _MISSING

    def _visit(self, value: Any, label: str) -> None:
        if isinstance(value, types.ModuleType):
            if not self._is_project_module(value):
                self._package(value.__name__)
                self._outside_roots(label, getattr(value, "__file__", None), value.__name__)
            return
        if _is_constant(value):
            self._constant(label, value)
            return
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, types.MethodType):
            owner = value.__self__
            if not isinstance(owner, (type, types.ModuleType)):
                self._visit(owner, label.rpartition(".")[0] or label)
            value = value.__func__
        if isinstance(value, functools.partial):
            self._visit(value.func, label)
            for position, argument in enumerate((*value.args, *value.keywords.values())):
                self._visit(argument, f"{label}.<argument {position}>")
            return
        if isinstance(value, types.FunctionType):
            if self._is_project_code(value.__code__.co_filename, value.__module__):
                self._enqueue(value)
            else:
                self._package(value.__module__)
                self._outside_roots(label, value.__code__.co_filename, value.__module__)
            return
        if isinstance(value, type):
            if self._is_project_class(value):
                self._enqueue(value)
            else:
                self._package(value.__module__)
                module = sys.modules.get(value.__module__)
                self._outside_roots(label, getattr(module, "__file__", None), value.__module__)
            return
        try:
            wrapped = getattr(value, "__wrapped__", None)
        except Exception:  # an object whose __getattr__ raises: treat it as plain data
            wrapped = None
        if wrapped is not None and wrapped is not value:
            self._visit(wrapped, label)  # lru_cache wrappers, resultkit tasks, ...
            return
        if isinstance(value, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            self._package(getattr(value, "__module__", None))
            return
        cls = type(value)
        if self._is_project_class(cls):
            self._enqueue(cls)
        else:
            self._package(cls.__module__)
        self.untracked[label] = _describe(value)

    def _follow_class(self, cls: type) -> None:
        for base in cls.__bases__:
            if base is not object:
                self._visit(base, f"{module_label(cls.__module__)}:{cls.__qualname__}")
        prefix = cls.__qualname__ + "."
        label = f"{module_label(cls.__module__)}:{cls.__qualname__}"
        for member in _class_functions(cls):
            if not member.__qualname__.startswith(prefix):
                self._visit(member, label)  # a function defined elsewhere, bound in the class body
            elif self._is_project_code(member.__code__.co_filename, member.__module__):
                self.seen[id(member)] = member
                self._follow(member)  # its text is in the class's digest; follow what it names
        for value in list(vars(cls).values()):
            if isinstance(value, type) and id(value) not in self.seen:
                if value.__qualname__.startswith(prefix):  # a nested class: its text is in ours
                    self.seen[id(value)] = value
                    self._follow_class(value)
                else:
                    self._visit(value, label)


def _class_functions(cls: type) -> Iterable[types.FunctionType]:
    for member in vars(cls).values():
        candidates: list[Any] = [member]
        if isinstance(member, (staticmethod, classmethod)):
            candidates = [member.__func__]
        elif isinstance(member, property):
            candidates = [member.fget, member.fset, member.fdel]
        elif isinstance(member, functools.cached_property):
            candidates = [member.func]
        for candidate in candidates:
            if isinstance(candidate, types.FunctionType):
                yield candidate
