"""Files(...): keys on the contents of files and trees that arguments name, local and on S3."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import pytest

from resultkit import ConfigurationError, HashError, task
from resultkit.cache_policies import INPUTS, CacheKeyContext, Files
from resultkit.cache_policies.files import path_digest, stat_cache_info

CONTEXT = CacheKeyContext(task_name="m.load", task_source="def load(path): ...")


def key(policy: Files, **inputs: object) -> str | None:
    return policy.compute_key(CONTEXT, inputs)


def remembered(path: Path) -> None:
    """Hash ``path`` until the stat cache keeps its digest.

    A file changed in the last few milliseconds is re-read on every call (it could change
    again within one timestamp tick); this polls until the clock has moved past that.
    """
    deadline = time.monotonic() + 30
    while True:
        before = stat_cache_info().hits
        path_digest(str(path))
        path_digest(str(path))
        if stat_cache_info().hits > before:
            return
        assert time.monotonic() < deadline, "the stat cache never kept the digest"


def test_content_not_path_makes_the_key(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x,y\n1,2\n")
    b.write_text("x,y\n1,2\n")
    policy = Files("path")
    assert key(policy, path=str(a)) == key(policy, path=b)  # str or PathLike
    b.write_text("x,y\n1,3\n")
    assert key(policy, path=str(a)) != key(policy, path=b)


def test_a_rewrite_with_the_same_size_and_restored_mtime_is_seen_in_process(tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    data.write_text("5.1,3.5,1.4,0.2,setosa\n")
    remembered(data)
    before = key(Files("path"), path=data)
    stat = data.stat()
    data.write_text("5.1,3.5,1.4,0.2,SETOSA\n")  # same size
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime restored; ctime moves
    assert data.stat().st_mtime_ns == stat.st_mtime_ns and data.stat().st_size == stat.st_size
    assert key(Files("path"), path=data) != before


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    data = tmp_path / "big.bin"
    data.write_bytes(os.urandom(1 << 20))
    remembered(data)
    reads, hits = stat_cache_info().reads, stat_cache_info().hits
    for _ in range(3):
        key(Files("path"), path=data)
    assert stat_cache_info().reads == reads and stat_cache_info().hits == hits + 3


def test_a_directory_tree_with_one_file_added_or_edited(tmp_path: Path) -> None:
    tree = tmp_path / "raw"
    (tree / "2026" / "11").mkdir(parents=True)
    (tree / "2026" / "11" / "a.csv").write_text("1\n")
    policy = Files("folder")
    first = key(policy, folder=tree)
    assert key(policy, folder=tree) == first
    (tree / "2026" / "11" / "b.csv").write_text("2\n")
    second = key(policy, folder=tree)
    assert second != first
    (tree / "2026" / "11" / "b.csv").write_text("3\n")
    assert key(policy, folder=tree) not in (first, second)
    (tree / "2026" / "11" / "b.csv").unlink()
    assert key(policy, folder=tree) == first


def test_lists_none_and_symlinks(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    policy = Files("paths")
    assert key(policy, paths=[a, b]) != key(policy, paths=[b, a])
    assert key(policy, paths=None) == key(policy, paths=None)
    link = tmp_path / "link"
    link.symlink_to(a)
    assert key(Files("p"), p=link) == key(Files("p"), p=a)


def test_a_missing_file_is_a_hash_error_naming_the_argument(tmp_path: Path) -> None:
    with pytest.raises(HashError, match=r"argument 'data_path' names '.*missing.csv', which does not exist"):
        key(Files("data_path"), data_path=str(tmp_path / "missing.csv"))


def test_a_value_that_is_not_a_path_is_a_hash_error(tmp_path: Path) -> None:
    with pytest.raises(HashError, match=r"argument 'data_path' is a int .*not a path"):
        key(Files("data_path"), data_path=3)


def test_argument_names_are_checked_at_decoration(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"task '.*load' has no argument 'data_pth'; its arguments "
                                                 r"are data_path, sep"):
        @task(cache_policy=INPUTS + Files("data_pth"), result_storage=str(tmp_path))
        def load(data_path: str, sep: str = ",") -> str:
            return data_path
    with pytest.raises(ConfigurationError, match="Files"):
        Files()
    with pytest.raises(ConfigurationError, match="Files"):
        Files("not an identifier")
    with pytest.raises(ConfigurationError, match=r"storage_options=\.\.\.\) takes a dict"):
        Files("a", storage_options="anon")  # type: ignore[arg-type]


def test_files_compose_and_configure() -> None:
    assert INPUTS + Files("b", "a") == Files("a", "b") + INPUTS
    assert Files("a") - "a" == Files("a")  # subtracting drops inputs, not files
    assert Files("b", "a").arguments == ("a", "b")
    configured = Files("a", storage_options={"anon": True}).configure(key_storage="elsewhere")
    assert configured.key_storage == "elsewhere" and configured.storage_options == (("anon", True),)


def test_a_task_keyed_on_a_file_reruns_when_it_changes_and_explains_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("data").mkdir()
    Path("data/iris.csv").write_text("5.1,setosa\n")
    runs = []

    @task(cache_policy=INPUTS + Files("path"), result_storage="results")
    def load_data(path: str) -> str:
        runs.append(path)
        return Path(path).read_text()

    assert load_data("data/iris.csv") == "5.1,setosa\n"
    assert load_data("data/iris.csv") == "5.1,setosa\n" and len(runs) == 1
    Path("data/iris.csv").write_text("6.3,virginica\n")
    answer = load_data.explain("data/iris.csv")
    assert answer.differences == ["file `data/iris.csv` changed"]
    assert str(answer).startswith("miss: file `data/iris.csv` changed (key ")
    assert load_data("data/iris.csv") == "6.3,virginica\n" and len(runs) == 2


def test_an_s3_object_overwritten_on_the_server(s3_bucket: str, s3_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket=s3_bucket, Key="data/iris.csv", Body=b"5.1,setosa\n")
    url = f"s3://{s3_bucket}/data/iris.csv"
    policy = Files("path", storage_options={"endpoint_url": s3_endpoint})
    first = key(policy, path=url)
    assert key(policy, path=url) == first
    client.put_object(Bucket=s3_bucket, Key="data/iris.csv", Body=b"6.3,virginica\n")
    second = key(policy, path=url)
    assert second != first
    client.put_object(Bucket=s3_bucket, Key="data/iris.csv", Body=b"6.3,virginica\n")  # same bytes
    assert key(policy, path=url) == second  # the ETag is the content's MD5
    # A prefix is a tree: one object added changes it.
    prefix = f"s3://{s3_bucket}/data"
    tree = key(policy, path=prefix)
    client.put_object(Bucket=s3_bucket, Key="data/extra.csv", Body=b"1\n")
    assert key(policy, path=prefix) != tree
    with pytest.raises(HashError, match=r"argument 'path' names .*missing\.csv', which does not exist"):
        key(policy, path=f"s3://{s3_bucket}/missing.csv")


def test_a_task_on_s3_data_explains_the_overwrite(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket=s3_bucket, Key="iris.csv", Body=b"a\n")
    url = f"s3://{s3_bucket}/iris.csv"

    @task(cache_policy=INPUTS + Files("uri", storage_options={"endpoint_url": s3_endpoint}),
          result_storage=str(tmp_path))
    def rows(uri: str) -> int:
        return 1

    assert rows(url, return_state=True).name == "Completed"
    assert rows(url, return_state=True).name == "Cached"
    client.put_object(Bucket=s3_bucket, Key="iris.csv", Body=b"b\n")
    assert rows.explain(url).differences == [f"file `{url}` changed"]
    assert rows(url, return_state=True).name == "Completed"


def test_a_pipe_is_refused_and_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(HashError, match="neither a regular file nor a directory"):
        key(Files("path"), path=fifo)
    assert key(Files("folder"), folder=tmp_path)  # inside a tree it counts by name, unread


def test_a_gcs_object_overwritten_changes_its_generation(gcs_bucket: str, gcs_endpoint: str) -> None:
    import gcsfs

    fs = gcsfs.GCSFileSystem(token="anon", project="test", endpoint_url=gcs_endpoint,
                             skip_instance_cache=True)
    path = f"{gcs_bucket}/data/iris.csv"
    fs.pipe_file(path, b"5.1,setosa\n")
    policy = Files("path", storage_options={"token": "anon", "project": "test",
                                            "endpoint_url": gcs_endpoint})
    url = f"gs://{path}"
    first = key(policy, path=url)
    assert key(policy, path=url) == first
    fs.pipe_file(path, b"6.3,virginica\n")
    assert key(policy, path=url) != first
