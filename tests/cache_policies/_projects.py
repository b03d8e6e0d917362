"""A throwaway project on disk whose tasks run in fresh interpreters, for CODE/Files/Packages tests.

``Project.call(module, task, *args)`` starts a new Python process in the project's
directory, asks the task to ``explain()`` the call, makes the call, and returns what
happened as a dict: ``state`` ("Completed" or "Cached"), ``value`` (its repr),
``explain`` (the explanation's text), ``differences`` and ``notes``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

_RUNNER = """
import importlib, json, sys
module_name, task_name, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
task = getattr(importlib.import_module(module_name), task_name)
answer = task.explain(*args)
state = task(*args, return_state=True)
print(json.dumps({"state": state.name, "value": repr(state.result()), "key": state.cache_key,
                  "explain": str(answer), "hit_predicted": answer.hit,
                  "differences": answer.differences, "notes": answer.notes}))
"""


class Project:
    """Files of a small project under ``root``, edited between runs like a user would."""

    def __init__(self, root: Path, extra_path: tuple[Path, ...] = ()) -> None:
        self.root = root
        self.extra_path = extra_path
        root.mkdir(parents=True, exist_ok=True)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} is not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def env(self, **overrides: str) -> dict[str, str]:
        paths = [str(REPO), str(self.root), *map(str, self.extra_path)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths),
               # an edit within the same second and of the same size would load a stale .pyc
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.update(overrides)
        return env

    def call(self, module: str, task: str, *args: Any, **env: str) -> dict[str, Any]:
        """Explain and then call ``module.task(*args)`` in a fresh interpreter."""
        proc = subprocess.run(
            [sys.executable, "-c", _RUNNER, module, task, json.dumps(list(args))],
            cwd=self.root, env=self.env(**env), capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        # explain() predicted what the call then did
        assert result["hit_predicted"] == (result["state"] == "Cached"), result
        return result

    def script(self, code: str, **env: str) -> str:
        """Run ``code`` in a fresh interpreter in the project; return its stdout."""
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=self.root,
                              env=self.env(**env), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
