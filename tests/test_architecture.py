"""The map in docs/architecture.md is true: every import points down the layers, never up.

Each module of resultkit belongs to one layer (its package, or the front door); an import,
lazy ones inside functions included, may name only its own layer or one below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "resultkit"

#: Bottom to top, as docs/architecture.md draws them; the leaves every layer may use first.
LAYERS = [
    ("leaves", {"errors", "_types", "_env"}),
    ("storage", {"storage"}),
    ("serializers", {"serializers"}),
    ("locking", {"locking"}),
    ("results", {"results"}),
    ("transactions", {"transactions"}),
    ("cache_policies", {"cache_policies"}),
]
FRONT_DOOR = "front door"


def layer_of(module: str) -> int:
    """The layer index of ``resultkit.<module...>`` (the front door is the top)."""
    head = module.split(".")[0]
    for index, (_, members) in enumerate(LAYERS):
        if head in members:
            return index
    return len(LAYERS)


def layer_name(index: int) -> str:
    return LAYERS[index][0] if index < len(LAYERS) else FRONT_DOOR


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, resultkit-relative module) of every resultkit import in ``path``."""
    relative = path.relative_to(PACKAGE).with_suffix("")
    package = list(relative.parts[:-1])  # the package holding the module (for __init__, itself)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module or node.names[0].name])
            elif node.module and node.module.startswith("resultkit."):
                target = node.module[len("resultkit."):]
            else:
                continue
            found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("resultkit."):
                    found.append((node.lineno, alias.name[len("resultkit."):]))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path: Path) -> None:
    own = layer_of(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    upward = [
        f"line {line}: imports {target} ({layer_name(layer_of(target))}) from {layer_name(own)}"
        for line, target in imports_of(path)
        if target and layer_of(target) > own
    ]
    assert upward == [], f"{path.relative_to(PACKAGE)} imports up the layers: {upward}"


def test_every_layer_is_named_in_the_architecture_doc() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name, members in LAYERS:
        for member in members:
            assert member in doc, f"docs/architecture.md does not name {member} ({name})"
