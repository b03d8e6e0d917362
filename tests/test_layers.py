"""The map in docs/architecture.md is the code: every import follows an arrow, no cycles.

The ```layers``` block of docs/architecture.md is the single source: each row names a
layer, its members and the layers it may import (and, through them, everything below).
The import graph is built with ``ast`` from every module of resultkit, lazy imports inside
functions and ``TYPE_CHECKING`` imports included.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "resultkit"
DOC = ROOT / "docs" / "architecture.md"

#: Imports allowed to close a cycle, each with the reason it cannot go yet. Every entry must
#: still be an import of the code (a stale entry fails), so the list only shrinks.
CYCLE_ALLOWED: dict[tuple[str, str], str] = {
    ("results.record", "results.reference"):
        "ResultRecord.reference() makes a handle to its record; NAME=frame is splitting "
        "results/store.py and record.py in parallel (issue 8): break it after that lands",
    ("results.reference", "results.store"):
        "ResultReference.read() reads through a ResultStore, which makes references; see above",
    ("_settings", "task_runners"):
        "settings(task_runner=...) checks its value is a TaskRunner, and task_runners reads the "
        "settings",
}


# -- the map, read from the doc --------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    name: str
    members: tuple[str, ...]  # "errors" (a top-level module), "storage/" (a package) or "*"
    arrows: tuple[str, ...]


def read_map(text: str) -> list[Layer]:
    """The rows of the one ```layers``` block of the architecture doc."""
    blocks = re.findall(r"^```layers\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 1, f"{DOC} must hold exactly one ```layers block, found {len(blocks)}"
    layers = []
    for line in blocks[0].splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        columns = re.split(r"\s{2,}", line.strip())
        assert len(columns) == 3, f"{DOC}: a layers row is 'name  members  arrows', got {line!r}"
        name, members, arrows = columns
        layers.append(Layer(name, tuple(members.split()), tuple(a for a in arrows.split() if a != "-")))
    return layers


LAYERS = read_map(DOC.read_text(encoding="utf-8"))
BY_NAME = {layer.name: layer for layer in LAYERS}


def allowed_from(name: str) -> set[str]:
    """The layers ``name`` may import: itself, its arrows and everything below those."""
    seen, todo = {name}, list(BY_NAME[name].arrows)
    while todo:
        target = todo.pop()
        if target not in seen:
            seen.add(target)
            todo.extend(BY_NAME[target].arrows)
    return seen


# -- the code's import graph -----------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    source: str  # dotted module name below resultkit ("" is resultkit/__init__.py)
    target: str
    text: str

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_paths() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


MODULES = {module_name(path): path for path in module_paths()}


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def imports_of(path: Path) -> Iterator[Import]:
    """Every import of a resultkit module in ``path``, wherever in the file it stands."""
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py", path)


def imports_in(text: str, source: str, is_init: bool, path: Path) -> Iterator[Import]:
    """The resultkit imports of module ``source`` (whose code is ``text``): top-level, in functions,
    under ``if TYPE_CHECKING:``, ``import resultkit.x`` and relative alike."""
    package = [p for p in (source.split(".") if is_init else source.split(".")[:-1]) if p]
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text, str(path))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                if node.level - 1 > len(package):
                    raise AssertionError(f"{path}:{node.lineno} imports above the resultkit package")
                base = _join(*package[: len(package) - node.level + 1], module)
            elif module == "resultkit" or module.startswith("resultkit."):
                base = module[len("resultkit."):]
            else:
                continue
            # ``from pkg import mod`` imports the module mod; ``from pkg import name``, pkg.
            targets = [_join(base, a.name) if _join(base, a.name) in MODULES else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name[len("resultkit."):] for a in node.names
                       if a.name == "resultkit" or a.name.startswith("resultkit.")]
        for target in dict.fromkeys(targets):
            yield Import(path, node.lineno, source, target, lines[node.lineno - 1].strip())


def all_imports() -> list[Import]:
    return [imp for path in MODULES.values() for imp in imports_of(path)]


def is_package(head: str) -> bool:
    return bool(head) and (PACKAGE / head / "__init__.py").exists()


def unit_of(module: str) -> str:
    """The package a module belongs to for the cycle check: a sub-package, or itself at the top."""
    head = module.split(".")[0]
    return head if is_package(head) else module


def layer_of(module: str) -> str:
    head = module.split(".")[0]
    member = f"{head}/" if is_package(head) else head
    for layer in LAYERS:
        if member in layer.members:
            return layer.name
    return next(layer.name for layer in LAYERS if "*" in layer.members)


IMPORTS = all_imports()


# -- the map is well formed ------------------------------------------------------------------

def test_the_map_names_real_layers_and_modules() -> None:
    catch_all = [layer.name for layer in LAYERS if "*" in layer.members]
    assert len(catch_all) == 1, f"one layers row must take the other modules ('*'), got {catch_all}"
    for layer in LAYERS:
        for arrow in layer.arrows:
            assert arrow in BY_NAME, f"{DOC}: layer {layer.name} has an arrow to unknown layer {arrow!r}"
        for member in layer.members:
            if member == "*" or member == "testing/":  # testing/: NAME=registry's package, on its way
                continue
            name = member.rstrip("/")
            path = PACKAGE / (f"{name}/__init__.py" if member.endswith("/") else f"{name}.py")
            assert path.exists(), f"{DOC}: layer {layer.name} names {member}, which is not {path}"
    assert not any(name in layer.arrows for layer in LAYERS for name in ("testing",)), \
        "nothing may import testing/: it sits above everything it tests"


def test_the_map_has_no_cycle() -> None:
    for layer in LAYERS:
        back = [arrow for arrow in layer.arrows if layer.name in allowed_from(arrow)]
        assert back == [], f"{DOC}: the arrows {back} of {layer.name} lead back to it"


def test_every_package_is_on_the_map() -> None:
    """``*`` takes only top-level modules: a new sub-package must be given its place."""
    named = {member for layer in LAYERS for member in layer.members}
    packages = sorted(f"{path.parent.name}/" for path in PACKAGE.glob("*/__init__.py"))
    missing = [package for package in packages if package not in named]
    assert missing == [], f"{DOC}: add a row (or a member) for {missing} to the layers block"


# -- the code follows the map ----------------------------------------------------------------

def broken_arrows(imports: Iterable[Import]) -> list[str]:
    """One message per import that no arrow of the map allows."""
    broken = []
    for imp in imports:
        source, target = layer_of(imp.source), layer_of(imp.target)
        if target not in allowed_from(source):
            arrows = ", ".join(sorted(allowed_from(source) - {source})) or "nothing"
            broken.append(
                f"{imp.where()}: {source} -> {target} ({imp.text}) follows no arrow of "
                f"docs/architecture.md; {source} may import {arrows}"
            )
    return broken


@pytest.mark.parametrize("path", module_paths(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_arrows(path: Path) -> None:
    broken = broken_arrows(imports_of(path))
    assert broken == [], "\n".join(broken)


def test_the_check_sees_every_kind_of_import() -> None:
    """The graph misses no import form: a storage module importing upward in five ways fails."""
    text = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import resultkit.results.store\n"
        "from ..serializers import base\n"
        "if TYPE_CHECKING:\n"
        "    from ..transactions.states import CommitMode\n"
        "def later():\n"
        "    from resultkit.cache_policies import INPUTS\n"
        "    class Inner:\n"
        "        def method(self):\n"
        "            from .. import tasks\n"
        "from . import base as storage_base\n"
        "from ..errors import StorageError\n"
    )
    path = PACKAGE / "storage" / "example.py"
    imports = list(imports_in(text, "storage.example", False, path))
    assert sorted(imp.target for imp in imports) == [
        "cache_policies", "errors", "results.store", "serializers.base", "storage.base", "tasks",
        "transactions.states",
    ]
    broken = broken_arrows(imports)
    assert len(broken) == 5, broken
    assert broken[0].startswith("resultkit/storage/example.py:") and "storage -> " in broken[0]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one node (or a node importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _shortest_cycle(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside ``members``."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for other in sorted(graph.get(node, ())):
                if other == start:
                    return [*paths[node], start]
                if other in members and other not in paths:
                    paths[other] = [*paths[node], other]
                    following.append(other)
        frontier = following
    raise AssertionError(f"{start} is in a cycle but none was found")


def find_cycles(edges: Iterable[tuple[str, str, Import]]) -> list[str]:
    """One message per cycle: its imports in order, each with file:line."""
    graph: dict[str, set[str]] = {}
    evidence: dict[tuple[str, str], Import] = {}
    for a, b, imp in edges:
        if a != b:
            graph.setdefault(a, set()).add(b)
            evidence.setdefault((a, b), imp)
    messages = []
    for component in strongly_connected(graph):
        cycle = _shortest_cycle(graph, component[0], set(component))
        steps = [evidence[a, b] for a, b in itertools.pairwise(cycle)]
        messages.append(
            f"import cycle {' -> '.join(c or 'resultkit' for c in cycle)} "
            f"(component: {', '.join(c or 'resultkit' for c in component)}):\n"
            + "\n".join(f"  {imp.where()}: {imp.text}" for imp in steps)
            + "\nbreak it (move what both need lower), or add the import that must stay to "
            "CYCLE_ALLOWED in tests/test_layers.py with the reason"
        )
    return messages


def _live(imports: Iterable[Import]) -> Iterator[Import]:
    return (imp for imp in imports if (imp.source, imp.target) not in CYCLE_ALLOWED)


def test_no_cycle_between_packages() -> None:
    edges = ((unit_of(imp.source), unit_of(imp.target), imp) for imp in _live(IMPORTS))
    cycles = find_cycles(edges)
    assert cycles == [], "\n".join(cycles)


def test_no_cycle_inside_a_package() -> None:
    edges = (
        (imp.source, imp.target, imp) for imp in _live(IMPORTS)
        if unit_of(imp.source) == unit_of(imp.target)
    )
    cycles = find_cycles(edges)
    assert cycles == [], "\n".join(cycles)


def test_every_allowed_cycle_edge_is_still_an_import() -> None:
    present = {(imp.source, imp.target) for imp in IMPORTS}
    stale = [f"{a} -> {b}" for a, b in CYCLE_ALLOWED if (a, b) not in present]
    assert stale == [], f"remove these CYCLE_ALLOWED entries, no module imports them now: {stale}"


def test_the_cycle_check_names_each_import_of_a_cycle() -> None:
    path = PACKAGE / "results" / "example.py"
    chain = [("results.a", "results.b"), ("results.b", "results.c"), ("results.c", "results.a"),
             ("results.c", "results.d")]
    edges = [(a, b, Import(path, n + 1, a, b, f"from .{b[-1]} import x")) for n, (a, b) in enumerate(chain)]
    (message,) = find_cycles(edges)
    assert message.startswith("import cycle results.a -> results.b -> results.c -> results.a")
    assert "resultkit/results/example.py:3: from .a import x" in message
    assert "results.d" not in message
    assert find_cycles(edges[1:]) == []
