"""A record answers only for the key its header names: copied or moved elsewhere, it is corrupt there."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from resultkit import task
from resultkit.cache_policies import INPUTS
from resultkit.errors import RecordCorruptError
from resultkit.results import ResultStore
from resultkit.storage import CachedStorage, LocalStorage, S3Storage, Storage

BIG = b"x" * (256 << 10)  # beyond every first read of local storage: the payload is streamed


def _assert_refused_everywhere(store: ResultStore, key: str, header_key: str,
                               caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(RecordCorruptError) as info:
        store.read(key)
    assert repr(key) in str(info.value) and repr(header_key) in str(info.value)
    with pytest.raises(RecordCorruptError):
        store.metadata(key)
    with pytest.raises(RecordCorruptError):
        store.verify(key)
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert store.lookup(key) is None
        assert not store.exists(key)
    assert repr(header_key) in caplog.text and repr(key) in caplog.text
    assert key not in list(store.list())


@pytest.mark.parametrize("value", ["alice's value", BIG], ids=["small", "streamed"])
@pytest.mark.parametrize("how", ["copy", "move"])
def test_a_local_record_copied_or_moved_to_another_key_is_corrupt_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str, value: object,
) -> None:
    store = ResultStore(LocalStorage(tmp_path))
    store.write("alice", value)
    (shutil.copy if how == "copy" else shutil.move)(tmp_path / "alice", tmp_path / "bob")
    _assert_refused_everywhere(store, "bob", "alice", caplog)
    if how == "copy":
        assert store.read("alice").result == value


def test_a_record_moved_between_folders_is_corrupt_there(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = ResultStore(LocalStorage(tmp_path))
    store.write("team-a/result", 1)
    (tmp_path / "team-b").mkdir()
    shutil.copy(tmp_path / "team-a" / "result", tmp_path / "team-b" / "result")
    _assert_refused_everywhere(store, "team-b/result", "team-a/result", caplog)


def _s3(s3_bucket: str, s3_endpoint: str) -> S3Storage:
    return S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint, skip_instance_cache=True)


@pytest.mark.parametrize("value", ["alice's value", b"y" * (5 << 20)], ids=["small", "streamed"])
def test_an_s3_record_copied_to_another_key_is_corrupt_there(
    s3_bucket: str, s3_endpoint: str, caplog: pytest.LogCaptureFixture, value: object,
) -> None:
    storage = _s3(s3_bucket, s3_endpoint)
    storage.first_read_size = 1 << 20  # so the 5 MiB record streams its payload
    store = ResultStore(storage)
    store.write("alice", value)
    storage.fs.copy(storage.path_of("alice"), storage.path_of("bob"))
    _assert_refused_everywhere(store, "bob", "alice", caplog)


def test_a_gcs_record_copied_to_another_key_is_corrupt_there(
    gcs_bucket: str, gcs_endpoint: str, caplog: pytest.LogCaptureFixture,
) -> None:
    from resultkit.storage import GCSStorage

    storage = GCSStorage(gcs_bucket, "results", token="anon", project="test", endpoint_url=gcs_endpoint,
                         skip_instance_cache=True)
    store = ResultStore(storage)
    store.write("alice", {"v": 1})
    storage.write("bob", storage.read("alice"))
    _assert_refused_everywhere(store, "bob", "alice", caplog)


def test_cached_storage_refuses_a_copied_record_from_its_local_tier_too(
    s3_bucket: str, s3_endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    remote = _s3(s3_bucket, s3_endpoint)
    cached = CachedStorage(remote, directory=tmp_path / "cache")
    cached.first_read_size = 64 << 10  # streamed payloads come from the local tier
    store = ResultStore(cached)
    store.write("alice", BIG)
    assert store.read("alice").result == BIG  # now held in the local tier
    remote.fs.copy(remote.path_of("alice"), remote.path_of("bob"))
    _assert_refused_everywhere(store, "bob", "alice", caplog)
    assert store.read("alice").result == BIG


def test_a_task_recomputes_when_another_inputs_record_was_copied_onto_its_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path), cache_result_in_memory=False)
    def balance(user: str) -> str:
        calls.append(user)
        return f"balance of {user}"

    alice = balance("alice", return_state=True).cache_key
    bob = balance("bob", return_state=True).cache_key
    shutil.copy(tmp_path / alice, tmp_path / bob)
    with caplog.at_level(logging.WARNING, logger="resultkit"):
        assert balance("bob") == "balance of bob"
    assert calls == ["alice", "bob", "bob"] and repr(alice) in caplog.text
    assert balance("bob", return_state=True).name == "Cached"  # the rerun rewrote bob's own record


def test_memory_storage_refuses_a_copied_record(caplog: pytest.LogCaptureFixture) -> None:
    from resultkit.storage import MemoryStorage

    storage: Storage = MemoryStorage()
    store = ResultStore(storage)
    store.write("alice", 1)
    storage.write("bob", storage.read("alice"))
    _assert_refused_everywhere(store, "bob", "alice", caplog)
