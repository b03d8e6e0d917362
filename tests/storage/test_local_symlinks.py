"""LocalStorage never follows a symbolic link below its folder: not to read, write, delete or list."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from resultkit.errors import StorageError
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "x").write_bytes(b"outside data")
    return folder


def _linked(base: Path, outside: Path, name: str = "link") -> LocalStorage:
    base.mkdir(exist_ok=True)
    (base / name).symlink_to(outside, target_is_directory=True)
    return LocalStorage(base)


def test_a_write_through_a_linked_folder_is_refused_and_creates_nothing_outside(base, outside):
    storage = _linked(base, outside)
    for key in ("link/planted", "link/new/deep/planted"):
        with pytest.raises(StorageError) as info:
            storage.write(key, b"planted")
        message = str(info.value)
        assert repr(key) in message and repr(str(base / "link")) in message and str(outside) in message
        assert "could not" not in message  # the link is the reason, reported once
    assert sorted(p.name for p in outside.iterdir()) == ["x"]


def test_reads_through_a_linked_folder_are_refused(base, outside):
    storage = _linked(base, outside)
    for op in (storage.read, storage.open_read, storage.exists, storage.version,
               lambda key: storage.read_head(key, 10)):
        with pytest.raises(StorageError, match="symbolic link"):
            op("link/x")


def test_a_delete_through_a_linked_folder_is_refused_and_the_outside_file_stays(base, outside):
    storage = _linked(base, outside)
    with pytest.raises(StorageError, match="symbolic link") as info:
        storage.delete("link/x")
    assert "could not" not in str(info.value)
    assert (outside / "x").read_bytes() == b"outside data"


def test_a_key_that_is_itself_a_link_is_refused_and_its_target_kept(base, outside):
    base.mkdir()
    (base / "k").symlink_to(outside / "x")
    storage = LocalStorage(base)
    for op in (storage.read, storage.open_read, storage.exists, storage.version, storage.delete):
        with pytest.raises(StorageError, match="symbolic link"):
            op("k")
    assert (outside / "x").read_bytes() == b"outside data" and (base / "k").is_symlink()


def test_a_link_to_another_folder_inside_the_storage_is_refused_too(base):
    storage = LocalStorage(base)
    storage.write("real/x", b"real")
    (base / "alias").symlink_to(base / "real", target_is_directory=True)
    with pytest.raises(StorageError, match="symbolic link"):
        storage.read("alias/x")
    with pytest.raises(StorageError, match="symbolic link"):
        storage.write("alias/y", b"aliased")
    assert sorted(storage.list("")) == ["real/x"]


def test_listing_skips_links_and_refuses_a_linked_prefix(base, outside):
    storage = _linked(base, outside)
    storage.write("a/real", b"1")
    (base / "a" / "file-link").symlink_to(outside / "x")
    assert sorted(storage.list("")) == ["a/real"]
    assert sorted(storage.list("a/")) == ["a/real"]
    with pytest.raises(StorageError, match="symbolic link") as info:
        list(storage.list("link/"))
    assert "could not" not in str(info.value)


def test_a_result_store_treats_a_linked_record_as_a_miss_and_refuses_to_write_through_it(
    base: Path, outside: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    storage = _linked(base, outside)
    # A valid record, for the very key, planted outside: only the link check stops it.
    ResultStore(LocalStorage(outside.parent / "planter")).write("link/x", "planted value")
    os.replace(outside.parent / "planter" / "link" / "x", outside / "x")
    store = ResultStore(storage)
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup("link/x") is None
    assert "symbolic link" in caplog.text
    with pytest.raises(StorageError, match="symbolic link"):
        store.read("link/x")
    with pytest.raises(StorageError, match="symbolic link"):
        store.write("link/y", 1)
    assert sorted(p.name for p in outside.iterdir()) == ["x"]


def test_a_storage_whose_basepath_is_a_link_works(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via-link").symlink_to(real, target_is_directory=True)
    storage = LocalStorage(tmp_path / "via-link")
    storage.write("a/b", b"hi")
    assert storage.read("a/b") == b"hi" and storage.exists("a/b") and list(storage.list("")) == ["a/b"]
    assert storage.delete("a/b") and (real / "a").is_dir()


@pytest.mark.parametrize("no_dir_fd", [False, True], ids=["no-fd-path", "no-fd-path-nor-dir-fd"])
def test_without_a_kernel_path_lookup_the_path_check_still_refuses_links(
    base: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, no_dir_fd: bool,
) -> None:
    """As on platforms without /proc or F_GETPATH (and, second, without *at() calls: Windows)."""
    import resultkit.storage.local as local_module

    monkeypatch.setattr(local_module, "fd_path", local_module._no_fd_path)
    if no_dir_fd:
        monkeypatch.setattr(local_module, "_DIR_FD", False)
    storage = _linked(base, outside)
    storage.write("a/b", b"x")
    storage.write("top", b"t")
    assert storage.read("a/b") == b"x" and storage.exists("a/b") and sorted(storage.list("")) == ["a/b", "top"]
    for op in (lambda: storage.read("link/x"), lambda: storage.write("link/y", b"planted"),
               lambda: storage.write("link/new/deep", b"planted"), lambda: storage.delete("link/x"),
               lambda: list(storage.list("link/"))):
        with pytest.raises(StorageError, match="symbolic link"):
            op()
    assert sorted(p.name for p in outside.iterdir()) == ["x"]
    assert storage.delete("a/b") and not storage.delete("a/b") and not storage.delete("nothing/here")
