"""Keys that a backend or fsspec would interpret are refused, so no key can alias another."""

from __future__ import annotations

import pytest

from resultkit import task, transaction
from resultkit.cache_policies import INPUTS
from resultkit.errors import StorageError
from resultkit.results import ResultStore
from resultkit.storage import LocalStorage, S3Storage, validate_key

INTERPRETED = ["?", "#", "*", "[", "]", "\\", "\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x7f", "\x85",
               "\ud800"]


@pytest.mark.parametrize("char", INTERPRETED)
def test_every_interpreted_character_is_refused_naming_the_key_and_the_character(char: str) -> None:
    key = f"user/victim{char}versionId=1"
    with pytest.raises(StorageError) as info:
        validate_key(key)
    message = str(info.value)
    assert repr(key) in message and repr(char) in message


@pytest.mark.parametrize("key", ["user/alice", "a-b_c.d=e/f", "\u00e9t\u00e9/\u65e5\u672c", "x" * 300, "a/b/c/d"])
def test_ordinary_keys_pass_and_stay_cached(key: str) -> None:
    assert validate_key(key) == key
    assert validate_key(key) == key  # second time from the hot cache


def test_a_refused_key_is_never_cached_as_valid() -> None:
    for _ in range(2):
        with pytest.raises(StorageError, match="'\\?'"):
            validate_key("k?versionId=1")


def _s3(s3_bucket: str, s3_endpoint: str) -> S3Storage:
    return S3Storage(s3_bucket, "results", endpoint_url=s3_endpoint, skip_instance_cache=True)


def test_a_version_query_cannot_read_or_overwrite_another_s3_record(s3_bucket: str, s3_endpoint: str) -> None:
    store = ResultStore(_s3(s3_bucket, s3_endpoint))
    store.write("user/victim", {"secret": 1})
    for op in (store.read, store.lookup, store.exists, store.metadata, store.delete):
        with pytest.raises(StorageError, match="versionId"):
            op("user/victim?versionId=1")
    with pytest.raises(StorageError, match="versionId"):
        store.write("user/victim?versionId=1", {"secret": "overwritten"})
    with pytest.raises(StorageError, match="'#'"):
        store.write("user/victim#1", {"secret": "overwritten"})
    assert store.read("user/victim").result == {"secret": 1}
    assert sorted(store.list()) == ["user/victim"]


def test_a_crafted_parameter_in_a_storage_key_template_is_refused_before_the_body_runs(
    s3_bucket: str, s3_endpoint: str,
) -> None:
    storage = _s3(s3_bucket, s3_endpoint)
    calls = []

    @task(result_storage=storage, result_storage_key="user/{parameters[name]}", cache_result_in_memory=False)
    def profile(name: str) -> dict[str, str]:
        calls.append(name)
        return {"owner": name}

    assert profile("victim") == {"owner": "victim"}
    for crafted in ("victim?versionId=1", "victim#1", "vic*", "../victim", "victim/", "vic\\tim"):
        with pytest.raises(StorageError) as info:
            profile(crafted)
        assert repr(f"user/{crafted}") in str(info.value)
    assert calls == ["victim"]
    assert ResultStore(storage).read("user/victim").result == {"owner": "victim"}


def test_a_two_task_transaction_with_a_version_query_key_writes_nothing(s3_bucket: str, s3_endpoint: str) -> None:
    storage = _s3(s3_bucket, s3_endpoint)
    store = ResultStore(storage)
    store.write("user/victim", "original")
    rolled_back = []

    @task(result_storage=storage, result_storage_key="step/{parameters[name]}")
    def first(name: str) -> str:
        return f"first {name}"

    @first.on_rollback
    def undo(txn: object) -> None:
        rolled_back.append("first")

    @task(result_storage=storage, result_storage_key="user/{parameters[name]}")
    def second(name: str) -> str:
        return f"second {name}"

    with pytest.raises(StorageError, match="versionId"):
        with transaction():
            first("a")
            second("victim?versionId=1")
    assert rolled_back == ["first"]
    assert sorted(storage.list("")) == ["user/victim"]
    assert store.read("user/victim").result == "original"


def test_a_traversal_through_a_template_stays_inside_local_storage(tmp_path) -> None:
    base = tmp_path / "records"

    @task(cache_policy=INPUTS, result_storage=LocalStorage(base), result_storage_key="{parameters[name]}")
    def save(name: str) -> str:
        return name

    for crafted in ("../outside", "/etc/passwd", "a/../../outside", "C:evil"):
        with pytest.raises(StorageError):
            save(crafted)
    assert not (tmp_path / "outside").exists()
    assert not base.exists() or list(base.rglob("*")) == []
