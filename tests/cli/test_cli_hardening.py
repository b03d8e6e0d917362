"""The CLI on hardened records: moved records, malformed storage URLs, leftover multipart uploads."""

from __future__ import annotations

import os
import shutil

from resultkit.storage import LocalStorage


def test_ls_show_and_verify_flag_a_record_moved_to_another_key(run, records):
    shutil.copy(records.root / "pickle" / "one", records.root / "pickle" / "copied")
    rows = {row["key"]: row for row in run("ls", str(records.root), "--json").json()}
    assert rows["pickle/copied"]["state"] == "unreadable"
    assert "names key 'pickle/one'" in rows["pickle/copied"]["problem"]
    assert rows["pickle/one"]["state"] == "no-expiry"
    verdict = run("verify", str(records.root), "--json")
    assert verdict.code == 1
    problems = {p["key"]: p["problem"] for p in verdict.json()["problems"]}
    assert "names key 'pickle/one'" in problems["pickle/copied"]
    assert "pickle/one" not in problems


def test_gc_never_follows_links_to_old_temporary_files(run, tmp_path):
    base, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    storage = LocalStorage(base)
    storage.write("a/record", b"1")
    stale = outside / ".rk-tmp-old"
    stale.write_bytes(b"not ours")
    (base / "a" / ".rk-tmp-link").symlink_to(stale)
    os.utime(stale, (0, 0))
    result = run("gc", str(base), "--json")
    assert result.code == 0 and result.json()["temp_files"] == []
    assert stale.exists()


_KILLED_WRITER = """
import sys
from resultkit.storage import S3Storage

bucket, endpoint = sys.argv[1:3]
storage = S3Storage(bucket, "team/results", endpoint_url=endpoint, skip_instance_cache=True)
storage.single_put_limit = storage.part_size = 5 << 20

def chunks():
    yield bytes(6 << 20)  # past the single-PUT limit: a multipart upload starts, part 1 goes up
    print("uploading", flush=True)
    sys.stdin.read()      # held here until SIGKILLed
    yield b""

storage.write("big/record", chunks())
"""


def _uploads(s3_endpoint, bucket):
    import boto3

    listing = boto3.client("s3", endpoint_url=s3_endpoint).list_multipart_uploads(Bucket=bucket)
    return sorted(upload["Key"] for upload in listing.get("Uploads", []))


def test_gc_aborts_the_multipart_upload_of_a_sigkilled_writer(run, s3_bucket, s3_endpoint):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import boto3

    root = str(Path(__file__).resolve().parents[2])
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, s3_bucket, s3_endpoint],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": root})
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "uploading"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    # Another tenant's upload outside the storage's prefix must survive the sweep.
    boto3.client("s3", endpoint_url=s3_endpoint).create_multipart_upload(Bucket=s3_bucket, Key="other/x")
    assert _uploads(s3_endpoint, s3_bucket) == ["other/x", "team/results/big/record"]

    target = [f"s3://{s3_bucket}/team/results", "--option", f"endpoint_url={s3_endpoint}"]
    # moto reports every upload as initiated on 2010-11-10, so "younger than the threshold"
    # is checked with a threshold older than that.
    kept = run("gc", *target, "--uploads-older-than", "1000w", "--json").json()
    assert kept["multipart_uploads"] == []
    dry = run("gc", *target, "--uploads-older-than", "0s", "--dry-run", "--json").json()
    assert [u["path"] for u in dry["multipart_uploads"]] == ["big/record"]
    assert _uploads(s3_endpoint, s3_bucket) == ["other/x", "team/results/big/record"]
    done = run("gc", *target, "--uploads-older-than", "0s")
    assert done.code == 0 and "aborted 1 multipart upload" in done.out
    assert _uploads(s3_endpoint, s3_bucket) == ["other/x"]
    assert run("gc", *target, "--uploads-older-than", "soon").code == 2


def test_gc_on_gcs_finds_no_uploads_to_sweep(run, gcs_bucket, gcs_endpoint):
    result = run("gc", f"gs://{gcs_bucket}/r", "--option", f"endpoint_url={gcs_endpoint}",
                 "--option", "token=anon", "--uploads-older-than", "0s", "--json")
    assert result.code == 0 and result.json()["multipart_uploads"] == []


def test_ls_of_a_url_missing_a_slash_fails_saying_what_was_meant(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spec, meant in (("s3:/bucket", "s3://bucket"), ("s3//bucket", "s3://bucket"), ("gs:/b", "gs://b")):
        result = run("ls", spec)
        assert result.code == 2 and repr(meant) in result.err
    assert list(tmp_path.iterdir()) == []
