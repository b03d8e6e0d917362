"""Saved storage blocks: save/load/list/delete, file mode, secrets refused."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from resultkit.errors import ConfigurationError
from resultkit.storage import FsspecStorage, GCSStorage, LocalStorage, MemoryStorage, S3Storage
from resultkit.storage.blocks import (
    blocks_file,
    delete_block,
    list_blocks,
    load_storage,
    save_block,
)


def test_local_block_round_trips_and_stores_data_where_the_original_does(tmp_path: Path) -> None:
    original = LocalStorage(tmp_path / "data", fsync=True)
    assert original.save("team") == "local/team"
    loaded = load_storage("local/team")
    assert loaded == original
    loaded.write("k", b"v")
    assert original.read("k") == b"v"


def test_blocks_file_is_private_and_under_resultkit_home(tmp_path: Path, resultkit_home: Path) -> None:
    LocalStorage(tmp_path).save("x")
    path = blocks_file()
    assert path.parent == resultkit_home
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in resultkit_home.iterdir() if p.name.startswith(".rk-tmp")] == []


def test_s3_block_keeps_options_and_env_var_names_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("MY_SECRET", "super-secret-value")
    storage = S3Storage("bucket-a", "team/results", key_env="MY_KEY_ID", secret_env="MY_SECRET",
                        endpoint_url="http://127.0.0.1:9", client_kwargs={"region_name": "eu-west-1"})
    assert save_block(storage, "prod") == "s3/prod"
    text = blocks_file().read_text()
    assert "AKIAREALKEY" not in text and "super-secret-value" not in text
    saved = tomllib.loads(text)["s3"]["prod"]
    assert saved["key_env"] == "MY_KEY_ID" and saved["secret_env"] == "MY_SECRET"
    loaded = load_storage("s3/prod")
    assert isinstance(loaded, S3Storage)
    assert (loaded.bucket, loaded.prefix) == ("bucket-a", "team/results")
    assert loaded == storage
    # The credentials are read from the environment when the file system is built.
    assert loaded.fs.key == "AKIAREALKEY" and loaded.fs.secret == "super-secret-value"


def test_missing_credential_env_var_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    storage = S3Storage("bucket-a", key_env="NOT_SET_ANYWHERE")
    with pytest.raises(ConfigurationError, match="NOT_SET_ANYWHERE"):
        storage.read("k")


@pytest.mark.parametrize(
    "make",
    [
        lambda: S3Storage("bucket-a", key="AKIA", secret="s3cr3t"),
        lambda: S3Storage("bucket-a", token="session"),
        lambda: S3Storage("bucket-a", client_kwargs={"aws_secret_access_key": "s3cr3t"}),
        lambda: GCSStorage("bucket-a", token="/path/to/service-account.json"),
        lambda: FsspecStorage("memory://x", password="hunter2"),
        lambda: FsspecStorage("memory://x", accountKey="abc"),
    ],
)
def test_options_that_look_secret_are_refused(make: object) -> None:
    storage = make()  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match="credential"):
        storage.save("leaky")
    assert list_blocks() == []


def test_gcs_auth_mode_token_is_not_a_secret() -> None:
    assert GCSStorage("bucket-a", token="anon", project="p").save("anon") == "gcs/anon"
    loaded = load_storage("gcs/anon")
    assert isinstance(loaded, GCSStorage) and loaded.options["token"] == "anon"


def test_memory_storage_cannot_be_saved() -> None:
    with pytest.raises(ConfigurationError, match="MemoryStorage"):
        MemoryStorage().save("x")


def test_existing_name_needs_overwrite(tmp_path: Path) -> None:
    LocalStorage(tmp_path / "a").save("x")
    with pytest.raises(ConfigurationError, match="overwrite=True"):
        LocalStorage(tmp_path / "b").save("x")
    LocalStorage(tmp_path / "b").save("x", overwrite=True)
    assert load_storage("local/x") == LocalStorage(tmp_path / "b")


def test_list_and_delete(tmp_path: Path) -> None:
    LocalStorage(tmp_path).save("one")
    FsspecStorage("memory://somewhere").save("two")
    assert list_blocks() == ["fsspec/two", "local/one"]
    delete_block("local/one")
    assert list_blocks() == ["fsspec/two"]
    with pytest.raises(ConfigurationError, match="fsspec/two"):
        delete_block("local/one")


def test_unknown_slug_lists_saved_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="none yet"):
        load_storage("s3/prod")
    LocalStorage(tmp_path).save("dev")
    S3Storage("bucket-a").save("staging")
    with pytest.raises(ConfigurationError, match=r"'s3/prod'.*local/dev, s3/staging"):
        load_storage("s3/prod")


@pytest.mark.parametrize("name", ["", "a/b", "with space", ".hidden", 3])
def test_bad_block_names_are_refused(tmp_path: Path, name: object) -> None:
    with pytest.raises(ConfigurationError, match="block name"):
        LocalStorage(tmp_path).save(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("slug", ["prod", "s3/a/b", 7])
def test_malformed_slugs_are_refused(slug: object) -> None:
    with pytest.raises(ConfigurationError, match="<type>/<name>"):
        load_storage(slug)  # type: ignore[arg-type]
