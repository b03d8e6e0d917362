"""resolve_storage: instances, paths, URLs, slugs, and the errors for bad ones."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from resultkit.errors import ConfigurationError
from resultkit.storage import (
    FsspecStorage,
    GCSStorage,
    LocalStorage,
    MemoryStorage,
    S3Storage,
    resolve_storage,
)
from resultkit.storage.fsspec import filesystem_class


def test_instances_are_returned_as_is() -> None:
    store = MemoryStorage()
    assert resolve_storage(store) is store


def test_paths_become_local_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_storage(tmp_path) == LocalStorage(tmp_path)
    assert resolve_storage(str(tmp_path / "x")) == LocalStorage(tmp_path / "x")
    assert resolve_storage("file://" + str(tmp_path)) == LocalStorage(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert resolve_storage("results/run1") == LocalStorage(tmp_path / "results" / "run1")


def test_relative_paths_follow_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    first = resolve_storage("store")
    monkeypatch.chdir(tmp_path / "b")
    assert resolve_storage("store") != first
    assert resolve_storage("store") == LocalStorage(tmp_path / "b" / "store")


def test_cloud_urls() -> None:
    s3 = resolve_storage("s3://my-bucket/team/results/")
    assert isinstance(s3, S3Storage) and (s3.bucket, s3.prefix) == ("my-bucket", "team/results")
    assert resolve_storage("s3://my-bucket/team/results/") is s3  # cached
    gs = resolve_storage("gs://b-1/p")
    assert isinstance(gs, GCSStorage) and (gs.bucket, gs.prefix) == ("b-1", "p")
    assert isinstance(resolve_storage("gcs://b-1"), GCSStorage)


def test_memory_url_is_shared_fsspec_memory() -> None:
    a = resolve_storage("memory://rk-resolve-shared")
    assert isinstance(a, FsspecStorage)
    a.write("k", b"v")
    assert FsspecStorage("memory://rk-resolve-shared").read("k") == b"v"


def test_other_fsspec_protocols_become_fsspec_storage() -> None:
    store = resolve_storage("ftp://host/dir")
    assert isinstance(store, FsspecStorage) and store.protocol == "ftp"


def test_slugs_load_saved_blocks_and_see_resaves(tmp_path: Path) -> None:
    LocalStorage(tmp_path / "one").save("team")
    assert resolve_storage("local/team") == LocalStorage(tmp_path / "one")
    LocalStorage(tmp_path / "two").save("team", overwrite=True)
    assert resolve_storage("local/team") == LocalStorage(tmp_path / "two")
    S3Storage("bucket-x", "p").save("prod")
    assert resolve_storage("s3/prod") == S3Storage("bucket-x", "p")


def test_existing_path_wins_over_slug_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local" / "x").mkdir(parents=True)
    assert resolve_storage("local/x") == LocalStorage(tmp_path / "local" / "x")


def test_unknown_slug_lists_saved_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="none yet"):
        resolve_storage("s3/prod")
    LocalStorage(tmp_path).save("dev")
    with pytest.raises(ConfigurationError, match=r"'s3/prod'.*local/dev"):
        resolve_storage("s3/prod")


@pytest.mark.parametrize("url", ["nosuchproto://x/y", "rk-unknown://a"])
def test_unknown_protocol_is_named(url: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown storage protocol") as info:
        resolve_storage(url)
    assert url.split("://")[0] in str(info.value)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://", "://x", "1x://y", "s3://b/p?x=1", "", "   "])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_storage(url)


@pytest.mark.parametrize("value", [3, None, b"/tmp/x", ["a"]])
def test_wrong_types(value: object) -> None:
    with pytest.raises(ConfigurationError, match=type(value).__name__):
        resolve_storage(value)  # type: ignore[arg-type]


def test_missing_backend_names_the_extra_to_install(tmp_path: Path) -> None:
    """In a process where s3fs and gcsfs cannot be imported, the error says which extra to install."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    for name in ("s3fs", "gcsfs"):
        (blocker / f"{name}.py").write_text(f"raise ImportError('no module named {name}')\n")
    code = (
        "from resultkit.storage import resolve_storage\n"
        "from resultkit.errors import ConfigurationError\n"
        "for url in ('s3://bucket/x', 'gs://bucket/x'):\n"
        "    try:\n"
        "        resolve_storage(url)\n"
        "    except ConfigurationError as exc:\n"
        "        print(exc)\n"
    )
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), *sys.path]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "pip install 'resultkit[s3]'" in out
    assert "pip install 'resultkit[gcs]'" in out


def test_filesystem_class_for_known_protocol() -> None:
    assert filesystem_class("file").__name__ == "LocalFileSystem"


# -- options ----------------------------------------------------------------------------


def test_url_options_reach_the_storage_class(s3_endpoint, s3_bucket, tmp_path):
    storage = resolve_storage(f"s3://{s3_bucket}/results", endpoint_url=s3_endpoint,
                              skip_instance_cache=True)
    assert storage == S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint, skip_instance_cache=True)
    storage.write("k", b"v")  # the endpoint really is used: moto holds the object
    assert S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint).read("k") == b"v"
    assert resolve_storage(tmp_path, fsync=True) == LocalStorage(tmp_path, fsync=True)
    assert resolve_storage(str(tmp_path), fsync=True).fsync
    assert resolve_storage("file://" + str(tmp_path), fsync=True) == LocalStorage(tmp_path, fsync=True)


def test_unknown_options_name_the_option_and_the_backend(tmp_path):
    with pytest.raises(ConfigurationError, match=r"S3Storage does not take option\(s\) 'retries'.*config_kwargs"):
        resolve_storage("s3://bucket/p", retries=3)
    with pytest.raises(ConfigurationError, match=r"'endpiont_url' \(did you mean 'endpoint_url'\?\)"):
        S3Storage("bucket", endpiont_url="http://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match=r"GCSStorage does not take option\(s\) 'tokn' \(did you mean 'token'\?\)"):
        resolve_storage("gs://bucket", tokn="anon")
    with pytest.raises(ConfigurationError, match=r"LocalStorage.*\['compress'\]"):
        resolve_storage(str(tmp_path), compress=True)


def test_a_bad_option_value_fails_at_first_use_as_a_configuration_error():
    storage = S3Storage("bucket", endpoint_url="http://127.0.0.1:1", config_kwargs={"bogus": 1})
    with pytest.raises(ConfigurationError, match=r"S3Storage\(bucket='bucket'.*config_kwargs.*bogus"):
        storage.exists("k")


def test_options_do_not_apply_to_instances_or_saved_blocks(tmp_path):
    with pytest.raises(ConfigurationError, match="pass them to its constructor"):
        resolve_storage(LocalStorage(tmp_path), fsync=True)
    LocalStorage(tmp_path).save("mine")
    with pytest.raises(ConfigurationError, match="'local/mine' is a saved block"):
        resolve_storage("local/mine", fsync=True)
    with pytest.raises(ConfigurationError, match="no such block exists"):
        resolve_storage("local/other", fsync=True)


@pytest.mark.parametrize(("value", "meant"), [
    ("s3:/bucket", "s3://bucket"), ("s3//bucket", "s3://bucket"), ("s3:bucket/prefix", "s3://bucket/prefix"),
    ("S3:/Bucket", "s3://Bucket"), ("s3a:/b", "s3a://b"), ("gs:/bucket", "gs://bucket"),
    ("gs//bucket/p", "gs://bucket/p"), ("gcs:bucket", "gcs://bucket"), ("memory:/scratch", "memory://scratch"),
])
def test_a_url_missing_a_slash_is_a_configuration_error_saying_what_was_meant(
    value: str, meant: str, tmp_path, monkeypatch,
) -> None:
    from resultkit.errors import ConfigurationError

    monkeypatch.chdir(tmp_path)
    for attempt in (lambda: resolve_storage(value), lambda: resolve_storage(value, fsync=True)):
        with pytest.raises(ConfigurationError) as info:
            attempt()
        assert repr(meant) in str(info.value) and repr(f"./{value}") in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_local_folder_with_a_colon_is_written_with_dot_slash(tmp_path, monkeypatch) -> None:
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    assert resolve_storage("./results:v2") == LocalStorage(tmp_path / "results:v2")
    assert resolve_storage(Path("s3:") / "bucket") == LocalStorage(tmp_path / "s3:" / "bucket")
    assert resolve_storage(str(tmp_path / "a:b")) == LocalStorage(tmp_path / "a:b")


def test_a_task_given_a_broken_url_fails_and_writes_no_local_folder(tmp_path, monkeypatch) -> None:
    from resultkit import task
    from resultkit.errors import ConfigurationError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="'s3://bucket'"):
        task(result_storage="s3:/bucket")(lambda: 1)()
    with pytest.raises(ConfigurationError, match="'gs://bucket'"):
        task(result_storage="gs//bucket")(lambda: 1)()
    assert list(tmp_path.iterdir()) == []
