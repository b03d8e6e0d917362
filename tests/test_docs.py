"""Every code block in README.md and docs/ runs, so the docs cannot rot.

``python`` blocks of one file run in order in one namespace (a later block may use
what an earlier one defined), in a fresh working directory. ``console`` blocks
run each ``$ resultkit ...`` line through the real CLI and must exit 0. Blocks in
other languages (``bash`` for make/pip, ``text``, ``json``) are shown, not run.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_doc_code_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {"__name__": f"doc_{path.stem.replace('-', '_')}"}
    module = type(sys)(str(namespace["__name__"]))
    module.__dict__.update(namespace)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for index, source in enumerate(blocks(path, "python")):
        code = compile(source, f"{path.name}[python block {index + 1}]", "exec")
        exec(code, module.__dict__)
    console = [line[2:] for body in blocks(path, "console") for line in body.splitlines()
               if line.startswith("$ resultkit ")]
    if console:
        from resultkit.cli import main

        for line in console:
            argv = shlex.split(line)[1:]
            assert main(argv) == 0, f"{path.name}: `{line}` failed"
