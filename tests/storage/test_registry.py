"""The storage registry: one table for URL schemes, block types and install hints.

A backend of its own gets URLs, saved blocks, a default lock manager and a temp-file
sweep by registering once and writing methods, touching no other table; the docs'
custom backend passes the storage contract (run through pytest in a child process).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from resultkit.errors import ConfigurationError
from resultkit.locking import FileLockManager, MemoryLockManager, default_lock_manager
from resultkit.storage import (
    CachedStorage,
    FsspecStorage,
    LocalStorage,
    LockManagerSpec,
    S3Storage,
    Storage,
    TempFile,
    load_storage,
    register_storage,
    resolve_storage,
)
from resultkit.storage.base import Buffer

ROOT = Path(__file__).resolve().parents[2]


class FolderStorage(Storage):
    """A minimal third-party backend: files in a folder, with a temp file left by each failed write."""

    block_type = "folder"

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FolderStorage:
        return cls(url.partition("://")[2], **options)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FolderStorage) and other.folder == self.folder

    def __hash__(self) -> int:
        return hash(self.folder)

    def to_block(self) -> dict[str, Any]:
        return {"folder": str(self.folder)}

    def _path(self, key: str) -> Path:
        return self.folder / key

    def _read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def _open_read(self, key: str) -> IO[bytes]:
        return io.BytesIO(self._read(key))

    def _write_chunks(self, key: str, chunks: Iterable[Buffer]) -> None:
        self._path(key).parent.mkdir(parents=True, exist_ok=True)
        self._path(key).write_bytes(b"".join(chunks))

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _delete(self, key: str) -> bool:
        existed = self._exists(key)
        self._path(key).unlink(missing_ok=True)
        return existed

    def _list(self, prefix: str) -> Iterator[str]:
        for path in self.folder.rglob("*"):
            key = path.relative_to(self.folder).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith("~"):
                yield key

    def _version(self, key: str) -> str | None:
        return str(self._path(key).stat().st_mtime_ns) if self._exists(key) else None

    def default_lock_manager(self) -> LockManagerSpec:
        return LockManagerSpec("file", {"directory": self.folder / "~locks"})

    def stale_temp_files(self, min_age: float) -> Sequence[TempFile]:
        now = time.time()
        return [TempFile(p.name, p.stat().st_size, now - p.stat().st_mtime, str(p))
                for p in self.folder.glob("~tmp-*") if now - p.stat().st_mtime > min_age]

    def remove_temp_file(self, temp: TempFile) -> bool:
        Path(temp.location).unlink()
        return True


def test_a_registered_backend_resolves_urls_saves_and_loads_blocks(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown storage protocol 'folder'"):
        resolve_storage(f"folder://{tmp_path}")  # not registered: fsspec has no such protocol
    register_storage("folder", FolderStorage)
    storage = resolve_storage(f"folder://{tmp_path}/data")
    assert storage == FolderStorage(f"{tmp_path}/data")
    storage.write("a/b", b"v")
    assert storage.save("team") == "folder/team"
    assert load_storage("folder/team").read("a/b") == b"v"
    assert resolve_storage("folder/team") == storage


def test_a_registered_backend_gets_its_default_lock_manager_and_its_sweep(tmp_path: Path) -> None:
    from resultkit.cli import main

    register_storage("folder", FolderStorage)
    storage = FolderStorage(str(tmp_path))
    manager = default_lock_manager(storage)
    assert isinstance(manager, FileLockManager) and manager.directory == tmp_path / "~locks"
    assert default_lock_manager(FolderStorage(str(tmp_path))) is manager  # one per spec
    leftover = tmp_path / "~tmp-1"
    leftover.write_bytes(b"partial")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    assert main(["gc", f"folder://{tmp_path}"]) == 0
    assert not leftover.exists()


def test_registering_imports_nothing_and_a_missing_package_names_the_extra() -> None:
    register_storage("nopkg", "rk_no_such_package.storage:NoStorage", extra="redis")  # one of ours
    assert "rk_no_such_package" not in sys.modules
    with pytest.raises(ConfigurationError, match=re.escape("pip install 'resultkit[redis]'")):
        resolve_storage("nopkg://somewhere")
    register_storage("nopkg", "rk_no_such_package.storage:NoStorage", extra="their-package")
    with pytest.raises(ConfigurationError, match=re.escape("pip install 'their-package' (")):
        resolve_storage("nopkg://somewhere")
    register_storage("nopkg", "rk_no_such_package.storage:NoStorage", extra="their-package[fast]")
    with pytest.raises(ConfigurationError, match=re.escape("pip install 'their-package[fast]'")):
        resolve_storage("nopkg://somewhere")


def test_a_target_that_is_not_there_is_named() -> None:
    register_storage("wrongname", "resultkit.storage.local:NoSuchStorage")
    with pytest.raises(ConfigurationError, match="NoSuchStorage"):
        resolve_storage("wrongname://x")


@pytest.mark.parametrize(("args", "kwargs", "named"), [
    (("X!", FolderStorage), {}, "scheme"),
    (("a", FolderStorage), {}, "scheme"),
    ((3, FolderStorage), {}, "scheme"),
    (("folder", "no-colon"), {}, "target"),
    (("folder", 42), {}, "target"),
    (("folder", FolderStorage), {"extra": ""}, "extra"),
])
def test_bad_registrations_name_the_argument(args: tuple[Any, ...], kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        register_storage(*args, **kwargs)


def test_registering_again_replaces_and_resolutions_cached_before_are_dropped(tmp_path: Path) -> None:
    assert isinstance(resolve_storage("s3://bucket/x"), S3Storage)
    register_storage("s3", FolderStorage)
    assert resolve_storage("s3://bucket/x") == FolderStorage("bucket/x")


def test_block_files_written_before_the_registry_still_load(tmp_path: Path, resultkit_home: Path) -> None:
    resultkit_home.mkdir(parents=True, exist_ok=True)
    (resultkit_home / "blocks.toml").write_text(
        f'[local.team]\nbasepath = "{tmp_path}"\nfsync = false\n\n'
        '[fsspec.scratch]\nurl = "memory://old-scratch"\n\n'
        f'[cached.fast]\ndirectory = "{tmp_path / "cache"}"\nsize_limit = 1048576\n'
        f'remote = {{ type = "local", basepath = "{tmp_path / "remote"}" }}\n'
    )
    assert load_storage("local/team") == LocalStorage(tmp_path)
    assert load_storage("fsspec/scratch") == FsspecStorage("memory://old-scratch")
    cached = load_storage("cached/fast")
    assert isinstance(cached, CachedStorage) and cached.remote == LocalStorage(tmp_path / "remote")


def test_a_file_url_or_a_path_with_the_shape_of_a_url_scheme_is_no_slug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "file" and "s3a" are URL schemes only, never block types: "file/x" stays a folder.
    monkeypatch.chdir(tmp_path)
    assert resolve_storage("file/x") == LocalStorage(tmp_path / "file" / "x")
    assert resolve_storage(f"file://{tmp_path}") == LocalStorage(tmp_path)


def test_cached_storage_names_its_remotes_lock_manager(tmp_path: Path) -> None:
    cached = CachedStorage(LocalStorage(tmp_path / "remote"), directory=tmp_path / "cache")
    manager = default_lock_manager(cached)
    assert isinstance(manager, FileLockManager) and manager.directory == tmp_path / "remote" / ".rk-locks"


class _NamesByPath(FolderStorage):
    def default_lock_manager(self) -> LockManagerSpec:
        return LockManagerSpec("resultkit.locking.memory:default_memory_lock_manager")


class _NamesNonsense(FolderStorage):
    def default_lock_manager(self) -> Any:
        return "memory"


class _NamesUnknown(FolderStorage):
    def default_lock_manager(self) -> LockManagerSpec:
        return LockManagerSpec("zookeeper")


def test_a_lock_manager_named_by_path_is_built_and_bad_names_are_refused(tmp_path: Path) -> None:
    assert isinstance(default_lock_manager(_NamesByPath(str(tmp_path))), MemoryLockManager)
    with pytest.raises(ConfigurationError, match="LockManagerSpec"):
        default_lock_manager(_NamesNonsense(str(tmp_path)))
    with pytest.raises(ConfigurationError, match=r"'zookeeper'.*'file'"):
        default_lock_manager(_NamesUnknown(str(tmp_path)))


def test_importing_resultkit_imports_neither_pytest_nor_a_backend() -> None:
    code = (
        "import sys, resultkit, resultkit.storage\n"
        "resultkit.storage.resolve_storage('some/folder')\n"
        "print(sorted(m for m in ('pytest', 'resultkit.testing', 'fsspec', 'resultkit.storage.s3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    assert out.strip() == "[]"


def _doc_backend() -> str:
    text = (ROOT / "docs" / "storage.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    (source,) = [block for block in blocks if "class TestDictStorage(StorageContract)" in block]
    return source


def test_the_docs_custom_backend_passes_the_contract_and_a_broken_one_does_not(tmp_path: Path) -> None:
    broken = '''

class TestBrokenDictStorage(StorageContract):
    class Broken(DictStorage):
        def _delete(self, key):
            self.objects.pop(key, None)
            return True  # says it deleted what was never there

        def _write_chunks(self, key, chunks):
            self.objects[key] = (b"", 0)  # visible before the data is: not atomic
            super()._write_chunks(key, chunks)

    @pytest.fixture
    def storage(self):
        return self.Broken()
'''
    (tmp_path / "test_dict_storage.py").write_text(_doc_backend() + broken)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "test_dict_storage.py",
         "-k", "TestDictStorage or delete or failed"],
        cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    failed = set(re.findall(r"^FAILED test_dict_storage.py::(\w+)::(\w+)", result.stdout, re.M))
    assert {cls for cls, _ in failed} == {"TestBrokenDictStorage"}, result.stdout[-3000:]
    assert {"test_exists_and_delete", "test_failed_chunk_iterator_writes_nothing",
            "test_failed_overwrite_keeps_old_object"} <= {test for _, test in failed}
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))  # type: ignore[union-attr]
    assert passed > 40 + len(failed)  # every test passes for the good backend
