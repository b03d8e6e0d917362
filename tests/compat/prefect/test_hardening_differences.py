"""Prefect's behaviour where resultkit's hardening deliberately differs (issue 12).

Each test asserts what Prefect does; the ones resultkit deliberately does otherwise are
strict xfails citing the line of docs/migrating-from-prefect.md that says why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from resultkit import task
from resultkit.errors import StorageError
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage

from ._cite import xfail_differs


@xfail_differs("Keys that a backend or fsspec would interpret are refused")
def test_task_result_parameter_formatted_storage_key_with_interpreted_characters(tmp_path: Path) -> None:
    """Prefect: tests/results/test_task_results.py (its key template, filled with a '?' and a '#')."""

    @task(result_storage=LocalStorage(tmp_path), persist_result=True,
          result_storage_key="{parameters[x]}?v={parameters[y]}#bar")
    def bar(x: int = 1, y: str = "test") -> int:
        return 1

    assert bar(y="foo") == 1
    assert (tmp_path / "1?v=foo#bar").exists()


@pytest.mark.parametrize("key", ["../escape", "/tmp/escape", "link/escape"])
def test_resolve_path_rejects_paths_outside_basepath(tmp_path: Path, key: str) -> None:
    """Prefect: tests/test_filesystems.py (plus a link out of the base path)."""
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "sandbox" / "link", target_is_directory=True)
    with pytest.raises(StorageError):
        LocalStorage(tmp_path / "sandbox").write(key, b"nope")
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.parametrize("method_name", ["read", "write", "delete", "exists"])
def test_public_methods_reject_paths_outside_basepath(tmp_path: Path, method_name: str) -> None:
    """Prefect: tests/test_filesystems.py."""
    basepath = tmp_path / "sandbox"
    basepath.mkdir()
    (tmp_path / "escape.txt").write_bytes(b"outside")
    storage = LocalStorage(basepath)
    args = (b"nope",) if method_name == "write" else ()
    for path in (str(tmp_path / "escape.txt"), "../escape.txt"):
        with pytest.raises(StorageError):
            getattr(storage, method_name)(path, *args)
    assert (tmp_path / "escape.txt").read_bytes() == b"outside"


@xfail_differs("Local storage refuses every symbolic link below its folder")
def test_resolve_path(tmp_path: Path) -> None:
    """Prefect: tests/test_filesystems.py (a path resolved through a link that stays inside the base path)."""
    storage = LocalStorage(tmp_path)
    storage.write("subdirectory/x", b"data")
    os.symlink(tmp_path / "subdirectory", tmp_path / "alias", target_is_directory=True)
    assert storage.read("alias/x") == b"data"


@xfail_differs("A record copied or moved to another key is a miss there")
def test_result_store_serves_a_record_copied_to_another_key(tmp_path: Path) -> None:
    """Prefect: no test; its ResultStore.aread (src/prefect/results.py) returns whatever record the key holds."""
    store = ResultStore(LocalStorage(tmp_path))
    store.write("alice", "alice's value")
    shutil.copy(tmp_path / "alice", tmp_path / "bob")
    assert store.read("bob").result == "alice's value"
